package bench

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/validator"
)

// usageRate is the validation rate per node the usage flush is measured
// at, and usageInterval the flush interval (the default).
const (
	usageRate     = 50_000
	usageInterval = usage.DefaultInterval
)

// runUsageFlush measures what a node's usage reports cost at 50k
// validations/s: one interval's validations (500k at the default 10s)
// counted by a node that follows a real log, then the flush of that
// interval's counts (take, encode, publish to the usage stream and wait
// for its acknowledgements). The baseline is the same validations on a
// node that counts nothing: the ratio of the flush to it is the share of
// a node's validation work the reports add, and the counted case's ratio
// the cost of counting on the hot path.
func runUsageFlush(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	ns, _, ks, err := filledLedger(ctx, &e, cfg.N(10_000, 200))
	if err != nil {
		return nil, err
	}
	nc, err := e.connect(ns)
	if err != nil {
		return nil, err
	}
	if err := usage.SetUp(ctx, nc, usage.StreamConfig(eventstore.DefaultStream, 1, 0, 0)); err != nil {
		return nil, err
	}
	plain, err := e.node(ctx, ns, validator.WithFailureLimit(validator.NoLimit, 0))
	if err != nil {
		return nil, err
	}
	counters := usage.NewCounters(0, time.Now())
	counted, err := e.node(ctx, ns, validator.WithFailureLimit(validator.NoLimit, 0), validator.WithUsage(counters))
	if err != nil {
		return nil, err
	}
	flusher, err := usage.NewFlusher(usage.FlusherConfig{Counters: counters, Conn: nc, Node: "bench",
		Interval: usageInterval, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	q, err := newQueries(ks)
	if err != nil {
		return nil, err
	}
	n := len(q.keys)
	perInterval := cfg.N(int(usageRate*usageInterval/time.Second), 2000)
	validate := func(v *validator.Validator) (time.Duration, error) {
		runtime.GC()
		start := time.Now()
		for i := range perInterval {
			if _, err := v.Validate(ctx, q.keys[i%n], q.secrets[i%n]); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	base, err := validate(plain)
	if err != nil {
		return nil, fmt.Errorf("plain: %w", err)
	}
	count, err := validate(counted)
	if err != nil {
		return nil, fmt.Errorf("counted: %w", err)
	}
	before := flusher.Stats().Published
	start := time.Now()
	if err := flusher.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	flush := time.Since(start)
	reports := flusher.Stats().Published - before
	baseline := "the same validations on a node that counts nothing"
	counting := newResult("usage-flush", "counting on the hot path", "ns/op", float64(count.Nanoseconds())/float64(perInterval),
		float64(base.Nanoseconds())/float64(perInterval), baseline+" (ns/op)", perInterval)
	counting.ratioAtMost(1.5)
	flushed := newResult("usage-flush", fmt.Sprintf("one flush of %s at %dk validations/s", usageInterval, usageRate/1000), "us",
		micros(flush), micros(base), baseline+" in that interval (us)", 1)
	flushed.Details["keys"] = float64(min(n, perInterval))
	flushed.Details["reports"] = float64(reports)
	flushed.Details["share_of_interval"] = flush.Seconds() / usageInterval.Seconds()
	flushed.ratioAtMost(0.10)
	return []Result{counting, flushed}, nil
}
