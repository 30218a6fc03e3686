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

// replayCheckpointEvery is how many events the checkpointed log has
// between two checkpoints: serve's writer checkpoints every
// checkpoint.DefaultEvery events, or sooner on its interval.
const replayCheckpointEvery = 1 << 14

// runReplay fills a file-storage log with N key.created events (100k at
// scale 1) and measures, in events per second over the whole log:
//
//   - the ledger's projector (Keys, Users and Lookup: what serve builds at
//     start) from projections.New to WaitReady, with every Ed25519
//     signature verified, then on a second log of N events written with
//     a signed checkpoint every replayCheckpointEvery events (as serve
//     writes them) and one at its end (the fast path: the log is hashed
//     against the checkpoints' Merkle roots instead);
//   - a validation node from validator.Open to Status().Ready, on both.
//
// The baseline is the raw ordered-consumer read rate of the same log:
// eventstore.SubscribeRaw counting the messages, no decoding, measured in
// the same run before each pair.
func runReplay(ctx context.Context, cfg Config) ([]Result, error) {
	var e env
	defer e.close()
	n := cfg.N(100_000, 200)
	var results []Result
	measure := func(ns *server.Server, store *eventstore.Store, suffix string, extra map[string]float64) error {
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
			for k, v := range extra {
				r.Details[k] = v
			}
			r.ratioAtLeast(0.7)
			results = append(results, r)
		}
		return nil
	}
	for _, checkpointed := range []bool{false, true} {
		ns, err := e.natsServer()
		if err != nil {
			return results, err
		}
		nc, err := e.connect(ns)
		if err != nil {
			return results, err
		}
		store, err := newLog(ctx, nc)
		if err != nil {
			return results, err
		}
		start := time.Now()
		extra := map[string]float64{}
		suffix := ""
		if checkpointed {
			cps, err := fillCheckpointed(ctx, store, n)
			if err != nil {
				return results, err
			}
			extra["checkpoints"] = float64(cps)
			suffix = ", checkpointed"
		} else if _, err := fillLog(ctx, store, n, replayFillWorkers); err != nil {
			return results, err
		}
		extra["fill_events/s"] = float64(n) / time.Since(start).Seconds()
		if err := measure(ns, store, suffix, extra); err != nil {
			return results, err
		}
	}
	return results, nil
}

// fillCheckpointed fills the log with n keys while a checkpoint.Writer
// (as serve runs one) signs a checkpoint every replayCheckpointEvery
// messages, and one of the whole log at the end; it returns how many it
// wrote.
func fillCheckpointed(ctx context.Context, store *eventstore.Store, n int) (int, error) {
	w, err := checkpoint.Start(ctx, store, slog.New(slog.DiscardHandler), time.Hour)
	if err != nil {
		return 0, fmt.Errorf("checkpoint.Start: %w", err)
	}
	defer w.Close()
	fctx, stop := context.WithCancel(ctx)
	written := make(chan int, 1)
	go func() {
		count := 0
		defer func() { written <- count }()
		for next := uint64(replayCheckpointEvery); ; next += replayCheckpointEvery {
			if w.WaitFor(fctx, next) != nil {
				return
			}
			if _, err := w.WriteNow(fctx); err == nil {
				count++
			}
		}
	}()
	_, err = fillLog(ctx, store, n, replayFillWorkers)
	stop()
	count := <-written
	if err != nil {
		return count, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return count, err
	}
	if err := w.WaitFor(ctx, head); err != nil {
		return count, err
	}
	if _, err := w.WriteNow(ctx); err != nil {
		return count, fmt.Errorf("WriteNow: %w", err)
	}
	return count + 1, nil
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
