package validator_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/validator"
)

const (
	// benchFillWorkers is how many goroutines append concurrently to fill a log.
	benchFillWorkers = 32
	// benchProfileRate is the heap profile's sampling rate while
	// BenchmarkTimeToReady runs: fine enough to weigh a lookup of 100k keys.
	benchProfileRate = 64 << 10
)

// BenchmarkTimeToReady measures how long a validation node takes from
// validator.Open to Status().Ready over a file-storage log of N
// key.created events, and the heap its lookup holds per key once loaded.
// Baselines in the same run, over the same stored log:
//
//   - RawConsumer: an ordered consumer that only counts the messages
//     (what NATS alone costs),
//   - Verify: the Ed25519 check of each event's signature, from memory, on
//     one goroutine (what trusting only the ledger's events costs),
//   - DecodeApply: domain.DecodeEvent and Lookup.Apply of the same
//     payloads from memory, on one goroutine (what the fold alone costs),
//   - ProjectorPolled: projections.Projector over the log with only the
//     lookup, readiness polled instead of awaited with WaitFor.
//
// Validator checks every event's Ed25519 signature: the log has no
// checkpoint yet. ValidatorCheckpointed then has a checkpoint.Writer sign a
// checkpoint of the whole log (checkpoint_s, not timed) and opens a node
// again: it hashes the log against the checkpoint's Merkle root instead
// of verifying each signature.
//
// The fill (N appends, each waiting for its PubAck) is reported as
// fill_events/s. Each variant's events/s is N / seconds-to-ready;
// Validator also reports the heap its lookup holds per key (lookup_B/key).
func BenchmarkTimeToReady(b *testing.B) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = benchProfileRate
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			l := benchNewLog(b)
			fillRate := l.add(b, n, benchFillWorkers)
			l.apiKeys = nil // the node's heap is measured below; these are not part of it

			b.Run("Validator", func(b *testing.B) {
				benchNodeReady(b, l, n, true)
				b.ReportMetric(fillRate, "fill_events/s")
			})
			b.Run("RawConsumer", func(b *testing.B) {
				var took time.Duration
				for b.Loop() {
					took += benchRawConsume(b, l, n)
				}
				benchReportReady(b, took, n)
			})
			var msgs []benchStored // read once, for the two in-memory baselines
			b.Run("Verify", func(b *testing.B) {
				msgs = benchPayloads(b, l, n)
				var took time.Duration
				for b.Loop() {
					start := time.Now()
					benchVerify(b, l.store.SigningKey(), msgs)
					took += time.Since(start)
				}
				benchReportReady(b, took, n)
			})
			b.Run("DecodeApply", func(b *testing.B) {
				if msgs == nil {
					msgs = benchPayloads(b, l, n)
				}
				var took time.Duration
				for b.Loop() {
					start := time.Now()
					lookup := projections.NewLookup(0)
					for _, m := range msgs {
						e, err := domain.DecodeEvent(m.data)
						if err != nil {
							b.Fatal(err)
						}
						if err := lookup.Apply(e); err != nil {
							b.Fatal(err)
						}
					}
					took += time.Since(start)
				}
				benchReportReady(b, took, n)
			})
			msgs = nil
			b.Run("ProjectorPolled", func(b *testing.B) {
				var took time.Duration
				for b.Loop() {
					took += benchProjectorPolled(b, l, n)
				}
				benchReportReady(b, took, n)
			})
			b.Run("ValidatorCheckpointed", func(b *testing.B) {
				written := benchCheckpoint(b, l)
				benchNodeReady(b, l, n, false)
				b.ReportMetric(written.Seconds(), "checkpoint_s")
			})
		})
	}
}

// benchNodeReady opens validation nodes over l until b.Loop is done and
// reports the mean time from validator.Open to ready; with lookup, also the
// heap in use per key that code of package projections allocated (the
// node's lookup), from the heap profile once the node is ready. The
// process's heap would not do: the embedded nats-server shares it, and its
// caches come and go by the megabyte.
func benchNodeReady(b *testing.B, l *benchLog, n int, lookup bool) {
	var took time.Duration
	var perKey float64
	for b.Loop() {
		nc, err := nats.Connect(l.srv.ClientURL())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
		start := time.Now()
		v, err := validator.Open(ctx, nc, nil)
		if err != nil {
			b.Fatalf("validator.Open: %v", err)
		}
		for !v.Status().Ready {
			if ctx.Err() != nil {
				b.Fatalf("validator not ready within %v: %+v", benchTimeout, v.Status())
			}
			time.Sleep(time.Millisecond)
		}
		took += time.Since(start)
		cancel()
		b.StopTimer()
		if keys := v.Status().Keys; keys != n {
			b.Fatalf("node holds %d keys, want %d", keys, n)
		}
		if lookup {
			perKey = benchInUse("github.com/keyledger/keyledger/projections.") / float64(n)
		}
		v.Close()
		nc.Close()
		b.StartTimer()
	}
	benchReportReady(b, took, n)
	if lookup {
		b.ReportMetric(perKey, "lookup_B/key")
	}
}

// benchInUse estimates the heap in use that was allocated by functions
// whose name starts with prefix (anywhere on the allocating stack), from
// the heap profile, scaled for its sampling as pprof does.
func benchInUse(prefix string) float64 {
	runtime.GC()
	runtime.GC() // the profile is as of the last completed cycle
	var recs []runtime.MemProfileRecord
	for n, ok := runtime.MemProfile(nil, true); !ok; {
		recs = make([]runtime.MemProfileRecord, n+64)
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
		}
	}
	rate := float64(runtime.MemProfileRate)
	var total float64
	for _, r := range recs {
		if r.InUseBytes() == 0 || !benchAllocatedBy(r.Stack(), prefix) {
			continue
		}
		avg := float64(r.AllocBytes) / float64(r.AllocObjects)
		total += float64(r.InUseBytes()) / (1 - math.Exp(-avg/rate))
	}
	return total
}

func benchAllocatedBy(stack []uintptr, prefix string) bool {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, prefix) {
			return true
		}
		if !more {
			return false
		}
	}
}

// benchCheckpoint has a checkpoint.Writer (as `keyledger serve` runs one)
// append a signed checkpoint of the whole log, and returns how long that
// took, reading the log included.
func benchCheckpoint(b *testing.B, l *benchLog) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	start := time.Now()
	head, err := l.store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	w, err := checkpoint.Start(ctx, l.store, nil, time.Hour)
	if err != nil {
		b.Fatalf("checkpoint.Start: %v", err)
	}
	defer w.Close()
	if err := w.WaitFor(ctx, head); err != nil {
		b.Fatal(err)
	}
	if _, err := w.WriteNow(ctx); err != nil {
		b.Fatalf("WriteNow: %v", err)
	}
	return time.Since(start)
}

// benchReportReady reports the mean time to ready of b.N runs over n
// events, and the rate.
func benchReportReady(b *testing.B, total time.Duration, n int) {
	mean := total.Seconds() / float64(b.N)
	b.ReportMetric(mean, "s/ready")
	b.ReportMetric(float64(n)/mean, "events/s")
}

// benchRawConsume reads the whole stream with an ordered consumer on a new
// connection and returns how long it took, from creating the consumer.
func benchRawConsume(b *testing.B, l *benchLog, n int) time.Duration {
	b.Helper()
	nc := natstest.Connect(b, l.srv)
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	start := time.Now()
	cons, err := js.OrderedConsumer(ctx, l.store.StreamName(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("raw consumer got %d of %d messages", got.Load(), n)
	}
	return time.Since(start)
}

// benchStored is a stored message as a validation node receives it.
type benchStored struct {
	subject, signature string
	data               []byte
}

// benchSignedPrefix mirrors what eventstore signs: this prefix, the
// subject, a newline, the payload. Verify fails loudly if they drift apart.
const benchSignedPrefix = "keyledger/v1/event\n"

// benchPayloads returns the first n stored messages.
func benchPayloads(b *testing.B, l *benchLog, n int) []benchStored {
	b.Helper()
	nc := natstest.Connect(b, l.srv)
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, l.store.StreamName(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]benchStored, 0, n)
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if len(msgs) < n {
			msgs = append(msgs, benchStored{subject: m.Subject(), signature: m.Headers().Get(eventstore.HeaderSignature), data: m.Data()})
			if len(msgs) == n {
				close(done)
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatalf("read %d of %d messages", len(msgs), n)
	}
	return msgs
}

// benchVerify checks the signature of every message as a node does:
// decode the header, rebuild the signed bytes, ed25519.Verify.
func benchVerify(b *testing.B, pub ed25519.PublicKey, msgs []benchStored) {
	for _, m := range msgs {
		sig, err := base64.RawURLEncoding.DecodeString(m.signature)
		if err != nil {
			b.Fatal(err)
		}
		signed := make([]byte, 0, len(benchSignedPrefix)+len(m.subject)+1+len(m.data))
		signed = append(append(append(append(signed, benchSignedPrefix...), m.subject...), '\n'), m.data...)
		if !ed25519.Verify(pub, signed, sig) {
			b.Fatalf("signature of %s does not verify", m.subject)
		}
	}
}

// benchProjectorPolled replays the log into a lookup through a Projector
// and polls its readiness, so that no WaitFor waiter is woken per event.
func benchProjectorPolled(b *testing.B, l *benchLog, n int) time.Duration {
	b.Helper()
	nc := natstest.Connect(b, l.srv)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	start := time.Now()
	store, err := eventstore.New(ctx, nc, eventstore.ReadOnly())
	if err != nil {
		b.Fatal(err)
	}
	lookup := projections.NewLookup(0)
	p, err := projections.New(store, nil, lookup)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	for !p.Ready() {
		if ctx.Err() != nil {
			b.Fatalf("projector not ready: %+v", p.Status())
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	if lookup.Len() != n {
		b.Fatalf("lookup holds %d keys, want %d", lookup.Len(), n)
	}
	return took
}
