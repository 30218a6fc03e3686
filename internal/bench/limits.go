package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/limits"
	"github.com/keyledger/keyledger/validator"
)

// countingLimiter is a node's limiter that counts the decisions that
// waited for NATS.
type countingLimiter struct {
	l                 *limits.Limiter
	decisions, waited atomic.Uint64
}

// Take decides through the limiter and counts.
func (c *countingLimiter) Take(ctx context.Context, apiKey string, lim *domain.Limits, cost uint64) validator.LimitDecision {
	d := c.l.Take(ctx, apiKey, lim, cost)
	c.decisions.Add(1)
	if d.RoundTrip {
		c.waited.Add(1)
	}
	return app.ValidatorDecision(d, time.Now())
}

// runLimits measures Validate on keys with a rate limit and credits
// against the same node's Validate on keys without, in the same run: a
// hot key (one key, over and over) and cold keys (10k keys round robin,
// each once every 10k validations, after one pass that leased for each).
// The limits never refuse (a billion requests an hour, a trillion
// credits): what is measured is the cost of counting, and how many
// decisions waited for NATS.
func runLimits(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	n := cfg.N(10_000, 200)
	ns, l, plain, err := filledLedger(ctx, &e, n)
	if err != nil {
		return nil, err
	}
	limited, err := fillLogWith(ctx, l.store, n, 16, 1, func(c *domain.CreateKey) {
		c.RateLimit = &domain.RateLimit{Limit: domain.MaxRateLimit, Window: domain.Period(time.Hour)}
		c.Credits = &domain.Credits{Remaining: domain.MaxCredits}
	})
	if err != nil {
		return nil, err
	}
	nc, err := e.connect(ns)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if err := limits.SetUp(ctx, js, eventstore.DefaultStream); err != nil {
		return nil, err
	}
	lim, err := limits.New(limits.Config{Conn: nc, Stream: eventstore.DefaultStream, Node: "bench",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer lim.Close(context.Background())
	counting := &countingLimiter{l: lim}
	v, err := e.node(ctx, ns, validator.WithFailureLimit(validator.NoLimit, 0), validator.WithLimiter(counting))
	if err != nil {
		return nil, err
	}
	iters := cfg.N(500_000, 2000)
	// loop validates iters times, key(i) and its secret, and returns ns/op
	// and the 99th percentile of a sample of single validations.
	loop := func(ks *keySet, key func(i int) int) (float64, time.Duration, error) {
		runtime.GC()
		start := time.Now()
		for i := range iters {
			j := key(i)
			if _, err := v.Validate(ctx, ks.apiKeys[j], ks.secret(j)); err != nil {
				return 0, 0, fmt.Errorf("validate: %w", err)
			}
		}
		perOp := float64(time.Since(start).Nanoseconds()) / float64(iters)
		took := make([]time.Duration, 0, iters/10)
		for i := range cap(took) {
			j := key(i)
			t := time.Now()
			if _, err := v.Validate(ctx, ks.apiKeys[j], ks.secret(j)); err != nil {
				return 0, 0, fmt.Errorf("validate: %w", err)
			}
			took = append(took, time.Since(t))
		}
		slices.Sort(took)
		return perOp, percentile(took, 99), nil
	}
	hot := func(int) int { return 0 }
	cold := func(i int) int { return i % n }
	// One pass over the limited keys: each leases once.
	for i := range n {
		if _, err := v.Validate(ctx, limited.apiKeys[i], limited.secret(i)); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	var results []Result
	for _, c := range []struct {
		name string
		key  func(int) int
	}{{"hot key", hot}, {fmt.Sprintf("%d cold keys", n), cold}} {
		baseNs, baseP99, err := loop(plain, c.key)
		if err != nil {
			return nil, err
		}
		before, beforeWaited := counting.decisions.Load(), counting.waited.Load()
		ns, p99, err := loop(limited, c.key)
		if err != nil {
			return nil, err
		}
		decisions, waited := counting.decisions.Load()-before, counting.waited.Load()-beforeWaited
		if decisions == 0 {
			return nil, errors.New("no decision reached the limiter")
		}
		r := newResult("limits", c.name+": rate limit and credits", "ns/op", ns, baseNs,
			"the same node's Validate of keys without limits", iters)
		r.Details["p99_us"] = micros(p99)
		r.Details["baseline_p99_us"] = micros(baseP99)
		r.Details["waited_for_nats"] = float64(waited) / float64(decisions)
		r.ratioAtMost(1.5)
		results = append(results, r)
	}
	return results, nil
}
