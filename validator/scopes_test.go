package validator_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
	"github.com/keyledger/keyledger/validator"
)

// createScopedKey creates a key with scopes and metadata.
func createScopedKey(t *testing.T, e *ledgerEnv, scopes []string, metadata string) (domain.Key, domain.Secret) {
	t.Helper()
	k, secret, err := e.l.Service.CreateKey(ledgertest.Context(t), ledger.CreateKey{UserID: e.user.ID, Name: "scoped",
		Scopes: scopes, Metadata: []byte(metadata)})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k, secret
}

// wantForbidden wants the 403 of a valid key lacking a scope: the forbidden
// code, and no WWW-Authenticate (the key is fine).
func wantForbidden(t *testing.T, r response) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if r.status != http.StatusForbidden || json.Unmarshal([]byte(r.body), &body) != nil || body.Error.Code != "forbidden" {
		t.Errorf("got %d %s, want 403 forbidden", r.status, r.body)
	}
	if r.header.Get("WWW-Authenticate") != "" || r.header.Get(validator.HeaderUser) != "" {
		t.Errorf("got headers %v, want no challenge and no identity", r.header)
	}
}

// TestValidateHandler_Scopes: /validate returns the key's policy and
// enforces the scopes the caller requires, by query and by header.
func TestValidateHandler_Scopes(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := createScopedKey(t, e, []string{"orders:*", "billing:read"}, `{"plan":"pro"}`)
	plain, plainSecret := e.l.CreateKey(t, e.user.ID)
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)
	srv := httptest.NewServer(v.Handler())
	t.Cleanup(srv.Close)
	creds := xAPIHeaders(k.APIKey, secret.Reveal())

	r := do(t, http.MethodGet, srv.URL+"/validate", creds)
	if r.status != http.StatusOK {
		t.Fatalf("no scope required: got %d %s, want 200", r.status, r.body)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatal(err)
	}
	for field, want := range map[string]string{"api_key": `"` + k.APIKey + `"`, "user_id": `"` + e.user.ID + `"`,
		"name": `"scoped"`, "scopes": `["billing:read","orders:*"]`, "metadata": `{"plan":"pro"}`} {
		if got := string(body[field]); got != want {
			t.Errorf("%s: got %s, want %s", field, got, want)
		}
	}
	if got := r.header.Get(validator.HeaderScopes); got != "billing:read orders:*" {
		t.Errorf("%s: got %q, want the scopes space-separated", validator.HeaderScopes, got)
	}

	for name, tc := range map[string]struct {
		query  string
		header string
		want   int
	}{
		"QueryGranted":          {"?scope=orders:read", "", http.StatusOK},
		"QueryRepeatedGranted":  {"?scope=orders:read&scope=billing:read", "", http.StatusOK},
		"HeaderGranted":         {"", "orders:write billing:read", http.StatusOK},
		"QueryMissing":          {"?scope=billing:write", "", http.StatusForbidden},
		"QueryOneOfTwoMissing":  {"?scope=orders:read&scope=billing:write", "", http.StatusForbidden},
		"HeaderMissing":         {"", "orders:read admin", http.StatusForbidden},
		"QueryOKHeaderMissing":  {"?scope=orders:read", "billing:write", http.StatusForbidden},
		"NearMissPrefix":        {"?scope=ordersx:read", "", http.StatusForbidden},
		"NearMissNamespaceRoot": {"?scope=orders", "", http.StatusForbidden},
		"BadQueryScope":         {"?scope=orders%20read", "", http.StatusBadRequest},
		"BadHeaderScope":        {"", "orders,read", http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			for k, vs := range creds {
				h[k] = vs
			}
			if tc.header != "" {
				h.Set(validator.HeaderRequiredScopes, tc.header)
			}
			r := do(t, http.MethodGet, srv.URL+"/validate"+tc.query, h)
			switch tc.want {
			case http.StatusForbidden:
				wantForbidden(t, r)
			default:
				if r.status != tc.want {
					t.Errorf("got %d %s, want %d", r.status, r.body, tc.want)
				}
			}
		})
	}

	// A key without scopes is valid, and grants nothing.
	r = do(t, http.MethodGet, srv.URL+"/validate", xAPIHeaders(plain.APIKey, plainSecret.Reveal()))
	if r.status != http.StatusOK || !strings.Contains(r.body, `"scopes":[]`) || !strings.Contains(r.body, `"metadata":{}`) {
		t.Errorf("key without scopes: got %d %s, want 200 with empty scopes and metadata", r.status, r.body)
	}
	wantForbidden(t, do(t, http.MethodGet, srv.URL+"/validate?scope=orders:read", xAPIHeaders(plain.APIKey, plainSecret.Reveal())))

	// A bad credential stays 401 whatever scope is asked for: a 403 would
	// tell a caller without the secret that the key exists.
	r = do(t, http.MethodGet, srv.URL+"/validate?scope=nothing:granted", xAPIHeaders(k.APIKey, plainSecret.Reveal()))
	if r.status != http.StatusUnauthorized {
		t.Errorf("wrong secret with a required scope: got %d %s, want 401", r.status, r.body)
	}
}

// TestRequireScopes: the Go middleware refuses a valid key lacking a
// scope with 403 before the handler runs, and lets a granted one through
// with its scopes in X-Keyledger-Scopes.
func TestRequireScopes(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := createScopedKey(t, e, []string{"orders:read"}, "")
	v, _ := openValidator(t, natstest.Connect(t, e.srv))
	awaitReady(t, v)
	var calls atomic.Int64
	var seenScopes atomic.Value
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		seenScopes.Store(r.Header.Get(validator.HeaderScopes))
	})
	mux := http.NewServeMux()
	mux.Handle("/read", v.Middleware(validator.RequireScopes("orders:read")(next)))
	mux.Handle("/write", v.Middleware(validator.RequireScopes("orders:read", "orders:write")(next)))
	mux.Handle("/unguarded", validator.RequireScopes("orders:read")(next))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	creds := xAPIHeaders(k.APIKey, secret.Reveal())
	// A client's own X-Keyledger-Scopes header must not survive.
	creds.Set(validator.HeaderScopes, "orders:write *")

	if r := do(t, http.MethodGet, srv.URL+"/read", creds); r.status != http.StatusOK || calls.Load() != 1 {
		t.Fatalf("granted: got %d %s (%d calls), want 200 and one call", r.status, r.body, calls.Load())
	}
	if got := seenScopes.Load(); got != "orders:read" {
		t.Errorf("%s downstream: got %q, want orders:read", validator.HeaderScopes, got)
	}
	wantForbidden(t, do(t, http.MethodGet, srv.URL+"/write", creds))
	if r := do(t, http.MethodGet, srv.URL+"/unguarded", creds); r.status != http.StatusUnauthorized {
		t.Errorf("RequireScopes without Middleware: got %d, want 401", r.status)
	}
	if calls.Load() != 1 {
		t.Errorf("handler ran %d times, want once", calls.Load())
	}
	defer func() {
		if recover() == nil {
			t.Error("RequireScopes with an invalid scope: want a panic")
		}
	}()
	validator.RequireScopes("orders read")
}

// TestValidator_PolicyOnEveryNode: scope changes, disable/enable and a
// grace period are in force on three nodes; the previous secret works
// just before its deadline and is refused just after on every node, by
// each node's clock, with no further event.
func TestValidator_PolicyOnEveryNode(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, oldSecret := createScopedKey(t, e, []string{"orders:read"}, "")
	clock := testclock.New(time.Now())
	var nodes []*validator.Validator
	for range 3 {
		// The clock jumps by hours: the staleness bound must not trip on it.
		v, _ := openValidator(t, natstest.Connect(t, e.srv), validator.WithClock(clock.Now), validator.WithMaxStaleness(72*time.Hour))
		awaitReady(t, v)
		nodes = append(nodes, v)
	}
	onEvery := func(what string, ok func(v *validator.Validator) bool) {
		t.Helper()
		for i, v := range nodes {
			if err := v.WaitFor(ledgertest.Context(t), e.l.Head(t)); err != nil {
				t.Fatal(err)
			}
			if !ok(v) {
				t.Errorf("node %d: %s", i, what)
			}
		}
	}
	validates := func(s domain.Secret) func(v *validator.Validator) bool {
		return func(v *validator.Validator) bool {
			_, err := v.Validate(t.Context(), k.APIKey, s.Reveal())
			return err == nil
		}
	}
	refuses := func(s domain.Secret) func(v *validator.Validator) bool {
		return func(v *validator.Validator) bool { return !validates(s)(v) }
	}
	if _, err := e.l.Service.EditKey(ledgertest.Context(t), ledger.EditKey{UserID: e.user.ID, APIKey: k.APIKey,
		Edit: domain.KeyEdit{SetScopes: true, Scopes: []string{"orders:write"}}}); err != nil {
		t.Fatal(err)
	}
	onEvery("scopes not changed", func(v *validator.Validator) bool {
		id, err := v.Validate(t.Context(), k.APIKey, oldSecret.Reveal())
		_, missing := id.MissingScope("orders:write")
		return err == nil && !missing && strings.Join(id.Scopes, " ") == "orders:write"
	})
	if err := e.l.Service.DisableKey(ledgertest.Context(t), ledger.DisableKey{UserID: e.user.ID, APIKey: k.APIKey}); err != nil {
		t.Fatal(err)
	}
	onEvery("disabled key validates", refuses(oldSecret))
	if err := e.l.Service.EnableKey(ledgertest.Context(t), ledger.EnableKey{UserID: e.user.ID, APIKey: k.APIKey}); err != nil {
		t.Fatal(err)
	}
	onEvery("enabled key refused", validates(oldSecret))

	start := time.Now()
	newSecret, err := e.l.Service.RegenerateSecret(ledgertest.Context(t), ledger.RegenerateSecret{UserID: e.user.ID,
		APIKey: k.APIKey, GracePeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kk, _, _ := e.l.Keys.Get(k.APIKey)
	deadline := kk.PreviousExpiresAt
	if deadline.Before(start.Add(time.Hour)) || deadline.After(time.Now().Add(time.Hour)) {
		t.Fatalf("deadline %v, want an hour after the regeneration", deadline)
	}
	onEvery("new secret refused", validates(newSecret))
	onEvery("old secret refused in its grace period", validates(oldSecret))
	clock.Advance(deadline.Add(-time.Millisecond).Sub(clock.Now()))
	onEvery("old secret refused just before the deadline", validates(oldSecret))
	clock.Advance(deadline.Sub(clock.Now()))
	onEvery("old secret validates at the deadline", refuses(oldSecret))
	onEvery("new secret refused after the deadline", validates(newSecret))

	// Revoke ends a grace period at once (the nodes' clock is an hour
	// ahead: well inside the new grace period of a day).
	k2, old2 := e.l.CreateKey(t, e.user.ID)
	if _, err := e.l.Service.RegenerateSecret(ledgertest.Context(t), ledger.RegenerateSecret{UserID: e.user.ID,
		APIKey: k2.APIKey, GracePeriod: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	validates2 := func(v *validator.Validator) bool {
		_, err := v.Validate(t.Context(), k2.APIKey, old2.Reveal())
		return err == nil
	}
	onEvery("old secret refused in its grace period", validates2)
	e.l.Revoke(t, e.user.ID, k2.APIKey)
	onEvery("old secret validates after revoke", func(v *validator.Validator) bool { return !validates2(v) })
}
