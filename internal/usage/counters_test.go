package usage

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

func testKey(i int) string { return fmt.Sprintf("ak_01J0000000000000000000%04d", i) }

func TestReasonsSized(t *testing.T) {
	if len(domainReasons) != len(domain.Reasons()) {
		t.Fatalf("domainReasons has %d entries, domain.Reasons %d: resize it", len(domainReasons), len(domain.Reasons()))
	}
}

// TestCounters_Concurrent: concurrent Records and Takes lose and double
// nothing.
func TestCounters_Concurrent(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewCounters(0, t0)
	const workers, per, keys = 8, 5000, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				r := domain.ReasonOK
				if i%5 == 0 {
					r = domain.ReasonRevoked
				}
				c.Record(testKey((w*per+i)%keys), r, t0.Add(time.Duration(i)))
			}
		})
	}
	var reports []Report
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			reports = append(reports, c.Take("n", t0.Add(time.Second)))
		}
	}()
	wg.Wait()
	<-done
	reports = append(reports, c.Take("n", t0.Add(time.Second)))
	var valid, revoked uint64
	for _, r := range reports {
		for _, k := range r.Keys {
			valid += k.Valid
			revoked += k.Refused[domain.ReasonRevoked]
		}
	}
	if valid != workers*per*4/5 || revoked != workers*per/5 {
		t.Fatalf("got %d valid, %d revoked; want %d, %d", valid, revoked, workers*per*4/5, workers*per/5)
	}
}

// TestCounters_Bounded: past maxKeys in one interval, further keys are
// not kept but counted as overflow; the next interval starts empty.
func TestCounters_Bounded(t *testing.T) {
	t0 := time.Now()
	c := NewCounters(10, t0)
	for i := range 25 {
		c.Record(testKey(i), domain.ReasonOK, t0)
	}
	c.Record(testKey(0), domain.ReasonOK, t0) // known keys still count
	if got := c.Overflow(); got != 15 {
		t.Fatalf("overflow: got %d, want 15", got)
	}
	r := c.Take("n", t0)
	if len(r.Keys) != 10 {
		t.Fatalf("keys: got %d, want 10", len(r.Keys))
	}
	c.Record(testKey(20), domain.ReasonOK, t0)
	if r := c.Take("n", t0); len(r.Keys) != 1 {
		t.Fatalf("next interval: got %d keys, want 1", len(r.Keys))
	}
}

// BenchmarkCountersRecord is the hot path's added cost: one Record of a
// key already counted in this interval.
func BenchmarkCountersRecord(b *testing.B) {
	c := NewCounters(0, time.Now())
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = testKey(i)
	}
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Record(keys[i%len(keys)], domain.ReasonOK, now)
			i++
		}
	})
}
