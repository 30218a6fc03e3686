package limits_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// benchLimits are limits a benchmark never exhausts: the most requests a
// day, the most credits.
func benchLimits(kind string) *domain.Limits {
	rl := &domain.RateLimit{Limit: domain.MaxRateLimit, Window: domain.Period(24 * time.Hour)}
	cr := &domain.CreditPolicy{Epoch: 1, Since: time.Unix(0, 0), Initial: domain.MaxCredits}
	switch kind {
	case "rate":
		return &domain.Limits{RateLimit: rl}
	case "credits":
		return &domain.Limits{Credits: cr}
	case "both":
		return &domain.Limits{RateLimit: rl, Credits: cr}
	}
	return nil
}

// BenchmarkTake_HotKey: one key taken over and over (all goroutines) in
// the steady state, against the same loop without limits. roundtrips/op
// is the fraction of decisions that waited for NATS (goal: at most 0.01).
func BenchmarkTake_HotKey(b *testing.B) {
	e := newEnv(b)
	for _, kind := range []string{"none", "rate", "credits", "both"} {
		b.Run(kind, func(b *testing.B) {
			l := node(b, e.s.ClientURL(), "bench-"+kind, nil)
			lim := benchLimits(kind)
			apiKey := keyA
			// Warm up: the first leases, sized by the rate.
			for range 10000 {
				l.Take(context.Background(), apiKey, lim, 1)
			}
			var trips, refused atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					d := l.Take(context.Background(), apiKey, lim, 1)
					if d.RoundTrip {
						trips.Add(1)
					}
					if d.Reason != domain.ReasonOK {
						refused.Add(1)
					}
				}
			})
			b.ReportMetric(float64(trips.Load())/float64(b.N), "roundtrips/op")
			if refused.Load() != 0 {
				b.Fatalf("%d refused", refused.Load())
			}
		})
	}
}

// BenchmarkTake_ColdKeys: 10,000 keys taken in turn, each once every
// 10,000 decisions, in the steady state (after one lease each), against
// the same loop without limits.
func BenchmarkTake_ColdKeys(b *testing.B) {
	e := newEnv(b)
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("ak_01J%023d", i)
	}
	for _, kind := range []string{"none", "both"} {
		b.Run(kind, func(b *testing.B) {
			l := node(b, e.s.ClientURL(), "bench-cold-"+kind, nil)
			lim := benchLimits(kind)
			// Warm up: every key leased once (a round trip each: the
			// first use of a key in a window).
			for _, k := range keys {
				l.Take(context.Background(), k, lim, 1)
			}
			var trips, refused int
			b.ResetTimer()
			for i := range b.N {
				d := l.Take(context.Background(), keys[i%len(keys)], lim, 1)
				if d.RoundTrip {
					trips++
				}
				if d.Reason != domain.ReasonOK {
					refused++
				}
			}
			b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/op")
			if refused != 0 {
				b.Fatalf("%d refused", refused)
			}
		})
	}
}
