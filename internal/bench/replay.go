package bench

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/validator"
)

// replayFillWorkers is how many goroutines append concurrently to fill the
// log, as BenchmarkTimeToReady does.
const replayFillWorkers = 32

// runReplay fills a file-storage log with N key.created events (100k at
// scale 1) and measures, in events per second over the whole log:
//
//   - the ledger's projector (Keys, Users and Lookup: what serve builds at
//     start) from projections.New to WaitReady, with every Ed25519
//     signature verified, then again after a signed checkpoint of the
//     whole log (the fast path: the log is hashed against the checkpoint's
//     Merkle root instead);
//   - a validation node from validator.Open to Status().Ready, without and
//     with the checkpoint.
//
// The baseline is the raw ordered-consumer read rate of the same log:
// eventstore.SubscribeRaw counting the messages, no decoding, measured in
// the same run before each pair (the checkpoint adds one message).
func runReplay(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	n := cfg.N(100_000, 200)
	ns, err := e.natsServer()
	if err != nil {
		return nil, err
	}
	nc, err := e.connect(ns)
	if err != nil {
		return nil, err
	}
	store, err := newLog(ctx, nc)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := fillLog(ctx, store, n, replayFillWorkers); err != nil {
		return nil, err
	}
	fillRate := float64(n) / time.Since(start).Seconds()

	var results []Result
	measure := func(suffix string, extra map[string]float64) error {
		head, err := store.Head(ctx)
		if err != nil {
			return err
		}
		rawTook, err := replayRaw(ctx, ns, head)
		if err != nil {
			return fmt.Errorf("raw read: %w", err)
		}
		rawRate := float64(head) / rawTook.Seconds()
		rawName := "raw ordered consumer (eventstore.SubscribeRaw) counting the log's messages, no decoding"
		cases := []struct {
			name string
			run  func(context.Context, *server.Server, int) (time.Duration, error)
		}{
			{"projector (keys, users, lookup)", replayProjector},
			{"validator.Open to ready", replayValidator},
		}
		for _, c := range cases {
			took, err := c.run(ctx, ns, n)
			if err != nil {
				return fmt.Errorf("%s%s: %w", c.name, suffix, err)
			}
			r := newResult("replay", c.name+suffix, "events/s", float64(head)/took.Seconds(), rawRate, rawName, int(head))
			r.Details["ready_s"] = took.Seconds()
			r.Details["raw_read_s"] = rawTook.Seconds()
			r.Details["keys"] = float64(n)
			r.Details["fill_events/s"] = fillRate
			for k, v := range extra {
				r.Details[k] = v
			}
			r.ratioAtLeast(0.7)
			results = append(results, r)
		}
		return nil
	}
	if err := measure("", nil); err != nil {
		return results, err
	}
	took, err := replayCheckpoint(ctx, store)
	if err != nil {
		return results, fmt.Errorf("checkpoint: %w", err)
	}
	if err := measure(", checkpointed", map[string]float64{"checkpoint_s": took.Seconds()}); err != nil {
		return results, err
	}
	return results, nil
}

// replayStore opens a connection of its own to ns and a read-only store on
// it; the returned func closes both.
func replayStore(ctx context.Context, ns *server.Server) (*eventstore.Store, func(), error) {
	var e env
	nc, err := e.connect(ns)
	if err != nil {
		return nil, nil, err
	}
	store, err := eventstore.New(ctx, nc, eventstore.ReadOnly())
	if err != nil {
		e.close()
		return nil, nil, fmt.Errorf("event store: %w", err)
	}
	return store, e.close, nil
}

// replayRaw reads the log up to head with SubscribeRaw, only counting, and
// returns how long it took from subscribing.
func replayRaw(ctx context.Context, ns *server.Server, head uint64) (time.Duration, error) {
	store, closeStore, err := replayStore(ctx, ns)
	if err != nil {
		return 0, err
	}
	defer closeStore()
	var got atomic.Uint64
	done := make(chan struct{})
	start := time.Now()
	sub, err := store.SubscribeRaw(ctx, 1, func(m eventstore.RawMessage) {
		if got.Add(1) == head {
			close(done)
		}
	}, nil)
	if err != nil {
		return 0, err
	}
	defer sub.Stop()
	select {
	case <-done:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("read %d of %d messages: %w", got.Load(), head, ctx.Err())
	}
}

// replayProjector rebuilds the ledger's projections as serve does at start
// and returns the time from projections.New to WaitReady.
func replayProjector(ctx context.Context, ns *server.Server, n int) (time.Duration, error) {
	store, closeStore, err := replayStore(ctx, ns)
	if err != nil {
		return 0, err
	}
	defer closeStore()
	start := time.Now()
	m, err := app.StartReadModels(ctx, store, nil)
	if err != nil {
		return 0, err
	}
	defer m.Projector.Stop()
	if err := m.Projector.WaitReady(ctx); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if got := m.Lookup.Len(); got != n {
		return 0, fmt.Errorf("lookup holds %d keys, want %d", got, n)
	}
	return took, nil
}

// replayValidator opens a validation node and returns the time from
// validator.Open to Status().Ready, polled every millisecond.
func replayValidator(ctx context.Context, ns *server.Server, n int) (time.Duration, error) {
	var e env
	defer e.close()
	nc, err := e.connect(ns)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	v, err := validator.Open(ctx, nc, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, fmt.Errorf("validator.Open: %w", err)
	}
	defer v.Close()
	for !v.Status().Ready {
		if err := sleep(ctx, time.Millisecond); err != nil {
			return 0, fmt.Errorf("validator not ready: %+v: %w", v.Status(), err)
		}
	}
	took := time.Since(start)
	if got := v.Status().Keys; got != n {
		return 0, fmt.Errorf("node holds %d keys, want %d", got, n)
	}
	return took, nil
}

// replayCheckpoint has a checkpoint.Writer (as serve runs one) sign a
// checkpoint of the whole log, and returns how long that took.
func replayCheckpoint(ctx context.Context, store *eventstore.Store) (time.Duration, error) {
	start := time.Now()
	head, err := store.Head(ctx)
	if err != nil {
		return 0, err
	}
	w, err := checkpoint.Start(ctx, store, slog.New(slog.DiscardHandler), time.Hour)
	if err != nil {
		return 0, fmt.Errorf("checkpoint.Start: %w", err)
	}
	defer w.Close()
	if err := w.WaitFor(ctx, head); err != nil {
		return 0, err
	}
	if _, err := w.WriteNow(ctx); err != nil {
		return 0, fmt.Errorf("WriteNow: %w", err)
	}
	return time.Since(start), nil
}
