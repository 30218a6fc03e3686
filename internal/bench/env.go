package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/validator"
)

// env owns what a scenario started; close undoes it in reverse order.
type env struct {
	undo []func()
}

func (e *env) defer_(f func()) { e.undo = append(e.undo, f) }

func (e *env) close() {
	for _, f := range slices.Backward(e.undo) {
		f()
	}
	e.undo = nil
}

// tempDir makes a temporary directory removed by close.
func (e *env) tempDir() (string, error) {
	dir, err := os.MkdirTemp("", "keyledger-bench-")
	if err != nil {
		return "", err
	}
	e.defer_(func() { os.RemoveAll(dir) })
	return dir, nil
}

// natsServer starts a nats-server with JetStream file storage in a
// temporary directory on a free loopback port.
func (e *env) natsServer() (*server.Server, error) {
	dir, err := e.tempDir()
	if err != nil {
		return nil, err
	}
	ns, err := embedded.Start(embedded.Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		return nil, err
	}
	e.defer_(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns, nil
}

// connect opens a connection of its own to ns.
func (e *env) connect(ns *server.Server) (*nats.Conn, error) {
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	e.defer_(nc.Close)
	return nc, nil
}

// benchPassword and the cheap argon2 parameters: password hashing is not
// what is measured.
const benchPassword = "correct horse battery staple"

var cheapArgon2 = auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}

// newLog opens a writable event store on nc, creating the stream, signed
// with a key made for this run. Every scenario's log lives in a temporary
// directory and dies with the run, so its key is never kept nor trusted by
// anything else; the store itself never makes up a key.
func newLog(ctx context.Context, nc *nats.Conn) (*eventstore.Store, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	store, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(key))
	if err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	return store, nil
}

// ledgerRun is a ledger service on a log, with the owner of the keys it
// creates.
type ledgerRun struct {
	store  *eventstore.Store
	svc    *ledger.Service
	userID string
}

// ledger opens a ledger on the log on nc with serve's wiring (file
// storage, cheap argon2), and registers a user.
func (e *env) ledger(ctx context.Context, nc *nats.Conn) (*ledgerRun, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	l, err := app.OpenLedger(ctx, nc, app.LedgerConfig{SigningKey: key, Argon2: cheapArgon2,
		MaxKeysPerUser: -1}) // benchmarks create many keys for one user
	if err != nil {
		return nil, err
	}
	e.defer_(l.Close)
	if err := l.Projector.WaitReady(ctx); err != nil {
		return nil, err
	}
	store, svc := l.Store, l.Service
	u, err := svc.RegisterUser(ctx, ledger.RegisterUser{Email: "bench@example.com", Password: benchPassword})
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return &ledgerRun{store: store, svc: svc, userID: u.ID}, nil
}

// node opens a stand-alone validation node on a connection of its own and
// waits until it is ready.
func (e *env) node(ctx context.Context, ns *server.Server, opts ...validator.Option) (*validator.Validator, error) {
	nc, err := e.connect(ns)
	if err != nil {
		return nil, err
	}
	v, err := validator.Open(ctx, nc, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		return nil, fmt.Errorf("validator.Open: %w", err)
	}
	e.defer_(v.Close)
	for !v.Status().Ready {
		if err := sleep(ctx, time.Millisecond); err != nil {
			return nil, fmt.Errorf("validator not ready: %+v: %w", v.Status(), err)
		}
	}
	return v, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// keySet is a log of key.created events: key i has secret secrets[i%len].
type keySet struct {
	apiKeys []string
	secrets []string // formatted ("sk_...")
	hashes  []domain.Hash
}

func (k *keySet) secret(i int) string { return k.secrets[i%len(k.secrets)] }

const (
	keysPerUser = 10   // owners are shared, as real users have several keys
	secretPool  = 4096 // distinct secrets, reused round-robin over the keys
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fillLog appends n key.created events with Store.Append from workers
// goroutines, each append waiting for its PubAck.
func fillLog(ctx context.Context, store *eventstore.Store, n, workers int) (*keySet, error) {
	return fillLogWith(ctx, store, n, workers, 0, nil)
}

// fillLogWith is fillLog with each key's creation changed by edit (nil:
// none); seed tells the key ids of one call from another's.
func fillLogWith(ctx context.Context, store *eventstore.Store, n, workers int, seed byte, edit func(*domain.CreateKey)) (*keySet, error) {
	rng := mrand.NewChaCha8([32]byte{7})
	ks := &keySet{apiKeys: make([]string, n)}
	for range min(n, secretPool) {
		s, err := domain.NewSecret(rng)
		if err != nil {
			return nil, err
		}
		ks.secrets = append(ks.secrets, s.Reveal())
		ks.hashes = append(ks.hashes, s.Hash())
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := mrand.NewChaCha8([32]byte{8, byte(w), seed})
			var owner string
			for i, j := w, 0; i < n; i, j = i+workers, j+1 {
				if j%keysPerUser == 0 {
					owner = domain.UserIDPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String()
				}
				apiKey := domain.APIKeyPrefix + ulid.MustNew(ulid.Timestamp(t0), rng).String()
				var k domain.Key
				cmd := domain.CreateKey{APIKey: apiKey, UserID: owner, Name: "bench key",
					SecretHash: ks.hashes[i%len(ks.hashes)], PublicKey: domain.PublicKey(ks.hashes[i%len(ks.hashes)])}
				if edit != nil {
					edit(&cmd)
				}
				events, err := k.Create(cmd, t0)
				if err == nil {
					_, err = store.Append(ctx, eventstore.Pending{Event: events[0]})
				}
				if err != nil {
					errs <- fmt.Errorf("append key %d: %w", i, err)
					return
				}
				ks.apiKeys[i] = apiKey
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return ks, nil
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted, by the
// nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// Parallel runs op(i) for i in [0, n) from workers goroutines and returns
// the rate per second and every call's duration, sorted. It stops at the
// first error, and when ctx ends.
func Parallel(ctx context.Context, n, workers int, op func(ctx context.Context, i int) error) (perSec float64, took []time.Duration, err error) {
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				took = append(took, mine...)
				mu.Unlock()
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := op(ctx, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				mine = append(mine, time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	slices.Sort(took)
	return float64(len(took)) / elapsed.Seconds(), took, firstErr
}

// RawMessage returns a message for the raw-publish baseline: the header
// and data of a stored event, with a fresh Nats-Msg-Id of the same length
// (so deduplication costs the same and never drops it), and any
// Nats-Expected-* header renamed so that the server checks nothing.
func RawMessage(subject string, like *jetstream.RawStreamMsg) *nats.Msg {
	m := nats.NewMsg(subject)
	for k, v := range like.Header {
		m.Header[k] = slices.Clone(v)
	}
	m.Header.Set(jetstream.MsgIDHeader, ulid.MustNew(ulid.Now(), rand.Reader).String())
	// A raw publish states no expectation; pad instead, to keep the size.
	for k, v := range m.Header {
		if strings.HasPrefix(k, "Nats-Expected-") {
			m.Header.Del(k)
			m.Header.Set("X-Bench-Pad-"+k[len("Nats-Expected-"):], strings.Join(v, ","))
		}
	}
	m.Data = slices.Clone(like.Data)
	return m
}

// SampleEvent returns the newest message of the log stream on nc: an
// encoded event with its headers, as stored.
func SampleEvent(ctx context.Context, nc *nats.Conn, stream string) (*jetstream.RawStreamMsg, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	return s.GetMsg(ctx, info.State.LastSeq)
}

// RawPublish is the append baseline: it creates a file-storage stream
// named stream on nc and publishes n copies of like (each with its own
// message id) with js.PublishMsg, waiting for each PubAck, from clients
// goroutines. It returns publishes per second.
func RawPublish(ctx context.Context, nc *nats.Conn, stream string, like *jetstream.RawStreamMsg, n, clients int) (float64, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	subject := "bench." + stream
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject + ".>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		return 0, fmt.Errorf("create stream %s: %w", stream, err)
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), stream)
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		// One subject per message, as each key is an aggregate of its own.
		msgs[i] = RawMessage(fmt.Sprintf("%s.%d", subject, i), like)
	}
	rate, _, err := Parallel(ctx, n, clients, func(ctx context.Context, i int) error {
		_, err := js.PublishMsg(ctx, msgs[i])
		return err
	})
	return rate, err
}

// HTTPClient returns a client of clients keep-alive connections on
// loopback; close its idle connections when done.
func HTTPClient(clients int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: clients,
		MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true, IdleConnTimeout: time.Minute}}
}

// Drain reads and closes a response body, so the connection is reused,
// and returns an error unless the status is want.
func Drain(resp *http.Response, want int) error {
	_, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want)
	}
	return err
}

var errSpin = errors.New("condition not met in time")

// spinUntil calls done for each item in turn, yielding between rounds,
// until it has held once for every item; at each first time it calls
// record with the time. It gives up after limit.
func spinUntil[T any](items []T, limit time.Duration, done func(T) (bool, error), record func(at time.Time)) error {
	pending := slices.Clone(items)
	deadline := time.Now().Add(limit)
	for len(pending) > 0 {
		for i := 0; i < len(pending); {
			ok, err := done(pending[i])
			if err != nil {
				return err
			}
			if !ok {
				i++
				continue
			}
			if record != nil {
				record(time.Now())
			}
			pending = slices.Delete(pending, i, i+1)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d still pending after %v: %w", len(pending), len(items), limit, errSpin)
		}
		runtime.Gosched()
	}
	return nil
}

func sortDurations(d []time.Duration) { slices.Sort(d) }
