package validator_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// awaitTimeout is the generous deadline of every wait for a condition
// that normally holds within milliseconds.
const awaitTimeout = time.Minute

// ledgerEnv is a nats-server with the ledger on it and one user.
type ledgerEnv struct {
	srv  *server.Server
	l    *ledgertest.Ledger
	user domain.User
}

func startLedger(t testing.TB) *ledgerEnv {
	t.Helper()
	srv := natstest.RunServer(t)
	l := ledgertest.New(t, natstest.Connect(t, srv))
	return &ledgerEnv{srv: srv, l: l, user: l.Register(t)}
}

// logBuffer collects a Validator's log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openValidator opens a validation node on nc, closed when the test ends,
// and returns it with its log.
func openValidator(t testing.TB, nc *nats.Conn, opts ...validator.Option) (*validator.Validator, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	v, err := validator.Open(ledgertest.Context(t), nc, slog.New(slog.NewTextHandler(logs, nil)), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(v.Close)
	return v, logs
}

// connectVia connects to NATS through p only: discovered server addresses
// would let the client reconnect around the proxy.
func connectVia(t testing.TB, p *natstest.Proxy) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(p.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond), nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatalf("connect through proxy: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// openViaProxy opens a validation node whose only way to NATS is a proxy
// the test can cut.
func openViaProxy(t testing.TB, e *ledgerEnv, opts ...validator.Option) (*validator.Validator, *natstest.Proxy, *logBuffer) {
	t.Helper()
	p := natstest.StartProxy(t, e.srv.Addr().String())
	v, logs := openValidator(t, connectVia(t, p), opts...)
	return v, p, logs
}

func awaitReady(t testing.TB, v *validator.Validator) {
	t.Helper()
	natstest.Eventually(t, awaitTimeout, func() bool { return v.Status().Ready }, "validator ready")
}

// awaitOutcome polls Validate until it returns want (nil: success).
func awaitOutcome(t testing.TB, v *validator.Validator, apiKey string, secret domain.Secret, want error, msg string) {
	t.Helper()
	natstest.Eventually(t, awaitTimeout, func() bool {
		_, err := v.Validate(context.Background(), apiKey, secret.Reveal())
		if want == nil {
			return err == nil
		}
		return errors.Is(err, want)
	}, msg)
}

// wantAccepted validates once and wants the key's identity.
func wantAccepted(t testing.TB, v *validator.Validator, k domain.Key, secret domain.Secret) {
	t.Helper()
	id, err := v.Validate(context.Background(), k.APIKey, secret.Reveal())
	want := validator.Identity{APIKey: k.APIKey, UserID: k.UserID}
	if err != nil || !sameIdentity(id, want) {
		t.Fatalf("Validate(%s): got %+v, %v, want %+v, nil", k.APIKey, id, err, want)
	}
}

// wantRejected validates once and wants ErrUnauthorized.
func wantRejected(t testing.TB, v *validator.Validator, apiKey string, secret domain.Secret) {
	t.Helper()
	id, err := v.Validate(context.Background(), apiKey, secret.Reveal())
	if !errors.Is(err, validator.ErrUnauthorized) || id.APIKey != "" {
		t.Fatalf("Validate(%s): got %+v, %v, want ErrUnauthorized", apiKey, id, err)
	}
}

// TestValidator_FanOut runs three nodes beside the ledger: each sees a new
// key, a revocation and a regenerated secret, and a change at sequence N is
// in force on a node once it has applied N.
func TestValidator_FanOut(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	nodes := make([]*validator.Validator, 3)
	for i := range nodes {
		nodes[i], _ = openValidator(t, natstest.Connect(t, e.srv))
	}

	k, secret := e.l.CreateKey(t, e.user.ID)
	for i, v := range nodes {
		awaitOutcome(t, v, k.APIKey, secret, nil, fmt.Sprintf("node %d accepts the new key", i))
		wantAccepted(t, v, k, secret)
	}

	revSeq := e.l.Revoke(t, e.user.ID, k.APIKey)
	for i, v := range nodes {
		awaitOutcome(t, v, k.APIKey, secret, validator.ErrUnauthorized, fmt.Sprintf("node %d rejects the revoked key", i))
		if st := v.Status(); st.AppliedSeq < revSeq || !st.Ready {
			t.Errorf("node %d: got %+v, want ready with applied_seq >= %d", i, st, revSeq)
		}
	}

	k2, oldSecret := e.l.CreateKey(t, e.user.ID)
	newSecret, err := e.l.Service.RegenerateSecret(ledgertest.Context(t), ledger.RegenerateSecret{UserID: e.user.ID, APIKey: k2.APIKey})
	if err != nil {
		t.Fatalf("RegenerateSecret: %v", err)
	}
	regenSeq := e.l.Head(t)
	for i, v := range nodes {
		// No polling: once a node has applied the event it must be in force.
		if err := v.WaitFor(ledgertest.Context(t), regenSeq); err != nil {
			t.Fatalf("node %d: WaitFor(%d): %v", i, regenSeq, err)
		}
		wantRejected(t, v, k2.APIKey, oldSecret)
		wantAccepted(t, v, k2, newSecret)
		wantRejected(t, v, k.APIKey, secret)
	}
}

// TestValidator_Reconnect revokes a key while a node is cut off from NATS:
// once the node is connected again it must never accept the key, whatever
// it answered during the cut.
func TestValidator_Reconnect(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	revoked, revokedSecret := e.l.CreateKey(t, e.user.ID)
	good, goodSecret := e.l.CreateKey(t, e.user.ID)
	v, p, _ := openViaProxy(t, e, validator.WithMaxStaleness(30*time.Second))
	awaitReady(t, v)
	wantAccepted(t, v, revoked, revokedSecret)
	wantAccepted(t, v, good, goodSecret)

	p.Cut()
	natstest.Eventually(t, awaitTimeout, func() bool { return !v.Status().Connected }, "node sees the cut")
	revSeq := e.l.Revoke(t, e.user.ID, revoked.APIKey)

	// Within its staleness bound the node keeps answering from its view,
	// which cannot hold the revocation: that is the documented trade-off.
	if st := v.Status(); st.AppliedSeq >= revSeq || !st.Ready {
		t.Fatalf("during the cut: got %+v, want ready with applied_seq < %d", st, revSeq)
	}
	wantAccepted(t, v, good, goodSecret)
	_, err := v.Validate(context.Background(), revoked.APIKey, revokedSecret.Reveal())
	if err != nil && !errors.Is(err, validator.ErrUnauthorized) {
		t.Fatalf("revoked key during the cut: got %v, want an answer from the view (nil or ErrUnauthorized)", err)
	}
	t.Logf("revoked key during the cut: %v", err)

	// Poll from the moment of Restore. Until the node reports itself
	// connected it may still answer from its old view; from then on (the
	// status is read before each call) it must never accept the key.
	p.Restore()
	connected, unavailable, staleAccepts, polls := false, 0, 0, 0
	for deadline := time.Now().Add(awaitTimeout); ; polls++ {
		if time.Now().After(deadline) {
			t.Fatalf("revoked key not rejected within %v of Restore (%d polls, connected %v, status %+v)",
				awaitTimeout, polls, connected, v.Status())
		}
		connected = connected || v.Status().Connected
		id, err := v.Validate(context.Background(), revoked.APIKey, revokedSecret.Reveal())
		switch {
		case !connected:
			if err == nil {
				staleAccepts++
			}
		case err == nil:
			t.Fatalf("poll %d, connected again: revoked key accepted as %+v (status %+v)", polls, id, v.Status())
		case errors.Is(err, validator.ErrUnauthorized):
		case (errors.Is(err, validator.ErrNotReady) || errors.Is(err, validator.ErrStale)) && domain.KindOf(err) == domain.Unavailable:
			unavailable++
		default:
			t.Fatalf("poll %d, connected again: got %v, want ErrUnauthorized, ErrNotReady or ErrStale", polls, err)
		}
		if connected && errors.Is(err, validator.ErrUnauthorized) {
			break
		}
		runtime.Gosched()
	}
	t.Logf("after Restore: %d polls accepted the key before the node reported itself connected; then %d answered unavailable before the revocation was in force",
		staleAccepts, unavailable)
	if st := v.Status(); st.AppliedSeq < revSeq || !st.Ready || !st.Connected {
		t.Errorf("after catch-up: got %+v, want ready, connected, applied_seq >= %d", st, revSeq)
	}
	wantAccepted(t, v, good, goodSecret)
}

// TestValidator_Staleness cuts a node off for longer than its staleness
// bound: it fails closed by default and keeps answering with WithFailOpen.
func TestValidator_Staleness(t *testing.T) {
	t.Parallel()
	const bound = 300 * time.Millisecond

	t.Run("FailClosed", func(t *testing.T) {
		e := startLedger(t)
		k, secret := e.l.CreateKey(t, e.user.ID)
		v, p, _ := openViaProxy(t, e, validator.WithMaxStaleness(bound), validator.WithCheckInterval(50*time.Millisecond))
		awaitReady(t, v)
		wantAccepted(t, v, k, secret)

		p.Cut()
		awaitOutcome(t, v, k.APIKey, secret, validator.ErrStale, "stale node fails closed")
		id, err := v.Validate(context.Background(), k.APIKey, secret.Reveal())
		if !errors.Is(err, validator.ErrStale) || domain.KindOf(err) != domain.Unavailable || id.APIKey != "" {
			t.Fatalf("got %+v, %v (kind %v), want ErrStale of kind %v", id, err, domain.KindOf(err), domain.Unavailable)
		}
		st := v.Status()
		if st.Ready || st.Reason == "" || st.Connected || st.StalenessSeconds <= bound.Seconds() {
			t.Errorf("got %+v, want not ready with a reason, disconnected, staleness > %v", st, bound)
		}

		p.Restore()
		awaitOutcome(t, v, k.APIKey, secret, nil, "node answers again after catching up")
		wantAccepted(t, v, k, secret)
		if st := v.Status(); !st.Ready || st.Reason != "" || !st.Connected {
			t.Errorf("after Restore: got %+v, want ready and connected", st)
		}
	})

	t.Run("FailOpen", func(t *testing.T) {
		e := startLedger(t)
		k, secret := e.l.CreateKey(t, e.user.ID)
		v, p, logs := openViaProxy(t, e, validator.WithMaxStaleness(bound), validator.WithCheckInterval(50*time.Millisecond),
			validator.WithFailOpen())
		if !strings.Contains(logs.String(), "fails OPEN") {
			t.Errorf("log: got %q, want a warning that the node fails open", logs.String())
		}
		awaitReady(t, v)
		wantAccepted(t, v, k, secret)

		p.Cut()
		natstest.Eventually(t, awaitTimeout, func() bool { return !v.Status().Connected }, "node sees the cut")
		// Poll until the view is three times older than the bound: every
		// answer on the way must be a success.
		natstest.Eventually(t, awaitTimeout, func() bool {
			wantAccepted(t, v, k, secret)
			st := v.Status()
			if !st.Ready {
				t.Fatalf("fail-open node during the cut: got %+v, want ready", st)
			}
			return st.StalenessSeconds > 3*bound.Seconds()
		}, "staleness grows past the bound")

		p.Restore()
		natstest.Eventually(t, awaitTimeout, func() bool { return v.Status().Connected }, "node reconnects")
		wantAccepted(t, v, k, secret)
	})
}

// TestValidator_CatchUp starts a node on a backlog whose last events revoke
// a key created at its start: while catching up, the node's partial view
// still holds the key as active, so it must not answer at all.
func TestValidator_CatchUp(t *testing.T) {
	const keys, workers = 2000, 8
	e := startLedger(t)
	revoked, revokedSecret := e.l.CreateKey(t, e.user.ID)

	// The backlog takes a few seconds; under -race on a busy machine far
	// more than ledgertest.Timeout, which bounds a single call.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range keys / workers {
				if _, _, err := e.l.Service.CreateKey(ctx, ledger.CreateKey{UserID: e.user.ID, Name: "backlog"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("CreateKey: %v", err)
	}
	revSeq := e.l.Revoke(t, e.user.ID, revoked.APIKey)
	good, goodSecret := e.l.CreateKey(t, e.user.ID)
	head := e.l.Head(t)
	if head < keys {
		t.Fatalf("got head %d, want at least %d events", head, keys)
	}

	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	start := time.Now()
	notReady, polls := 0, 0
	for ; ; polls++ {
		if time.Since(start) > awaitTimeout {
			t.Fatalf("not caught up within %v (%d polls, status %+v)", awaitTimeout, polls, v.Status())
		}
		id, err := v.Validate(context.Background(), revoked.APIKey, revokedSecret.Reveal())
		if err == nil {
			t.Fatalf("poll %d, catching up: revoked key accepted as %+v (status %+v)", polls, id, v.Status())
		}
		if errors.Is(err, validator.ErrUnauthorized) {
			break
		}
		if !errors.Is(err, validator.ErrNotReady) {
			t.Fatalf("poll %d, catching up: got %v, want ErrNotReady", polls, err)
		}
		notReady++
		runtime.Gosched()
	}
	t.Logf("caught up with %d events in %v; %d of %d polls answered not ready", head, time.Since(start), notReady, polls+1)
	if notReady == 0 {
		t.Errorf("got no ErrNotReady during catch-up, want some (catch-up too fast to observe?)")
	}
	st := v.Status()
	if !st.Ready || st.AppliedSeq < head || st.StartSeq != head || st.Keys != keys+2 {
		t.Errorf("got %+v, want ready, applied_seq >= %d, start_seq %d, %d keys", st, head, head, keys+2)
	}
	if st.AppliedSeq < revSeq {
		t.Errorf("got applied_seq %d, want >= the revocation's %d", st.AppliedSeq, revSeq)
	}
	wantRejected(t, v, revoked.APIKey, revokedSecret)
	wantAccepted(t, v, good, goodSecret)
}

// flip changes the base62 character at i to another one.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// TestValidator_Validate_Malformed feeds Validate what a client may send:
// every malformed credential is the one ErrUnauthorized, never a panic.
func TestValidator_Validate_Malformed(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)
	wantAccepted(t, v, k, secret)

	s := secret.Reveal()
	tests := []struct {
		name           string
		apiKey, secret string
	}{
		{"Empty", "", ""},
		{"EmptyKey", "", s},
		{"EmptySecret", k.APIKey, ""},
		{"KeyWithoutPrefix", strings.TrimPrefix(k.APIKey, domain.APIKeyPrefix), s},
		{"KeyWrongPrefix", "usr_" + strings.TrimPrefix(k.APIKey, domain.APIKeyPrefix), s},
		{"KeyLowerCase", domain.APIKeyPrefix + strings.ToLower(strings.TrimPrefix(k.APIKey, domain.APIKeyPrefix)), s},
		{"KeyTooLong", k.APIKey + "0", s},
		{"KeyTruncated", k.APIKey[:len(k.APIKey)-1], s},
		{"KeyOverflowingULID", domain.APIKeyPrefix + "8" + k.APIKey[len(domain.APIKeyPrefix)+1:], s},
		{"KeyWithSpace", " " + k.APIKey, s},
		{"SecretBadChecksum", k.APIKey, flip(s, len(s)-1)},
		{"SecretBodyChanged", k.APIKey, flip(s, len(domain.SecretPrefix))},
		{"SecretWithoutPrefix", k.APIKey, strings.TrimPrefix(s, domain.SecretPrefix)},
		{"SecretTruncated", k.APIKey, s[:len(s)-1]},
		{"SecretTooLong", k.APIKey, s + "0"},
		{"SecretNotBase62", k.APIKey, s[:10] + "-" + s[11:]},
		{"SecretNonASCII", k.APIKey, s[:10] + "é" + s[12:]},
		{"SwappedArguments", s, k.APIKey},
		{"Huge", strings.Repeat("ak_", 1<<16), strings.Repeat("sk_", 1<<16)},
		{"NUL", k.APIKey + "\x00", s + "\x00"},
		{"UnknownKey", domain.APIKeyPrefix + ulid.Make().String(), s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Validate(context.Background(), tt.apiKey, tt.secret)
			if !errors.Is(err, validator.ErrUnauthorized) || id.APIKey != "" {
				t.Errorf("Validate(%.40q, %.40q): got %+v, %v, want ErrUnauthorized", tt.apiKey, tt.secret, id, err)
			}
			if domain.KindOf(err) != domain.Unauthorized {
				t.Errorf("got kind %v, want %v", domain.KindOf(err), domain.Unauthorized)
			}
		})
	}
	wantAccepted(t, v, k, secret) // the real credential still works
}

func TestOpen(t *testing.T) {
	t.Parallel()
	t.Run("ErrNoStream", func(t *testing.T) {
		srv := natstest.RunServer(t)
		nc := natstest.Connect(t, srv)
		const startTimeout = time.Second
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		begin := time.Now()
		v, err := validator.Open(ctx, nc, nil)
		elapsed := time.Since(begin)
		if err == nil {
			v.Close()
			t.Fatalf("Open without a stream: got a validator, want an error")
		}
		if domain.KindOf(err) != domain.Unavailable {
			t.Errorf("got %v (kind %v), want kind %v", err, domain.KindOf(err), domain.Unavailable)
		}
		if elapsed > startTimeout+2*time.Second {
			t.Errorf("Open took %v, want it to give up with its %v context", elapsed, startTimeout)
		}
		// Read-only: the node must not have created the stream.
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Stream(ledgertest.Context(t), eventstore.DefaultStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream %s after Open: got %v, want %v", eventstore.DefaultStream, err, jetstream.ErrStreamNotFound)
		}
		info, err := js.AccountInfo(ledgertest.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if info.Streams != 0 || info.Consumers != 0 {
			t.Errorf("got %d streams, %d consumers, want none", info.Streams, info.Consumers)
		}
	})

	t.Run("NilLogger", func(t *testing.T) {
		e := startLedger(t)
		k, secret := e.l.CreateKey(t, e.user.ID)
		v, err := validator.Open(ledgertest.Context(t), natstest.Connect(t, e.srv), nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(v.Close)
		awaitReady(t, v)
		wantAccepted(t, v, k, secret)
	})

	t.Run("ZeroOptionsMeanDefaults", func(t *testing.T) {
		e := startLedger(t)
		k, secret := e.l.CreateKey(t, e.user.ID)
		v, err := validator.Open(ledgertest.Context(t), natstest.Connect(t, e.srv), nil,
			validator.WithStream(""), validator.WithMaxStaleness(0), validator.WithCheckInterval(0),
			validator.WithSignatureWindow(0), validator.WithReplayCacheSize(0), validator.WithOrigin(""),
			validator.WithClock(nil), validator.WithFailureLimit(0, 0))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(v.Close)
		awaitReady(t, v)
		wantAccepted(t, v, k, secret)
	})

	t.Run("ErrOtherStream", func(t *testing.T) {
		e := startLedger(t)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		v, err := validator.Open(ctx, natstest.Connect(t, e.srv), nil, validator.WithStream("ELSEWHERE"))
		if err == nil {
			v.Close()
			t.Fatalf("Open on a missing stream: got a validator, want an error")
		}
		if domain.KindOf(err) != domain.Unavailable {
			t.Errorf("got %v (kind %v), want kind %v", err, domain.KindOf(err), domain.Unavailable)
		}
	})

	t.Run("ErrInvalidOption", func(t *testing.T) {
		e := startLedger(t)
		nc := natstest.Connect(t, e.srv)
		for name, opt := range map[string]validator.Option{
			"MaxStalenessNeg":       validator.WithMaxStaleness(-time.Second),
			"CheckIntervalNeg":      validator.WithCheckInterval(-time.Second),
			"CheckIntervalTooLong":  validator.WithCheckInterval(validator.DefaultMaxStaleness),
			"StreamWithWildcard":    validator.WithStream("A.>"),
			"SignatureWindowNeg":    validator.WithSignatureWindow(-time.Second),
			"SignatureWindowTooBig": validator.WithSignatureWindow(validator.MaxSignatureWindow + time.Second),
			"ReplayCacheSizeNeg":    validator.WithReplayCacheSize(-1),
			"OriginWithPath":        validator.WithOrigin("https://api.example.com/v1"),
			"TrustedKeysNone":       validator.WithTrustedKeys(),
			"TrustedKeysShort":      validator.WithTrustedKeys(ed25519.PublicKey{1}),
		} {
			v, err := validator.Open(ledgertest.Context(t), nc, nil, opt)
			if err == nil {
				v.Close()
				t.Errorf("%s: got a validator, want an error", name)
				continue
			}
			if domain.KindOf(err) != domain.Invalid {
				t.Errorf("%s: got %v (kind %v), want kind %v", name, err, domain.KindOf(err), domain.Invalid)
			}
		}
	})
}

// TestNew runs a Validator over the ledger's own projector, as `keyledger
// serve` does: the ledger's writes are in force the moment its commands
// return, and Close leaves the caller's projector running.
func TestNew(t *testing.T) {
	t.Parallel()
	t.Run("ErrMissingDependency", func(t *testing.T) {
		if v, err := validator.New(validator.Config{}); err == nil {
			v.Close()
			t.Errorf("got a validator, want an error")
		}
	})

	t.Run("ErrInvalidOption", func(t *testing.T) {
		e := startLedger(t)
		v, err := validator.New(validator.Config{Log: e.l.Store, Projector: e.l.Projector, Lookup: e.l.Lookup,
			Options: []validator.Option{validator.WithMaxStaleness(-time.Second)}})
		if err == nil {
			v.Close()
			t.Fatalf("got a validator, want an error")
		}
		if domain.KindOf(err) != domain.Invalid {
			t.Errorf("got %v (kind %v), want kind %v", err, domain.KindOf(err), domain.Invalid)
		}
	})

	t.Run("SharedProjector", func(t *testing.T) {
		e := startLedger(t)
		v, err := validator.New(validator.Config{Log: e.l.Store, Projector: e.l.Projector, Lookup: e.l.Lookup,
			Conn: e.l.Conn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Close)
		awaitReady(t, v)

		k, secret := e.l.CreateKey(t, e.user.ID)
		wantAccepted(t, v, k, secret) // no polling: the command waited for the projector
		newSecret, err := e.l.Service.RegenerateSecret(ledgertest.Context(t), ledger.RegenerateSecret{UserID: e.user.ID, APIKey: k.APIKey})
		if err != nil {
			t.Fatal(err)
		}
		wantRejected(t, v, k.APIKey, secret)
		wantAccepted(t, v, k, newSecret)
		e.l.Revoke(t, e.user.ID, k.APIKey)
		wantRejected(t, v, k.APIKey, newSecret)

		v.Close()
		v.Close() // idempotent
		if !e.l.Projector.Ready() {
			t.Errorf("Close stopped the ledger's projector")
		}
		k2, secret2 := e.l.CreateKey(t, e.user.ID) // the ledger still works
		if res := e.l.Lookup.Check(k2.APIKey, secret2, time.Now()); !res.OK {
			t.Errorf("ledger lookup after the validator closed: got %+v, want ok", res)
		}
	})
}

// TestValidator_Concurrent validates from many goroutines while the ledger
// creates, regenerates and revokes keys, for the race detector and for one
// contract: a node that stays connected never stops answering.
func TestValidator_Concurrent(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	good, goodSecret := e.l.CreateKey(t, e.user.ID)
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	const readers = 4
	failures := make(chan error, readers)
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for ctx.Err() == nil {
				id, err := v.Validate(ctx, good.APIKey, goodSecret.Reveal())
				if err != nil || id.UserID != e.user.ID {
					failures <- fmt.Errorf("good key: got %+v, %v (status %+v)", id, err, v.Status())
					return
				}
				_ = v.Status()
				runtime.Gosched() // let the ledger run on a single CPU too
			}
		})
	}

	type change struct {
		k          domain.Key
		old, fresh domain.Secret
	}
	var changes []change
	for i := range 30 {
		k, s := e.l.CreateKey(t, e.user.ID)
		c := change{k: k, old: s}
		if i%2 == 0 {
			e.l.Revoke(t, e.user.ID, k.APIKey)
		} else {
			fresh, err := e.l.Service.RegenerateSecret(ledgertest.Context(t), ledger.RegenerateSecret{UserID: e.user.ID, APIKey: k.APIKey})
			if err != nil {
				t.Fatalf("RegenerateSecret: %v", err)
			}
			c.fresh = fresh
		}
		changes = append(changes, c)
	}
	head := e.l.Head(t)
	if err := v.WaitFor(ledgertest.Context(t), head); err != nil {
		t.Fatalf("WaitFor(%d): %v", head, err)
	}
	stop()
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
	for _, c := range changes {
		wantRejected(t, v, c.k.APIKey, c.old)
		if !c.fresh.IsZero() {
			wantAccepted(t, v, c.k, c.fresh)
		}
	}
}

// sameIdentity compares the who of two identities: key and owner.
func sameIdentity(a, b validator.Identity) bool { return a.APIKey == b.APIKey && a.UserID == b.UserID }
