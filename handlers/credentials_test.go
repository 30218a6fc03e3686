package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
)

// TestAPI_AmbiguousSession: a request that names its caller twice is
// refused, never answered as whichever credential comes first.
func TestAPI_AmbiguousSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	bob, err := h.service.CreateUser(ledgertest.Context(t), ledger.CreateUser{Actor: "admin:test", Email: "bob@example.com", Password: testPassword, Role: domain.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	bobToken, _, err := h.config.Sessions.Issue(bob.ID, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	alice, bobs := "Bearer "+h.token, "Bearer "+bobToken
	signature := []string{"Signature-Input", `sig1=("@method");keyid="x";tag="keyledger-admin-v1"`, "Signature", "sig1=:AAAA:"}

	for _, tc := range []struct {
		name, path string
		headers    []string
	}{
		{"TwoBearers", "/api-keys", []string{"Authorization", alice, "Authorization", bobs}},
		{"TwoBearersOtherOrder", "/api-keys", []string{"Authorization", bobs, "Authorization", alice}},
		{"SameBearerTwice", "/api-keys", []string{"Authorization", alice, "Authorization", alice}},
		{"BearerAndSignature", "/api-keys", append([]string{"Authorization", alice}, signature...)},
		{"AdminBearerAndSignature", "/admin/users", append([]string{"Authorization", alice}, signature...)},
		{"AdminTwoBearers", "/admin/users", []string{"Authorization", bobs, "Authorization", alice}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(http.MethodGet, tc.path, "192.0.2.1:1", "", tc.headers...)
			wantStatus(t, r, http.StatusUnauthorized)
			if got := r.errorCode(t); got != "unauthorized" {
				t.Errorf("code: got %q, want unauthorized", got)
			}
			if !strings.Contains(r.body, "ambiguous credentials") {
				t.Errorf("body: got %s, want it to say the credentials are ambiguous", r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
				t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
			}
		})
	}

	// One Bearer, in any ASCII case, still works.
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		r := h.do(http.MethodGet, "/api-keys", "192.0.2.1:1", "", "Authorization", scheme+" "+h.token)
		wantStatus(t, r, http.StatusOK)
	}
	// A scheme that only Unicode folding takes for Bearer is no Bearer.
	r := h.do(http.MethodGet, "/api-keys", "192.0.2.1:1", "", "Authorization", "Bearer\u200b "+h.token)
	wantStatus(t, r, http.StatusUnauthorized)
}
