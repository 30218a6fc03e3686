package validator_test

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

const (
	benchNodes = 3                   // validation nodes, each on its own connection
	benchPace  = time.Millisecond    // idle time before each measured step
	benchSpin  = 10 * time.Second    // longest a step may take before the benchmark fails
	benchRaw   = "BENCHRAW"          // the baseline's stream
	benchRawTo = "benchraw.revoke"   // and its subject
	benchEmail = "bench@example.com" // the owner of the revoked keys
	benchPass  = "correct horse battery staple"
)

// BenchmarkRevocationPropagation measures how long a revocation takes to
// be in force on every validation node: one iteration creates a key
// through the ledger service, waits until all nodes accept it, revokes it
// with Service.RevokeKey, and from the moment RevokeKey returns spins on
// each node's Validate until it answers ErrUnauthorized. Every (key, node)
// pair is one sample; rev_* are the percentiles after RevokeKey returned,
// revcall_* the same from the moment it was called.
//
// The baseline, in the same iteration under the same conditions: a raw
// jetstream.Publish to a stream of its own, read by one ordered consumer
// per node (each on its own connection); spin until each consumer has the
// message. rawcall_* is publish-to-delivery (from the call), raw_* from the
// moment Publish returned with its PubAck. x_p50 and x_p99 compare the
// revocation after RevokeKey returned with publish-to-delivery
// (rev / rawcall), x_call_* the two from their calls (revcall / rawcall).
//
// Compare GOMAXPROCS=1 and the default with the environment variable, not
// with -cpu: the first run of a benchmark gets the last -cpu value
// (golang/go#49980), and a b.Loop benchmark runs only that once.
//
// Variants: Paced (nothing else happens) and UnderLoad (another goroutine
// creates keys through the service without pause; their events reach the
// nodes too). Run with a fixed count: -benchtime 2000x.
func BenchmarkRevocationPropagation(b *testing.B) {
	srv := natstest.RunServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, userID := benchLedger(b, ctx, natstest.Connect(b, srv))
	nodes := make([]*validator.Validator, benchNodes)
	for i := range nodes {
		nodes[i], _ = benchOpen(b, srv, validator.WithFailureLimit(validator.NoLimit, 0)) // polls of keys not yet applied fail
	}

	pubJS, err := jetstream.New(natstest.Connect(b, srv))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pubJS.CreateStream(ctx, jetstream.StreamConfig{Name: benchRaw, Subjects: []string{"benchraw.>"}}); err != nil {
		b.Fatal(err)
	}
	received := make([]*atomic.Uint64, benchNodes) // the last sequence number each consumer read
	for i := range received {
		received[i] = benchRawConsumer(b, ctx, natstest.Connect(b, srv))
	}
	var published uint64

	for _, variant := range []struct {
		name string
		load bool
	}{{"Paced", false}, {"UnderLoad", true}} {
		b.Run(variant.name, func(b *testing.B) {
			var stopLoad func() (created int, took time.Duration)
			if variant.load {
				stopLoad = benchLoad(b, ctx, svc, userID)
			}
			var rev, revCall, raw, rawCall []time.Duration
			for b.Loop() {
				// The revocation.
				k, secret, err := svc.CreateKey(ctx, ledger.CreateKey{UserID: userID})
				if err != nil {
					b.Fatalf("CreateKey: %v", err)
				}
				benchSpinNodes(b, nodes, func(v *validator.Validator) bool {
					_, err := v.Validate(ctx, k.APIKey, secret.Reveal())
					if err != nil && !errors.Is(err, validator.ErrUnauthorized) {
						b.Fatalf("Validate of a new key: %v", err) // not ready or stale
					}
					return err == nil
				}, nil)
				time.Sleep(benchPace)
				called := time.Now()
				if err := svc.RevokeKey(ctx, ledger.RevokeKey{UserID: userID, APIKey: k.APIKey}); err != nil {
					b.Fatalf("RevokeKey: %v", err)
				}
				returned := time.Now()
				benchSpinNodes(b, nodes, func(v *validator.Validator) bool {
					_, err := v.Validate(ctx, k.APIKey, secret.Reveal())
					if err != nil && !errors.Is(err, validator.ErrUnauthorized) {
						b.Fatalf("Validate of a revoked key: %v", err)
					}
					return err != nil
				}, func(at time.Time) {
					rev, revCall = append(rev, at.Sub(returned)), append(revCall, at.Sub(called))
				})

				// The baseline.
				time.Sleep(benchPace)
				published++
				seq := published
				msg := binary.BigEndian.AppendUint64(nil, seq)
				called = time.Now()
				if _, err := pubJS.Publish(ctx, benchRawTo, msg); err != nil {
					b.Fatalf("Publish: %v", err)
				}
				returned = time.Now()
				benchSpinNodes(b, received, func(r *atomic.Uint64) bool { return r.Load() >= seq },
					func(at time.Time) {
						raw, rawCall = append(raw, at.Sub(returned)), append(rawCall, at.Sub(called))
					})
			}
			b.StopTimer()
			if stopLoad != nil {
				created, took := stopLoad()
				b.ReportMetric(float64(created)/took.Seconds(), "load_keys/s")
			}
			for _, d := range [][]time.Duration{rev, revCall, raw, rawCall} {
				slices.Sort(d)
			}
			p := benchPercentile
			b.ReportMetric(benchMicros(p(rev, 50)), "rev_p50_us")
			b.ReportMetric(benchMicros(p(rev, 99)), "rev_p99_us")
			b.ReportMetric(benchMicros(p(rev, 100)), "rev_max_us")
			b.ReportMetric(benchMicros(p(revCall, 50)), "revcall_p50_us")
			b.ReportMetric(benchMicros(p(revCall, 99)), "revcall_p99_us")
			b.ReportMetric(benchMicros(p(raw, 50)), "raw_p50_us")
			b.ReportMetric(benchMicros(p(raw, 99)), "raw_p99_us")
			b.ReportMetric(benchMicros(p(raw, 100)), "raw_max_us")
			b.ReportMetric(benchMicros(p(rawCall, 50)), "rawcall_p50_us")
			b.ReportMetric(benchMicros(p(rawCall, 99)), "rawcall_p99_us")
			b.ReportMetric(float64(p(rev, 50))/float64(p(rawCall, 50)), "x_p50")
			b.ReportMetric(float64(p(rev, 99))/float64(p(rawCall, 99)), "x_p99")
			b.ReportMetric(float64(p(revCall, 50))/float64(p(rawCall, 50)), "x_call_p50")
			b.ReportMetric(float64(p(revCall, 99))/float64(p(rawCall, 99)), "x_call_p99")
			b.ReportMetric(float64(len(rev)), "samples")
		})
	}
}

// benchLedger opens a ledger on the log on nc with the one wiring
// (ledgertest, a cheap argon2), and registers the owner of the benchmark's
// keys.
func benchLedger(b *testing.B, ctx context.Context, nc *nats.Conn) (*ledger.Service, string) {
	b.Helper()
	l := ledgertest.New(b, nc)
	u, err := l.Service.RegisterUser(ctx, ledger.RegisterUser{Email: benchEmail, Password: benchPass})
	if err != nil {
		b.Fatalf("RegisterUser: %v", err)
	}
	return l.Service, u.ID
}

// benchRawConsumer starts an ordered consumer of the baseline stream's new
// messages on nc and returns the sequence number of the last one it read.
func benchRawConsumer(b *testing.B, ctx context.Context, nc *nats.Conn) *atomic.Uint64 {
	b.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, benchRaw, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		b.Fatal(err)
	}
	var last atomic.Uint64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if len(m.Data()) == 8 {
			last.Store(binary.BigEndian.Uint64(m.Data()))
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
	return &last
}

// benchLoad creates keys through svc, one after another without pause,
// until the returned function is called; that reports how many and over
// how long.
func benchLoad(b *testing.B, ctx context.Context, svc *ledger.Service, userID string) func() (int, time.Duration) {
	var stop atomic.Bool
	var created int
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		for !stop.Load() {
			if _, _, err := svc.CreateKey(ctx, ledger.CreateKey{UserID: userID}); err != nil {
				b.Errorf("load: CreateKey: %v", err)
				return
			}
			created++
		}
	})
	return func() (int, time.Duration) {
		stop.Store(true)
		wg.Wait()
		return created, time.Since(start)
	}
}

// benchSpinNodes calls done(node) for each node in turn, yielding between
// rounds, until it has held once for every node; at each first time it
// calls record (if set) with the time.
func benchSpinNodes[T any](b *testing.B, nodes []T, done func(T) bool, record func(at time.Time)) {
	b.Helper()
	pending := slices.Clone(nodes)
	deadline := time.Now().Add(benchSpin)
	for len(pending) > 0 {
		for i := 0; i < len(pending); {
			if !done(pending[i]) {
				i++
				continue
			}
			if record != nil {
				record(time.Now())
			}
			pending = slices.Delete(pending, i, i+1)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d nodes still pending after %v", len(pending), len(nodes), benchSpin)
		}
		runtime.Gosched()
	}
}
