package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the Prometheus text format, enough of it for the
// label values serve writes (no commas, quotes or escapes in them).
func parseMetrics(t *testing.T, text string) []sample {
	t.Helper()
	var out []sample
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := cutLast(line, " ")
		if !ok {
			t.Fatalf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		s := sample{name: series, labels: map[string]string{}, value: v}
		if name, labels, ok := strings.Cut(series, "{"); ok {
			s.name = name
			for pair := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
				k, v, _ := strings.Cut(pair, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out = append(out, s)
	}
	return out
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// value returns the sample of name whose labels include labels (pairs).
func value(samples []sample, name string, labels ...string) (float64, bool) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func wantValue(t *testing.T, samples []sample, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(samples, name, labels...)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v: got %v, want %v", name, labels, got, want)
	}
}

func TestServe_Metrics(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)

	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	apptest.WantStatus(t, ts.Do(t, "POST", "/sessions", `{"email":"alice@example.com","password":"wrong password"}`),
		http.StatusUnauthorized)
	aliceToken := ts.Login(t, "alice@example.com", apptest.Password)
	a1 := ts.CreateKey(t, aliceToken, `{"name":"a1"}`)
	if got := ts.Validate(t, a1); got != http.StatusOK {
		t.Fatalf("validate: got %d, want %d", got, http.StatusOK)
	}
	r := ts.Do(t, "POST", "/api-keys/"+a1.Key+"/regenerate", "", apptest.Bearer(aliceToken)...)
	apptest.WantStatus(t, r, http.StatusOK)
	regenerated := r.JSON(t)["secret"].(string)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+a1.Key, "", apptest.Bearer(aliceToken)...), http.StatusNoContent)
	if got := ts.Validate(t, apptest.CreatedKey{Key: a1.Key, Secret: regenerated}); got == http.StatusOK {
		t.Fatalf("validate a revoked key: got %d, want a refusal", got)
	}
	apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys", `{"name":"x"}`), http.StatusUnauthorized)

	bobID := ts.Register(t, "bob@example.com", apptest.Password)
	bobToken := ts.Login(t, "bob@example.com", apptest.Password)
	b1 := ts.CreateKey(t, bobToken, `{"name":"b1"}`)
	rootID := ts.CreateUser(t, "root@example.com", true)
	ts.CaughtUp(t)
	rootToken := ts.Login(t, "root@example.com", apptest.Password)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/admin/keys/"+b1.Key, "", apptest.Bearer(rootToken)...), http.StatusNoContent)
	apptest.WantStatus(t, ts.Do(t, "POST", "/admin/users/"+bobID+"/revoke-keys", "", apptest.Bearer(rootToken)...), http.StatusOK)
	apptest.WantStatus(t, ts.Do(t, "POST", "/admin/users/"+bobID+"/disable", "", apptest.Bearer(rootToken)...), http.StatusNoContent)

	apptest.WantStatus(t, ts.Do(t, "GET", "/no/such/"+a1.Key, ""), http.StatusNotFound)
	ts.Do(t, "FROB", "/validate", "")

	head := apptest.StreamHead(t, ts)
	var text string
	var samples []sample
	natstest.Eventually(t, 5*time.Second, func() bool {
		text = ts.Metrics(t)
		samples = parseMetrics(t, text)
		applied, _ := value(samples, "keyledger_projection_applied_sequence")
		return applied == float64(head)
	}, "keyledger_projection_applied_sequence at the stream head")

	t.Run("Commands", func(t *testing.T) {
		for _, c := range []struct {
			command, outcome string
			want             float64
		}{
			{"register_user", "ok", 2},
			{"login", "ok", 3},
			{"login", "unauthorized", 1},
			{"create_key", "ok", 2},
			{"regenerate_secret", "ok", 1},
			{"revoke_key", "ok", 1},
			{"admin_revoke_key", "ok", 1},
			{"revoke_user_keys", "ok", 1},
			{"disable_user", "ok", 1},
		} {
			wantValue(t, samples, c.want, "keyledger_commands_total", "command", c.command, "outcome", c.outcome)
		}
		wantValue(t, samples, 4, "keyledger_command_duration_seconds_count", "command", "login")
		// The POST /api-keys without a session never became a command.
		wantValue(t, samples, 2, "keyledger_command_duration_seconds_count", "command", "create_key")
		if _, ok := value(samples, "keyledger_commands_total", "command", "create_key", "outcome", "unauthorized"); ok {
			t.Error("a request refused before its command ran: want it counted as a request only")
		}
	})

	t.Run("Requests", func(t *testing.T) {
		wantValue(t, samples, 2, "keyledger_http_requests_total", "route", "POST /api-keys", "method", "POST", "status", "201")
		wantValue(t, samples, 1, "keyledger_http_requests_total", "route", "POST /api-keys", "method", "POST", "status", "401")
		wantValue(t, samples, 3, "keyledger_http_request_duration_seconds_count", "route", "POST /api-keys", "method", "POST")
		wantValue(t, samples, 1, "keyledger_http_requests_total", "route", "DELETE /api-keys/{key}", "method", "DELETE", "status", "204")
		wantValue(t, samples, 1, "keyledger_http_requests_total", "route", "/validate", "method", "GET", "status", "200")
		wantValue(t, samples, 1, "keyledger_http_requests_total", "route", "unmatched", "method", "GET", "status", "404")
		if _, ok := value(samples, "keyledger_http_requests_total", "route", "/validate", "method", "other"); !ok {
			t.Error("a request with an unknown method: want it counted with method \"other\"")
		}
		for _, s := range samples {
			if m := s.labels["method"]; m == "FROB" {
				t.Errorf("%s: a client's method %q became a label value", s.name, m)
			}
		}
	})

	t.Run("State", func(t *testing.T) {
		wantValue(t, samples, float64(head), "keyledger_projection_applied_sequence")
		wantValue(t, samples, 0, "keyledger_projection_lag_events")
		wantValue(t, samples, 1, "keyledger_nats_connected")
		wantValue(t, samples, 0, "keyledger_personal_data_unreadable_total")
		if age, ok := value(samples, "keyledger_projection_last_applied_age_seconds"); !ok || age < 0 || age > 60 {
			t.Errorf("keyledger_projection_last_applied_age_seconds: got %v (present %v), want 0..60", age, ok)
		}
	})

	t.Run("Validator", func(t *testing.T) {
		wantValue(t, samples, 1, "keyledger_validations_total", "outcome", "ok")
		if _, ok := value(samples, "keyledger_validator_applied_sequence"); !ok {
			t.Error("keyledger_validator_applied_sequence: missing")
		}
	})

	t.Run("NoSecrets", func(t *testing.T) {
		for what, s := range map[string]string{
			"password": apptest.Password, "alice's token": aliceToken, "bob's token": bobToken, "root's token": rootToken,
			"a1 key": a1.Key, "a1 secret": a1.Secret, "a1 regenerated secret": regenerated,
			"b1 key": b1.Key, "b1 secret": b1.Secret, "a1 key (base64)": apptest.Base64(a1.Key), "a1 secret (base64)": apptest.Base64(a1.Secret),
			"alice's id": aliceID, "bob's id": bobID, "root's id": rootID, "an email": "example.com",
		} {
			if strings.Contains(text, s) {
				t.Errorf("metrics hold %s", what)
			}
		}
	})
}

// TestServe_MetricsAddr: /metrics is on a listener of its own, on the
// API's listener only when asked for, and nowhere when off (or unset).
func TestServe_MetricsAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, addr        string
		onListener, onAPI bool
	}{
		{"Listener", "127.0.0.1:0", true, false},
		{"API", app.MetricsOnAPI, false, true},
		{"Off", app.MetricsOff, false, false},
		{"Unset", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &app.Server{
				Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
					MetricsAddr: tc.addr, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
					CheckpointInterval: -1},
				Logger: slog.New(slog.DiscardHandler),
			}
			if err := s.Open(context.Background()); err != nil {
				s.Close(context.Background())
				t.Fatalf("Open: %v", err)
			}
			ts := &apptest.Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: &apptest.SyncBuffer{}}
			closed := false
			defer func() {
				if !closed {
					ts.Stop(t)
				}
			}()
			natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
			ts.Register(t, "alice@example.com", apptest.Password)

			r := ts.Do(t, "GET", "/metrics", "")
			if tc.onAPI {
				apptest.WantStatus(t, r, http.StatusOK)
				wantValue(t, parseMetrics(t, string(r.Body)), 1, "keyledger_commands_total", "command", "register_user", "outcome", "ok")
			} else {
				apptest.WantStatus(t, r, http.StatusNotFound)
				if code := r.ErrorCode(t); code != "not_found" {
					t.Errorf("GET /metrics on the API: got code %q, want not_found", code)
				}
			}
			if !tc.onListener {
				if s.MetricsAddr() != "" {
					t.Errorf("MetricsAddr: got %q, want no listener", s.MetricsAddr())
				}
				return
			}

			metricsURL := "http://" + s.MetricsAddr() + "/metrics"
			if s.MetricsAddr() == "" || s.MetricsAddr() == s.HTTPAddr() {
				t.Fatalf("MetricsAddr: got %q, want a listener apart from %q", s.MetricsAddr(), s.HTTPAddr())
			}
			samples := parseMetrics(t, ts.Metrics(t))
			wantValue(t, samples, 1, "keyledger_commands_total", "command", "register_user", "outcome", "ok")
			if _, ok := value(samples, "keyledger_validations_total"); !ok {
				t.Error("keyledger_validations_total: missing on the metrics listener")
			}
			// Nothing but /metrics on it.
			if r := apptest.Send(t, "GET", "http://"+s.MetricsAddr()+"/readyz", ""); r.Status != http.StatusNotFound {
				t.Errorf("GET /readyz on the metrics listener: got %d, want 404", r.Status)
			}

			closed = true
			ts.Stop(t)
			if resp, err := http.Get(metricsURL); err == nil {
				resp.Body.Close()
				t.Errorf("GET %s after Close: got %d, want the listener closed", metricsURL, resp.StatusCode)
			}
		})
	}
}
