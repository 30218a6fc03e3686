package validator_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
	"github.com/keyledger/keyledger/validator"
)

// Shared setup of the validator benchmarks (bench_*_test.go). Nothing here
// runs unless a benchmark calls it, so `go test` without -bench stays fast.
// Every top-level identifier starts with "bench" so that it cannot collide
// with the package's other test files.

var benchT0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const (
	benchKeysPerUser = 10   // owners are shared, as real users have several keys
	benchSecretPool  = 4096 // distinct secrets, reused round-robin over the keys
	benchTimeout     = 10 * time.Minute
)

// benchLog is a log of key.created events on a real nats-server with
// JetStream file storage: key i has secret secrets[i%len(secrets)].
type benchLog struct {
	srv     *server.Server
	store   *eventstore.Store
	apiKeys []string
	secrets []domain.Secret
	scopes  []string // the scopes add gives every key (none: none)
}

// benchNewLog starts a nats-server and creates the stream through
// eventstore.New, as the ledger does.
func benchNewLog(b *testing.B) *benchLog {
	b.Helper()
	srv := natstest.RunServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := eventstore.New(ctx, natstest.Connect(b, srv), eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		b.Fatalf("eventstore.New: %v", err)
	}
	rng := rand.NewChaCha8([32]byte{7})
	secrets := make([]domain.Secret, benchSecretPool)
	for i := range secrets {
		if secrets[i], err = domain.NewSecret(rng); err != nil {
			b.Fatal(err)
		}
	}
	return &benchLog{srv: srv, store: store, secrets: secrets}
}

// add appends n key.created events with Store.Append from workers
// goroutines (each append waits for its PubAck, with the expected subject
// sequence 0 like every key creation) and returns the rate.
func (l *benchLog) add(b *testing.B, n, workers int) (eventsPerSec float64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	hashes := make([]domain.Hash, len(l.secrets))
	for i, s := range l.secrets {
		hashes[i] = s.Hash()
	}
	first := len(l.apiKeys)
	l.apiKeys = slices.Grow(l.apiKeys, n)[:first+n]
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.NewChaCha8([32]byte{8, byte(w), byte(first >> 16), byte(first >> 8), byte(first)})
			var owner string
			for i, j := first+w, 0; i < first+n; i, j = i+workers, j+1 {
				if j%benchKeysPerUser == 0 {
					owner = domain.UserIDPrefix + ulid.MustNew(ulid.Timestamp(benchT0), rng).String()
				}
				apiKey := domain.APIKeyPrefix + ulid.MustNew(ulid.Timestamp(benchT0), rng).String()
				var k domain.Key
				events, err := k.Create(domain.CreateKey{APIKey: apiKey, UserID: owner, Name: "bench key",
					SecretHash: hashes[i%len(hashes)], PublicKey: domain.PublicKey(hashes[i%len(hashes)]), Scopes: l.scopes}, benchT0)
				if err == nil {
					_, err = l.store.Append(ctx, eventstore.Pending{Event: events[0]})
				}
				if err != nil {
					errs <- fmt.Errorf("append key %d: %w", i, err)
					return
				}
				l.apiKeys[i] = apiKey
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

// secret returns the secret of key i.
func (l *benchLog) secret(i int) domain.Secret { return l.secrets[i%len(l.secrets)] }

// benchOpen opens a stand-alone validation node on its own connection and
// returns it with how long it took to become ready.
func benchOpen(b *testing.B, srv *server.Server, opts ...validator.Option) (*validator.Validator, time.Duration) {
	b.Helper()
	nc := natstest.Connect(b, srv)
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	start := time.Now()
	v, err := validator.Open(ctx, nc, nil, opts...)
	if err != nil {
		b.Fatalf("validator.Open: %v", err)
	}
	for !v.Status().Ready {
		if ctx.Err() != nil {
			b.Fatalf("validator not ready within %v: %+v", benchTimeout, v.Status())
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	b.Cleanup(v.Close)
	return v, took
}

// benchPercentile returns the p-th percentile (0 < p <= 100) of sorted,
// by the nearest-rank method.
func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// benchMicros is d in microseconds, for b.ReportMetric.
func benchMicros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
