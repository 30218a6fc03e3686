//go:build unix

package validator_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections"
)

// BenchmarkApplyCheckpointCheck measures what checking checkpoints while
// applying costs a node: the subscription from the log's start feeding the
// validation lookup, as the projector does, with and without
// eventstore.WithCheckpointCheck, over the same stored log of N
// key.created events. Each iteration runs both, alternating which goes
// first, so that a load that changes during the run weighs on both alike;
// it reports each one's events/s by wall time and the ratio of the
// process's CPU time checked/plain (the embedded nats-server included,
// the same work in both). "signatures" has no checkpoint yet (every
// Ed25519 signature checked); "checkpointed" follows a checkpoint of the
// whole log (the fast path: hashed, not verified one by one), where the
// tree's cost weighs most.
func BenchmarkApplyCheckpointCheck(b *testing.B) {
	const n = 20_000
	l := benchNewLog(b)
	l.add(b, n, benchFillWorkers)
	l.apiKeys = nil
	for _, phase := range []string{"signatures", "checkpointed"} {
		if phase == "checkpointed" {
			benchCheckpoint(b, l)
		}
		b.Run(phase, func(b *testing.B) {
			var wall, cpu [2]time.Duration // plain, checked
			i := 0
			for b.Loop() {
				for k := range 2 {
					check := (i+k)%2 == 1
					c0 := benchCPUTime(b)
					w := benchApply(b, l.store, check)
					c := benchCPUTime(b) - c0
					idx := 0
					if check {
						idx = 1
					}
					wall[idx] += w
					cpu[idx] += c
				}
				i++
			}
			b.ReportMetric(float64(n*b.N)/wall[0].Seconds(), "plain_events/s")
			b.ReportMetric(float64(n*b.N)/wall[1].Seconds(), "checked_events/s")
			b.ReportMetric(cpu[1].Seconds()/cpu[0].Seconds(), "cpu_checked/plain")
			b.ReportMetric(wall[1].Seconds()/wall[0].Seconds(), "wall_checked/plain")
		})
	}
}

// benchCPUTime is the CPU time the process has used so far.
func benchCPUTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchApply subscribes from the start, applies every event to a fresh
// lookup and returns how long until the head of the log was applied.
func benchApply(b *testing.B, store *eventstore.Store, check bool) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	lookup := projections.NewLookup(0)
	done := make(chan struct{})
	var opts []eventstore.SubscribeOption
	if check {
		opts = append(opts, eventstore.WithCheckpointCheck(func(c eventstore.CheckpointCheck) {
			if c.Err != nil {
				b.Error(c.Err)
			}
		}))
	}
	start := time.Now()
	sub, err := store.Subscribe(ctx, 0, func(e domain.Event, err error) {
		if err == nil {
			_ = lookup.Apply(e)
		}
		if e.Sequence == head {
			close(done)
		}
	}, nil, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatal("not caught up")
	}
	return time.Since(start)
}
