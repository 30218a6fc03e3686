package handlers_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/adminnonce"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// These tests drive the real handlers over a real ledger (embedded NATS
// with JetStream, the event store, projections and use cases), real
// sessions and a real idempotency store, on a clock the test advances.
// Only the read models' freshness is set by the test, so /readyz and the
// staleness header can be checked in every state; the real freshness
// (NATS cut off) is tested in cmd/keyledger.

const testPassword = "correct horse battery staple"

// fakeReadiness reports whatever status the test sets.
type fakeReadiness struct {
	mu sync.Mutex
	st handlers.ReadyStatus
}

func (r *fakeReadiness) Ready() bool { return r.Status().Ready }

func (r *fakeReadiness) Status() handlers.ReadyStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *fakeReadiness) set(st handlers.ReadyStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st = st
}

// caughtUp is a fresh, connected, ready status.
var caughtUp = handlers.ReadyStatus{Ready: true, AppliedSeq: 7, StartSeq: 7, StalenessSeconds: 0.2, Connected: true}

type harness struct {
	api *handlers.API
	// clock is the ledger's, and so the limits': it starts at the real
	// time (session tokens are checked against it) and moves only when
	// the test advances it.
	clock   *testclock.Clock
	ready   *fakeReadiness
	metrics *handlers.Metrics
	// alice is a registered admin with testPassword, and token a session
	// of hers.
	alice   domain.User
	token   string
	service *ledger.Service
	// ledger runs service; its read models trust testkeys.Ledger() alone.
	// config is the API's configuration.
	ledger *ledgertest.Ledger
	config handlers.Config
}

// newHarness builds the API over a ledger of its own with alice in it;
// edit tunes its Config.
func newHarness(t testing.TB, edit func(*handlers.Config)) *harness {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	h := &harness{clock: testclock.New(time.Now()), ready: &fakeReadiness{st: caughtUp}, metrics: handlers.NewMetrics()}
	l := ledgertest.NewWith(t, nc, func(c *ledger.Config) {
		c.Now, c.Observe = h.clock.Now, h.metrics.ObserveCommand // as serve wires them
	}, eventstore.WithTrustedKeys(testkeys.LedgerPublic()))
	ctx := ledgertest.Context(t)
	alice, err := l.Service.CreateUser(ctx, ledger.CreateUser{Actor: "admin:test", Email: "alice@example.com", Password: testPassword, Role: domain.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := auth.NewSessions(key, "", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := sessions.Issue(alice.ID, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	store, err := idempotency.New(ctx, nc, secret)
	if err != nil {
		t.Fatal(err)
	}
	nonces, err := adminnonce.New(ctx, nc, adminnonce.WithMemoryStorage())
	if err != nil {
		t.Fatal(err)
	}
	h.alice, h.token, h.service, h.ledger = alice, token, l.Service, l
	cfg := handlers.Config{Ledger: l.Service, Sessions: sessions, Readiness: h.ready,
		Validate: http.NotFoundHandler(), Idempotency: store, AdminNonces: nonces, Metrics: h.metrics}
	if edit != nil {
		edit(&cfg)
	}
	api, err := handlers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.api, h.config = api, cfg
	return h
}

type result struct {
	status int
	header http.Header
	body   string
}

// do serves one request from peer (host:port), headers in pairs.
func (h *harness) do(method, path, peer, body string, headers ...string) result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = peer
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.api.ServeHTTP(w, req)
	return result{status: w.Code, header: w.Header(), body: w.Body.String()}
}

func (r result) errorCode(t testing.TB) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("got body %q, want a JSON error with code and message", r.body)
	}
	return body.Error.Code
}

func wantStatus(t testing.TB, r result, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("got status %d (%s), want %d", r.status, r.body, want)
	}
}
