package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
	revSpin     = 10 * time.Second     // longest a step may take
	revRaw      = "BENCHREVRAW"        // the baseline's stream
	revRawTo    = "benchrevraw.revoke" // and its subject
	revGoalP99  = 2 * time.Millisecond // paced
	revGoalLoad = 2.0                  // under load, x raw
)

// runRevocation measures how long a revocation takes to be in force on
// each of 3 validation nodes: create a key, wait until every node accepts
// it, revoke it with Service.RevokeKey, and from the moment RevokeKey
// returns spin on each node's Validate until it refuses. Every (key, node)
// pair is one sample. The baseline, interleaved with it: a raw
// jetstream.Publish to a stream of its own read by one ordered consumer
// per node (each on its own connection), timed from the Publish call to
// delivery. Paced runs alone; under load another goroutine creates keys
// without pause meanwhile.
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
		// The scenario polls a key in a tight loop until its creation or
		// revocation arrives: without the limit on failures, which would
		// soon refuse the polled key.
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
	received := make([]*atomic.Uint64, revNodes)
	for i := range received {
		if received[i], err = rawConsumer(ctx, &e, ns); err != nil {
			return nil, err
		}
	}
	var published uint64
	samples := cfg.N(1000, 10)

	var results []Result
	for _, variant := range []struct {
		name string
		load bool
	}{{"paced", false}, {"under load", true}} {
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
			err = spinUntil(received, revSpin, func(r *atomic.Uint64) (bool, error) { return r.Load() >= seq, nil },
				func(at time.Time) { raw = append(raw, at.Sub(called)) })
			if err != nil {
				err = fmt.Errorf("raw delivery: %w", err)
				break
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
			return results, fmt.Errorf("%s: %w", variant.name, err)
		}
		sortDurations(rev)
		sortDurations(raw)
		r := newResult("revocation", variant.name+" p99", "us", micros(percentile(rev, 99)), micros(percentile(raw, 99)),
			"raw JetStream publish (from the call) to delivery on 3 ordered consumers, p99", len(rev))
		r.Details["revocations"] = float64(samples)
		r.Details["p50_us"] = micros(percentile(rev, 50))
		r.Details["max_us"] = micros(percentile(rev, 100))
		r.Details["baseline_p50_us"] = micros(percentile(raw, 50))
		r.Details["baseline_max_us"] = micros(percentile(raw, 100))
		if variant.load {
			r.Details["load_keys_per_s"] = loadRate
			r.ratioAtMost(revGoalLoad)
		} else {
			r.Goal = fmt.Sprintf("p99 < %v", revGoalP99)
			r.Met = percentile(rev, 99) < revGoalP99
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
	if err := spinUntil(nodes, revSpin, accepts, nil); err != nil {
		return fmt.Errorf("new key: %w", err)
	}
	if err := sleep(ctx, revPace); err != nil {
		return err
	}
	if err := l.svc.RevokeKey(ctx, ledger.RevokeKey{UserID: l.userID, APIKey: k.APIKey}); err != nil {
		return fmt.Errorf("RevokeKey: %w", err)
	}
	returned := time.Now()
	err = spinUntil(nodes, revSpin, func(v *validator.Validator) (bool, error) {
		ok, err := accepts(v)
		return !ok, err
	}, func(at time.Time) { *rev = append(*rev, at.Sub(returned)) })
	if err != nil {
		return fmt.Errorf("revoked key: %w", err)
	}
	return nil
}

// rawConsumer starts an ordered consumer of the baseline stream's new
// messages on a connection of its own and returns the sequence number of
// the last message it read.
func rawConsumer(ctx context.Context, e *env, ns *server.Server) (*atomic.Uint64, error) {
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
	var last atomic.Uint64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if len(m.Data()) == 8 {
			last.Store(binary.BigEndian.Uint64(m.Data()))
		}
	})
	if err != nil {
		return nil, err
	}
	e.defer_(cc.Stop)
	return &last, nil
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
