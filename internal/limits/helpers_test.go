package limits_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
)

const stream = "KEYLEDGER"

// Keys of the tests: "ak_" and a ULID.
const (
	keyA = "ak_01J00000000000000000000000"
	keyB = "ak_01J00000000000000000000001"
	keyC = "ak_01J00000000000000000000002"
)

// t0 is the start of a minute: windows of a minute start there.
var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// env is one nats-server with the limits bucket set up.
type env struct {
	s  *server.Server
	kv jetstream.KeyValue
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := limits.SetUp(ctx, js, stream); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, limits.BucketFor(stream))
	if err != nil {
		t.Fatal(err)
	}
	return &env{s: s, kv: kv}
}

// node starts a Limiter on a connection of its own to url.
func node(t testing.TB, url, name string, mod func(*limits.Config)) *limits.Limiter {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	cfg := limits.Config{Conn: nc, Stream: stream, Node: name, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	l, err := limits.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.Close(ctx)
		nc.Close()
	})
	return l
}

// nodes starts n Limiters sharing clock.
func nodes(t testing.TB, url string, n int, clock *testclock.Clock, mod func(*limits.Config)) []*limits.Limiter {
	out := make([]*limits.Limiter, n)
	for i := range out {
		out[i] = node(t, url, "node"+string(rune('1'+i)), func(c *limits.Config) {
			c.Clock = clock.Now
			if mod != nil {
				mod(c)
			}
		})
	}
	return out
}

// creditRecord reads a key's credits record.
func (e *env) creditRecord(t testing.TB, apiKey string) limits.CreditRecord {
	t.Helper()
	en, err := e.kv.Get(context.Background(), limits.CreditsKey(apiKey))
	if err != nil {
		t.Fatalf("credits record: %v", err)
	}
	r, err := limits.DecodeCredits(en.Value())
	if err != nil {
		t.Fatalf("credits record: %v", err)
	}
	return r
}

// taken reads a rate window's count (0 without a record).
func (e *env) taken(t testing.TB, apiKey string, rl domain.RateLimit, at time.Time) uint64 {
	t.Helper()
	i, _ := rl.WindowAt(at)
	en, err := e.kv.Get(context.Background(), limits.RateKey(apiKey, rl.Window.Duration(), i))
	if err != nil {
		return 0
	}
	r, err := limits.DecodeRate(en.Value())
	if err != nil {
		t.Fatalf("rate record: %v", err)
	}
	return r.Taken
}

// tally counts decisions by reason and accepted cost.
type tally struct {
	mu       sync.Mutex
	byReason map[domain.Reason]int
	cost     uint64
	trips    int
}

func (c *tally) add(d limits.Decision, cost uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byReason == nil {
		c.byReason = make(map[domain.Reason]int)
	}
	c.byReason[d.Reason]++
	if d.Reason == domain.ReasonOK {
		c.cost += cost
	}
	if d.RoundTrip {
		c.trips++
	}
}

func (c *tally) ok() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byReason[domain.ReasonOK]
}

// hammer runs workers goroutines per node, each taking until refused for
// stop (or attempts run out), and tallies the decisions.
func hammer(ls []*limits.Limiter, workers, attempts int, apiKey string, lim *domain.Limits, cost func(i int) uint64, stop domain.Reason) *tally {
	var c tally
	var wg sync.WaitGroup
	for _, l := range ls {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range attempts {
					k := cost(i + w)
					d := l.Take(context.Background(), apiKey, lim, k)
					c.add(d, k)
					if d.Reason == stop {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	return &c
}

func one(int) uint64 { return 1 }
