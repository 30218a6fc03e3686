package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/validator"
)

const (
	revNodes    = 3                    // validation nodes, each on its own connection
	revPace     = time.Millisecond     // idle time before each measured step
	revWait     = 10 * time.Second     // longest a step may take
	revRaw      = "BENCHREVRAW"        // the baseline's stream
	revRawTo    = "benchrevraw.revoke" // and its subject
	revGoalP99  = 2 * time.Millisecond // paced, GOMAXPROCS=1
	revGoalLoad = 2.0                  // under load, x raw
)

// runRevocation measures how long a revocation takes to be in force on
// each of 3 validation nodes: create a key, wait until every node accepts
// it, revoke it with Service.RevokeKey, and from the moment RevokeKey
// returns wait, on each node, until its Validate refuses the key. Every
// (key, node) pair is one sample. The baseline, interleaved with it: a raw
// jetstream.Publish to a stream of its own read by one ordered consumer
// per node (each on its own connection), timed from the Publish call to
// delivery. Paced runs alone, at the process's GOMAXPROCS and again at
// GOMAXPROCS=1 (set for the case's duration: nodes, ledger, nats-server
// and the measuring goroutines share one P); under load another goroutine
// creates keys without pause meanwhile.
//
// Nothing spins: a node is checked each time it has applied an event
// (Validator.WaitFor), a raw consumer each time it delivered, and the
// time is taken when the check succeeds. A goroutine spinning on Validate
// would take a P from the nodes, and at GOMAXPROCS=1 keep the Go scheduler
// from polling the network (it then does so only every 10 ms).
func runRevocation(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	ns, err := e.natsServer()
	if err != nil {
		return nil, err
	}
	nc, err := e.connect(ns)
	if err != nil {
		return nil, err
	}
	l, err := e.ledger(ctx, nc)
	if err != nil {
		return nil, err
	}
	nodes := make([]*validator.Validator, revNodes)
	for i := range nodes {
		// The scenario polls a key until its creation or revocation
		// arrives: without the limit on failures, which would soon refuse
		// the polled key.
		if nodes[i], err = e.node(ctx, ns, validator.WithFailureLimit(validator.NoLimit, 0)); err != nil {
			return nil, err
		}
	}
	pubNC, err := e.connect(ns)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(pubNC)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: revRaw, Subjects: []string{"benchrevraw.>"},
		Storage: jetstream.FileStorage}); err != nil {
		return nil, err
	}
	consumers := make([]*rawDelivered, revNodes)
	for i := range consumers {
		if consumers[i], err = rawConsumer(ctx, &e, ns); err != nil {
			return nil, err
		}
	}
	var published uint64
	samples := cfg.N(1000, 10)

	var results []Result
	for _, variant := range []struct {
		name  string
		load  bool
		procs int // GOMAXPROCS for the case; 0: unchanged
	}{{"paced", false, 0}, {"under load", true, 0}, {"paced GOMAXPROCS=1", false, 1}} {
		r, err := func() (Result, error) {
			if variant.procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(variant.procs))
			}
			var stopLoad func() (int, time.Duration, error)
			if variant.load {
				stopLoad = createLoad(ctx, l)
			}
			var rev, raw []time.Duration
			var err error
			for range samples {
				if err = revokeOnce(ctx, l, nodes, &rev); err != nil {
					break
				}
				if err = sleep(ctx, revPace); err != nil {
					break
				}
				published++
				seq := published
				called := time.Now()
				if _, err = js.Publish(ctx, revRawTo, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
					err = fmt.Errorf("raw publish: %w", err)
					break
				}
				var at []time.Time
				if at, err = awaitAll(consumers, func(c *rawDelivered) (time.Time, error) { return c.await(ctx, seq) }); err != nil {
					err = fmt.Errorf("raw delivery: %w", err)
					break
				}
				for _, t := range at {
					raw = append(raw, t.Sub(called))
				}
			}
			var loadRate float64
			if stopLoad != nil {
				created, took, lerr := stopLoad()
				if err == nil {
					err = lerr
				}
				loadRate = float64(created) / took.Seconds()
			}
			if err != nil {
				return Result{}, err
			}
			sortDurations(rev)
			sortDurations(raw)
			r := newResult("revocation", variant.name+" p99", "us", micros(percentile(rev, 99)), micros(percentile(raw, 99)),
				"raw JetStream publish (from the call) to delivery on 3 ordered consumers, p99", len(rev))
			r.Details["revocations"] = float64(samples)
			r.Details["gomaxprocs"] = float64(runtime.GOMAXPROCS(0))
			r.Details["p50_us"] = micros(percentile(rev, 50))
			r.Details["max_us"] = micros(percentile(rev, 100))
			r.Details["baseline_p50_us"] = micros(percentile(raw, 50))
			r.Details["baseline_max_us"] = micros(percentile(raw, 100))
			switch {
			case variant.load:
				r.Details["load_keys_per_s"] = loadRate
				r.ratioAtMost(revGoalLoad)
			case variant.procs == 1:
				r.Goal = fmt.Sprintf("p99 < %v", revGoalP99)
				r.Met = percentile(rev, 99) < revGoalP99
			default:
				r.Goal = "p99 < raw p99"
				r.Met = r.Ratio > 0 && r.Ratio < 1
			}
			return r, nil
		}()
		if err != nil {
			return results, fmt.Errorf("%s: %w", variant.name, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// revokeOnce creates a key, waits until every node accepts it, revokes it
// and appends to rev, for each node, the time from RevokeKey's return to
// the node's first refusal.
func revokeOnce(ctx context.Context, l *ledgerRun, nodes []*validator.Validator, rev *[]time.Duration) error {
	k, secret, err := l.svc.CreateKey(ctx, ledger.CreateKey{UserID: l.userID})
	if err != nil {
		return fmt.Errorf("CreateKey: %w", err)
	}
	s := secret.Reveal()
	accepts := func(v *validator.Validator) (bool, error) {
		_, err := v.Validate(ctx, k.APIKey, s)
		if err != nil && !errors.Is(err, validator.ErrUnauthorized) {
			return false, err // not ready or stale
		}
		return err == nil, nil
	}
	if _, err := awaitAll(nodes, func(v *validator.Validator) (time.Time, error) {
		return awaitNode(ctx, v, func() (bool, error) { return accepts(v) })
	}); err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	if err := sleep(ctx, revPace); err != nil {
		return err
	}
	if err := l.svc.RevokeKey(ctx, ledger.RevokeKey{UserID: l.userID, APIKey: k.APIKey}); err != nil {
		return fmt.Errorf("RevokeKey: %w", err)
	}
	returned := time.Now()
	at, err := awaitAll(nodes, func(v *validator.Validator) (time.Time, error) {
		return awaitNode(ctx, v, func() (bool, error) {
			ok, err := accepts(v)
			return !ok, err
		})
	})
	if err != nil {
		return fmt.Errorf("revoked key: %w", err)
	}
	for _, t := range at {
		*rev = append(*rev, t.Sub(returned))
	}
	return nil
}

// awaitAll runs wait for each item on a goroutine of its own and returns
// the times they report, or the first error.
func awaitAll[T any](items []T, wait func(T) (time.Time, error)) ([]time.Time, error) {
	at := make([]time.Time, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Go(func() { at[i], errs[i] = wait(item) })
	}
	wg.Wait()
	return at, errors.Join(errs...)
}

// awaitNode checks done on v now and each time v has applied another
// event, until it holds, and returns when it first held. It gives up after
// revWait.
func awaitNode(ctx context.Context, v *validator.Validator, done func() (bool, error)) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, revWait)
	defer cancel()
	for {
		// Read before the check: an event applied in between is not missed.
		next := v.Status().AppliedSeq + 1
		ok, err := done()
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			return time.Now(), nil
		}
		if err := v.WaitFor(ctx, next); err != nil {
			return time.Time{}, fmt.Errorf("node at %d: %w", next-1, err)
		}
	}
}

// rawDelivered is what a raw consumer read: the sequence number carried by
// the last message, and a signal each time one arrives.
type rawDelivered struct {
	last    atomic.Uint64
	arrived chan struct{} // capacity 1: a signal waits for the next await
}

// await waits until the consumer has read message seq and returns when it
// saw that it had. It gives up after revWait.
func (c *rawDelivered) await(ctx context.Context, seq uint64) (time.Time, error) {
	t := time.NewTimer(revWait)
	defer t.Stop()
	for c.last.Load() < seq {
		select {
		case <-c.arrived:
		case <-t.C:
			return time.Time{}, fmt.Errorf("message %d not delivered after %v", seq, revWait)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
	return time.Now(), nil
}

// rawConsumer starts an ordered consumer of the baseline stream's new
// messages on a connection of its own and returns what it reads.
func rawConsumer(ctx context.Context, e *env, ns *server.Server) (*rawDelivered, error) {
	nc, err := e.connect(ns)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, revRaw, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, err
	}
	d := &rawDelivered{arrived: make(chan struct{}, 1)}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if len(m.Data()) == 8 {
			d.last.Store(binary.BigEndian.Uint64(m.Data()))
			select {
			case d.arrived <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	e.defer_(cc.Stop)
	return d, nil
}

// createLoad creates keys through the ledger, one after another without
// pause, until the returned function is called; that reports how many,
// over how long, and the first error.
func createLoad(ctx context.Context, l *ledgerRun) func() (int, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	var created int
	var loadErr error
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, _, err := l.svc.CreateKey(ctx, ledger.CreateKey{UserID: l.userID}); err != nil {
				if ctx.Err() == nil {
					loadErr = fmt.Errorf("load: CreateKey: %w", err)
				}
				return
			}
			created++
		}
	})
	return func() (int, time.Duration, error) {
		cancel()
		wg.Wait()
		return created, time.Since(start), loadErr
	}
}
