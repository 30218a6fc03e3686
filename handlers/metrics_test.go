package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
)

// TestMetrics_Commands: command metrics count what the ledger ran, by the
// command's name and the kind of its error, whatever route carried it; a
// request refused before its command ran counts only as a request.
func TestMetrics_Commands(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil) // alice was created through the ledger's CreateUser
	const peer = "192.0.2.1:40000"
	bearer := []string{"Authorization", "Bearer " + h.token}

	wantStatus(t, h.do("POST", "/api-keys", peer, `{"name":"ci"}`, bearer...), http.StatusCreated)
	wantStatus(t, h.do("POST", "/api-keys", peer, `{"name":"ci"}`), http.StatusUnauthorized)
	wantStatus(t, h.do("POST", "/api-keys", peer, `{"name":`, bearer...), http.StatusBadRequest)
	missing := domain.APIKeyPrefix + ulid.Make().String()
	wantStatus(t, h.do("DELETE", "/api-keys/"+missing, peer, "", bearer...), http.StatusNotFound)
	wantStatus(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", "wrong wrong wrong wrong")),
		http.StatusUnauthorized)

	for sample, want := range map[string]string{
		`keyledger_commands_total{command="create_user",outcome="ok"}`:       "1",
		`keyledger_commands_total{command="create_key",outcome="ok"}`:        "1",
		`keyledger_command_duration_seconds_count{command="create_key"}`:     "1",
		`keyledger_commands_total{command="revoke_key",outcome="not_found"}`: "1",
		`keyledger_commands_total{command="login",outcome="unauthorized"}`:   "1",
		`keyledger_commands_total{command="login",outcome="ok"}`:             "0",
		`keyledger_commands_total{command="disable_user",outcome="ok"}`:      "0",
	} {
		if got := h.metric(t, sample); got != want {
			t.Errorf("%s: got %s, want %s", sample, got, want)
		}
	}
	w := httptest.NewRecorder()
	h.metrics.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, refused := range []string{`command="create_key",outcome="unauthorized"`, `command="create_key",outcome="invalid"`} {
		if strings.Contains(w.Body.String(), refused) {
			t.Errorf("got a series {%s}: a request refused before its command ran counted as the command", refused)
		}
	}
}
