package idempotency_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
)

const timeout = 10 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, idempotency.SecretSize) }

// env is a Store on a real embedded nats-server, on a settable clock.
type env struct {
	nc    *nats.Conn
	clock *testclock.Clock
	store *idempotency.Store
}

func newEnv(t *testing.T, opts ...idempotency.Option) *env {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	e := &env{nc: nc, clock: testclock.New(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))}
	e.store = e.open(t, secret(1), opts...)
	return e
}

// open returns another Store on e's bucket and clock.
func (e *env) open(t *testing.T, key []byte, opts ...idempotency.Option) *idempotency.Store {
	t.Helper()
	opts = append([]idempotency.Option{idempotency.WithMemoryStorage(), idempotency.WithClock(e.clock.Now)}, opts...)
	s, err := idempotency.New(testContext(t), e.nc, key, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// values returns every value stored in the bucket, raw.
func (e *env) values(t *testing.T) [][]byte {
	t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(testContext(t), e.store.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for k := range keys.Keys() {
		entry, err := kv.Get(testContext(t), k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry.Value())
	}
	return out
}

func fp(s string) [32]byte {
	return idempotency.Fingerprint("POST", "POST /api-keys", nil, "usr_1", []byte(s))
}

func begin(t *testing.T, s *idempotency.Store, key idempotency.Key, body, plan string) *idempotency.Claim {
	t.Helper()
	c, err := s.Begin(testContext(t), key, fp(body), []byte(plan))
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return c
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func wantKind(t *testing.T, err error, want domain.Kind) {
	t.Helper()
	if got := domain.KindOf(err); err == nil || got != want {
		t.Fatalf("got %v (%v), want a %v error", got, err, want)
	}
}

var alice = idempotency.Key{Scope: "usr_alice", Value: "order-1"}

func TestStore_Begin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	created := idempotency.Response{Status: 201, Header: map[string]string{"Location": "/api-keys/ak_1"},
		Body: []byte(`{"api_key":"ak_1"}`)}

	t.Run("New", func(t *testing.T) {
		c := begin(t, e.store, alice, "body", "plan-1")
		if c.Replay != nil || c.TakenOver || string(c.Plan) != "plan-1" {
			t.Fatalf("got replay %v, taken over %v, plan %q; want a new claim with plan-1", c.Replay, c.TakenOver, c.Plan)
		}
		if want := e.clock.Now().Add(idempotency.DefaultLease); !c.LeaseUntil.Equal(want) {
			t.Errorf("LeaseUntil: got %v, want %v", c.LeaseUntil, want)
		}

		t.Run("ErrInProgress", func(t *testing.T) {
			_, err := e.store.Begin(ctx, alice, fp("body"), []byte("plan-2"))
			wantErr(t, err, idempotency.ErrInProgress)
			wantKind(t, err, domain.IdempotencyKeyInUse)
		})
		t.Run("ErrReused", func(t *testing.T) {
			_, err := e.store.Begin(ctx, alice, fp("other body"), []byte("plan-2"))
			wantErr(t, err, idempotency.ErrReused)
			wantKind(t, err, domain.IdempotencyKeyReused)
		})

		if err := e.store.Complete(ctx, c, created); err != nil {
			t.Fatalf("Complete: %v", err)
		}
	})

	t.Run("Replay", func(t *testing.T) {
		c := begin(t, e.store, alice, "body", "plan-3")
		if c.Replay == nil {
			t.Fatalf("got a claim to run, want a replay")
		}
		if c.Replay.Status != created.Status || c.Replay.Header["Location"] != created.Header["Location"] ||
			!bytes.Equal(c.Replay.Body, created.Body) {
			t.Errorf("got %+v, want %+v", *c.Replay, created)
		}
		if err := e.store.Complete(ctx, c, created); err == nil {
			t.Errorf("Complete of a replay: got nil, want an error")
		}
	})

	t.Run("ErrReusedAfterDone", func(t *testing.T) {
		_, err := e.store.Begin(ctx, alice, fp("other body"), nil)
		wantErr(t, err, idempotency.ErrReused)
	})

	t.Run("ScopesApart", func(t *testing.T) {
		bob := idempotency.Key{Scope: "usr_bob", Value: alice.Value}
		if c := begin(t, e.store, bob, "other body", "plan-b"); c.Replay != nil || string(c.Plan) != "plan-b" {
			t.Errorf("got replay %v, plan %q; want a new claim", c.Replay, c.Plan)
		}
		// Fields are length-prefixed: ("ab","c") is not ("a","bc").
		k1 := idempotency.Key{Scope: "ab", Value: "c"}
		k2 := idempotency.Key{Scope: "a", Value: "bc"}
		begin(t, e.store, k1, "x", "p")
		if c := begin(t, e.store, k2, "y", "p"); c.Replay != nil {
			t.Errorf("got a replay of another key's record")
		}
	})
}

func TestStore_TakeOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	key := idempotency.Key{Scope: "usr_alice", Value: "crash"}

	first := begin(t, e.store, key, "body", "plan-first")

	t.Run("ErrInProgressUntilLeaseEnds", func(t *testing.T) {
		e.clock.Advance(idempotency.DefaultLease - time.Second)
		_, err := e.store.Begin(ctx, key, fp("body"), []byte("plan-second"))
		wantErr(t, err, idempotency.ErrInProgress)
	})

	e.clock.Advance(time.Second) // the first request's server died
	second := begin(t, e.store, key, "body", "plan-second")

	t.Run("SamePlan", func(t *testing.T) {
		if !second.TakenOver || second.Replay != nil || string(second.Plan) != "plan-first" {
			t.Fatalf("got taken over %v, replay %v, plan %q; want the first request's plan taken over",
				second.TakenOver, second.Replay, second.Plan)
		}
	})
	t.Run("ErrReusedStill", func(t *testing.T) {
		_, err := e.store.Begin(ctx, key, fp("other body"), nil)
		wantErr(t, err, idempotency.ErrReused)
	})
	t.Run("ErrClaimLost", func(t *testing.T) {
		// The first request wakes up: its claim is gone.
		wantErr(t, e.store.Complete(ctx, first, idempotency.Response{Status: 201}), idempotency.ErrClaimLost)
		wantErr(t, e.store.Release(ctx, first), idempotency.ErrClaimLost)
	})
	if err := e.store.Complete(ctx, second, idempotency.Response{Status: 204}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if c := begin(t, e.store, key, "body", "plan-third"); c.Replay == nil || c.Replay.Status != 204 {
		t.Fatalf("got %+v, want a replay of 204", c)
	}
}

func TestStore_Release(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	key := idempotency.Key{Scope: "anonymous", Value: "retry-me"}
	c := begin(t, e.store, key, "body", "plan-first")
	if err := e.store.Release(ctx, c); err != nil {
		t.Fatalf("Release: %v", err)
	}
	// No wait for a lease: the next retry runs at once, with the plan the
	// released run had, since its effect may be stored.
	again := begin(t, e.store, key, "body", "plan-second")
	if !again.TakenOver || string(again.Plan) != "plan-first" {
		t.Fatalf("got taken over %v, plan %q; want plan-first taken over", again.TakenOver, again.Plan)
	}
	_, err := e.store.Begin(ctx, key, fp("body"), nil)
	wantErr(t, err, idempotency.ErrInProgress)
}

func TestStore_Concurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := idempotency.Key{Scope: "usr_alice", Value: "race"}
	const n = 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		claims []*idempotency.Claim
		errs   []error
	)
	for i := range n {
		wg.Go(func() {
			c, err := e.store.Begin(testContext(t), key, fp("body"), fmt.Appendf(nil, "plan-%d", i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				claims = append(claims, c)
			}
		})
	}
	wg.Wait()
	if len(claims) != 1 {
		t.Fatalf("got %d claims (errors %v), want exactly 1", len(claims), errs)
	}
	for _, err := range errs {
		wantErr(t, err, idempotency.ErrInProgress)
	}
}

// TestStore_Encrypted: the bucket holds neither the plan nor the response
// in clear, and a store with another secret cannot read a record (nor
// mistake it for a new one).
func TestStore_Encrypted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testContext(t)
	const sk = "sk_4Kq9dZ0pWmT3vB7nR2xY5cL8hJ1fG6sA0eU3iO9wQ2z1aB3c"
	key := idempotency.Key{Scope: "usr_alice", Value: "secret-key-value"}
	c := begin(t, e.store, key, "body", `{"secret":"`+sk+`"}`)
	check := func(what string) {
		t.Helper()
		values := e.values(t)
		if len(values) != 1 {
			t.Fatalf("%s: got %d values, want 1", what, len(values))
		}
		for _, needle := range []string{sk, base64.StdEncoding.EncodeToString([]byte(sk)), "secret-key-value", "usr_alice", "pending", "done"} {
			if bytes.Contains(values[0], []byte(needle)) {
				t.Errorf("%s: the stored value contains %q in clear", what, needle)
			}
		}
	}
	check("pending")
	if err := e.store.Complete(ctx, c, idempotency.Response{Status: 201, Body: []byte(`{"secret":"` + sk + `"}`)}); err != nil {
		t.Fatal(err)
	}
	check("done")

	other := e.open(t, secret(2))
	_, err := other.Begin(ctx, key, fp("body"), nil)
	wantKind(t, err, domain.IdempotencyKeyReused)
	if strings.Contains(err.Error(), sk) {
		t.Errorf("error %v holds the secret", err)
	}
}

func TestStore_Unavailable(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	proxy := natstest.StartProxy(t, strings.TrimPrefix(ns.ClientURL(), "nats://"))
	nc, err := nats.Connect(proxy.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := idempotency.New(testContext(t), nc, secret(1), idempotency.WithMemoryStorage())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	key := idempotency.Key{Scope: "usr_alice", Value: "offline"}
	c, err := s.Begin(testContext(t), key, fp("body"), []byte("plan"))
	if err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	natstest.Eventually(t, timeout, func() bool { return !nc.IsConnected() }, "client disconnected")
	_, err = s.Begin(testContext(t), idempotency.Key{Scope: "usr_alice", Value: "new"}, fp("body"), []byte("plan"))
	wantKind(t, err, domain.Unavailable)
	wantKind(t, s.Complete(testContext(t), c, idempotency.Response{Status: 201}), domain.Unavailable)

	proxy.Restore()
	natstest.Eventually(t, timeout, nc.IsConnected, "client reconnected")
	// Nothing was recorded while cut off: the new key starts afresh, and
	// the claim that could not complete is still pending.
	if c, err := s.Begin(testContext(t), idempotency.Key{Scope: "usr_alice", Value: "new"}, fp("body"), []byte("plan")); err != nil || c.TakenOver || c.Replay != nil {
		t.Errorf("got %+v, %v; want a new claim", c, err)
	}
	_, err = s.Begin(testContext(t), key, fp("body"), nil)
	wantErr(t, err, idempotency.ErrInProgress)
}

func TestNew(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	ctx := testContext(t)
	for _, tc := range []struct {
		name   string
		secret []byte
		opts   []idempotency.Option
	}{
		{"ErrShortSecret", make([]byte, 16), nil},
		{"ErrBucketName", secret(1), []idempotency.Option{idempotency.WithBucket("a.b")}},
		{"ErrTTL", secret(1), []idempotency.Option{idempotency.WithTTL(time.Second)}},
		{"ErrTTLNegative", secret(1), []idempotency.Option{idempotency.WithTTL(-time.Hour)}},
		{"ErrReplicas", secret(1), []idempotency.Option{idempotency.WithReplicas(6)}},
		{"ErrReplicasNegative", secret(1), []idempotency.Option{idempotency.WithReplicas(-1)}},
		{"ErrLease", secret(1), []idempotency.Option{idempotency.WithLease(-time.Second)}},
		{"ErrTimeout", secret(1), []idempotency.Option{idempotency.WithTimeout(-time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := idempotency.New(ctx, nc, tc.secret, tc.opts...)
			wantKind(t, err, domain.Invalid)
		})
	}

	t.Run("ZeroMeansDefault", func(t *testing.T) {
		s, err := idempotency.New(ctx, nc, secret(1), idempotency.WithBucket(""), idempotency.WithTTL(0),
			idempotency.WithLease(0), idempotency.WithReplicas(0), idempotency.WithTimeout(0), idempotency.WithClock(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.Bucket(), idempotency.DefaultBucket; got != want {
			t.Errorf("bucket: got %q, want %q", got, want)
		}
		js, _ := jetstream.New(nc)
		stream, err := js.Stream(ctx, "KV_"+idempotency.DefaultBucket)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := stream.CachedInfo().Config; cfg.MaxAge != idempotency.DefaultTTL || cfg.Replicas != 1 {
			t.Errorf("got max age %v, replicas %d; want %v, 1", cfg.MaxAge, cfg.Replicas, idempotency.DefaultTTL)
		}
		// The default clock and lease: a fresh claim's lease ends about
		// DefaultLease from now.
		c, err := s.Begin(ctx, idempotency.Key{Scope: "usr_zero", Value: "k"}, fp("body"), []byte("plan"))
		if err != nil {
			t.Fatal(err)
		}
		if left := time.Until(c.LeaseUntil); left <= 0 || left > idempotency.DefaultLease {
			t.Errorf("lease ends in %v, want within %v", left, idempotency.DefaultLease)
		}
	})

	t.Run("Config", func(t *testing.T) {
		s, err := idempotency.New(ctx, nc, secret(1), idempotency.WithBucket("IDEM_TEST"), idempotency.WithTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		stream, err := js.Stream(ctx, "KV_"+s.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		cfg := stream.CachedInfo().Config
		if cfg.MaxAge != time.Hour || cfg.Replicas != 1 || cfg.MaxMsgsPerSubject != 1 || cfg.Storage != jetstream.FileStorage {
			t.Errorf("got max age %v, replicas %d, history %d, storage %v; want 1h, 1, 1, file",
				cfg.MaxAge, cfg.Replicas, cfg.MaxMsgsPerSubject, cfg.Storage)
		}
		// Reopening with another TTL updates the bucket.
		if _, err := idempotency.New(ctx, nc, secret(1), idempotency.WithBucket("IDEM_TEST"), idempotency.WithTTL(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.MaxAge != 2*time.Hour {
			t.Errorf("after reopening: got max age %v, want 2h", info.Config.MaxAge)
		}
	})
}

func TestValidateKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		v    string
		ok   bool
	}{
		{"UUID", "5f0c8a1e-3b2d-4c6f-9a7e-1d2c3b4a5f60", true},
		{"Spaces", "order 17 / retry", true},
		{"One", "x", true},
		{"Max", strings.Repeat("k", idempotency.MaxKeyLength), true},
		{"ErrEmpty", "", false},
		{"ErrTooLong", strings.Repeat("k", idempotency.MaxKeyLength+1), false},
		{"ErrControl", "a\tb", false},
		{"ErrDelete", "a\x7fb", false},
		{"ErrNonASCII", "clé", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := idempotency.ValidateKey(tc.v)
			if tc.ok && err != nil {
				t.Errorf("got %v, want nil", err)
			}
			if !tc.ok {
				wantKind(t, err, domain.Invalid)
			}
		})
	}
}

func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"", "x", "order-1", "a\tb", "clé", strings.Repeat("k", 256)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		err := idempotency.ValidateKey(v)
		printable := len(v) > 0 && len(v) <= idempotency.MaxKeyLength &&
			strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) < 0
		if (err == nil) != printable {
			t.Fatalf("ValidateKey(%q): got %v, want ok=%v", v, err, printable)
		}
	})
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := idempotency.Fingerprint("POST", "POST /api-keys/{key}/regenerate", []string{"ak_1"}, "usr_1", []byte("{}"))
	for _, tc := range []struct {
		name string
		fp   [32]byte
	}{
		{"Method", idempotency.Fingerprint("DELETE", "POST /api-keys/{key}/regenerate", []string{"ak_1"}, "usr_1", []byte("{}"))},
		{"Route", idempotency.Fingerprint("POST", "POST /api-keys", []string{"ak_1"}, "usr_1", []byte("{}"))},
		{"PathValue", idempotency.Fingerprint("POST", "POST /api-keys/{key}/regenerate", []string{"ak_2"}, "usr_1", []byte("{}"))},
		{"Scope", idempotency.Fingerprint("POST", "POST /api-keys/{key}/regenerate", []string{"ak_1"}, "usr_2", []byte("{}"))},
		{"Body", idempotency.Fingerprint("POST", "POST /api-keys/{key}/regenerate", []string{"ak_1"}, "usr_1", []byte("{} "))},
		{"Boundary", idempotency.Fingerprint("POST", "POST /api-keys/{key}/regenerate", []string{"ak_1u"}, "sr_1", []byte("{}"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fp == base {
				t.Errorf("got the same fingerprint as the base request")
			}
		})
	}
	if again := idempotency.Fingerprint("POST", "POST /api-keys/{key}/regenerate", []string{"ak_1"}, "usr_1", []byte("{}")); again != base {
		t.Errorf("got %x, want %x: the same request must give the same fingerprint", again, base)
	}
}
