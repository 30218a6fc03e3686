package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/auth"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/handlers"
)

// These tests drive the real handlers over stand-ins for the ledger, the
// sessions and the read models' freshness, so that limits, decoding and
// /readyz can be tested in isolation and fuzzed quickly. The whole wiring
// against NATS is tested in cmd/keyledger.

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	testPassword = "correct horse battery staple"
	testUserID   = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
	testToken    = "test-session-token"
)

// fakeLedger is a Ledger that keeps users in a map, checks input with the
// domain's own rules, and runs on a clock the test advances.
type fakeLedger struct {
	mu       sync.Mutex
	now      time.Time
	users    map[string]domain.User // by normalised email
	passes   map[string]string      // password by user id
	loginErr error                  // if set, every Login returns it
}

func newFakeLedger() *fakeLedger {
	l := &fakeLedger{now: t0, users: make(map[string]domain.User), passes: make(map[string]string)}
	l.users["alice@example.com"] = domain.User{ID: testUserID, Email: "alice@example.com", CreatedAt: t0, Version: 1}
	l.passes[testUserID] = testPassword
	return l
}

func (l *fakeLedger) Now() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now
}

func (l *fakeLedger) advance(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = l.now.Add(d)
}

func (l *fakeLedger) RegisterUser(_ context.Context, email, password string) (domain.User, error) {
	email, err := domain.NormalizeEmail(email)
	if err != nil {
		return domain.User{}, err
	}
	if err := domain.ValidatePassword(password); err != nil {
		return domain.User{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.users[email]; ok {
		return domain.User{}, domain.Errorf(domain.Conflict, "email is already registered")
	}
	u := domain.User{ID: "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1D", Email: email, CreatedAt: l.now, Version: 1}
	l.users[email] = u
	return u, nil
}

func (l *fakeLedger) Login(_ context.Context, email, password string) (domain.User, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loginErr != nil {
		return domain.User{}, l.loginErr
	}
	email, _ = domain.NormalizeEmail(email)
	if u, ok := l.users[email]; ok && l.passes[u.ID] == password {
		return u, nil
	}
	return domain.User{}, domain.Errorf(domain.Unauthorized, "invalid email or password")
}

func (l *fakeLedger) CreateKey(_ context.Context, userID, name string, expiresAt time.Time) (domain.Key, domain.Secret, error) {
	secret, err := domain.ParseSecret("sk_Fi8xOY8g0CByqH6y3k6yFmCN1r2c8w8hzgHVQDkPYHa4DiZ97")
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	var k domain.Key
	now := l.Now()
	events, err := k.Create(domain.CreateKey{APIKey: "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", UserID: userID, Name: name,
		SecretHash: secret.Hash(), ExpiresAt: expiresAt}, now)
	if err != nil {
		return domain.Key{}, domain.Secret{}, err
	}
	for _, e := range events {
		if err := k.Apply(e); err != nil {
			return domain.Key{}, domain.Secret{}, err
		}
	}
	return k, secret, nil
}

func (l *fakeLedger) ListKeys(string, int, string) ([]domain.Key, string, error) { return nil, "", nil }

func (l *fakeLedger) GetKey(string, string) (domain.Key, error) {
	return domain.Key{}, domain.Errorf(domain.NotFound, "api key not found")
}

func (l *fakeLedger) RevokeKey(context.Context, string, string) error {
	return domain.Errorf(domain.NotFound, "api key not found")
}

func (l *fakeLedger) RegenerateSecret(context.Context, string, string) (domain.Secret, error) {
	return domain.Secret{}, domain.Errorf(domain.NotFound, "api key not found")
}

func (l *fakeLedger) SessionUser(userID string) (domain.User, error) {
	return domain.User{ID: userID, Email: "alice@example.com", Role: domain.RoleAdmin, Version: 1}, nil
}

func (l *fakeLedger) AdminRevokeKey(_ context.Context, _, _, reason string) error {
	return domain.ValidateReason(reason)
}

func (l *fakeLedger) DisableUser(_ context.Context, _, _, reason string) error {
	return domain.ValidateReason(reason)
}

func (l *fakeLedger) RevokeUserKeys(_ context.Context, _, _, reason string) ([]string, error) {
	return nil, domain.ValidateReason(reason)
}

func (l *fakeLedger) AdminListKeys(string, []domain.KeyStatus) ([]domain.Key, error) { return nil, nil }

// fakeSessions accepts testToken only.
type fakeSessions struct{}

func (fakeSessions) Issue(userID string, now time.Time) (string, time.Time, error) {
	return testToken, now.Add(time.Hour), nil
}

func (fakeSessions) Verify(token string) (string, error) {
	if token != testToken {
		return "", domain.Errorf(domain.Unauthorized, "invalid session token")
	}
	return testUserID, nil
}

func (fakeSessions) JWKS() auth.JWKS { return auth.JWKS{} }

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
	api     *handlers.API
	ledger  *fakeLedger
	ready   *fakeReadiness
	metrics *handlers.Metrics
}

// newHarness builds the API over the fakes; edit tunes its Config.
func newHarness(t testing.TB, edit func(*handlers.Config)) *harness {
	t.Helper()
	h := &harness{ledger: newFakeLedger(), ready: &fakeReadiness{st: caughtUp}, metrics: handlers.NewMetrics()}
	cfg := handlers.Config{Ledger: h.ledger, Sessions: fakeSessions{}, Readiness: h.ready,
		Validate: http.NotFoundHandler(), Metrics: h.metrics}
	if edit != nil {
		edit(&cfg)
	}
	api, err := handlers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.api = api
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
