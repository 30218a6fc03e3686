package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestServe_MaxKeysPerUser: --max-keys-per-user answers 409 with a clear
// JSON error once a user holds that many unrevoked keys.
func TestServe_MaxKeysPerUser(t *testing.T) {
	t.Parallel()
	s := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1, MaxKeysPerUser: 1},
		Logger: slog.New(slog.DiscardHandler),
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	ts := &apptest.Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: &apptest.SyncBuffer{}}
	ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	k := ts.CreateKey(t, token, "")
	r := ts.Do(t, "POST", "/api-keys", "", "Authorization", "Bearer "+token)
	apptest.WantStatus(t, r, http.StatusConflict)
	if code := r.ErrorCode(t); code != "conflict" {
		t.Fatalf("got code %q, want conflict", code)
	}
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+k.Key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	ts.CreateKey(t, token, "")
}

// startServerWith is startServer with cfg's limits and NATS URL.
func startServerWith(t *testing.T, edit func(*app.ServeConfig)) *apptest.Server {
	t.Helper()
	logs := &apptest.SyncBuffer{}
	s := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			MetricsAddr: "127.0.0.1:0", Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	edit(&s.Config)
	if err := s.Open(context.Background()); err != nil {
		s.Close(context.Background())
		t.Fatalf("Open: %v", err)
	}
	ts := &apptest.Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: logs}
	t.Cleanup(func() { ts.Stop(t) })
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	return ts
}

// wantLimited checks a 429 rate_limited answer with Retry-After seconds.
func wantLimited(t *testing.T, r apptest.Response, retryAfter int) {
	t.Helper()
	apptest.WantStatus(t, r, http.StatusTooManyRequests)
	if code := r.ErrorCode(t); code != "rate_limited" {
		t.Fatalf("got code %q, want rate_limited", code)
	}
	if got := r.Header.Get("Retry-After"); got != strconv.Itoa(retryAfter) {
		t.Fatalf("got Retry-After %q, want %d", got, retryAfter)
	}
}

// TestServe_RateLimits runs serve with small limits: registrations and
// failed logins per client address, and failed validations per API key,
// answer 429 with Retry-After; a spoofed X-Forwarded-For does not reset a
// limit unless the peer is a trusted proxy.
func TestServe_RateLimits(t *testing.T) {
	t.Parallel()
	t.Run("Direct", func(t *testing.T) {
		ts := startServerWith(t, func(c *app.ServeConfig) {
			c.Limits = app.LimitsConfig{LoginFailures: 3, LoginFailureWindow: time.Minute,
				RegistrationBurst: 2, RegistrationEvery: time.Hour, ValidateFailures: 2, ValidateFailureWindow: time.Minute}
		})
		ts.Register(t, "alice@example.com", apptest.Password)
		ts.Register(t, "bob@example.com", apptest.Password)
		r := ts.Do(t, "POST", "/users", `{"email":"carol@example.com","password":"`+apptest.Password+`"}`)
		wantLimited(t, r, 3600)
		r = ts.Do(t, "POST", "/users", `{"email":"carol@example.com","password":"`+apptest.Password+`"}`, "X-Forwarded-For", "198.51.100.1")
		wantLimited(t, r, 3600)

		token := ts.Login(t, "alice@example.com", apptest.Password)
		for i := range 3 {
			apptest.WantStatus(t, ts.Do(t, "POST", "/sessions", `{"email":"user`+strconv.Itoa(i)+`@example.com","password":"wrong wrong wrong wrong"}`), http.StatusUnauthorized)
		}
		for _, xff := range []string{"", "198.51.100.2", "198.51.100.3, 127.0.0.1"} {
			r = ts.Do(t, "POST", "/sessions", `{"email":"bob@example.com","password":"`+apptest.Password+`"}`, "X-Forwarded-For", xff)
			wantLimited(t, r, 60)
		}

		k := ts.CreateKey(t, token, "")
		bad := apptest.CreatedKey{Key: k.Key, Secret: ts.CreateKey(t, token, "").Secret}
		apptest.WantStatus(t, ts.Do(t, "GET", "/validate", "", "X-Api-Key", apptest.Base64(bad.Key), "X-Api-Secret", apptest.Base64(bad.Secret)), http.StatusUnauthorized)
		apptest.WantStatus(t, ts.Do(t, "GET", "/validate", "", "X-Api-Key", apptest.Base64(bad.Key), "X-Api-Secret", apptest.Base64(bad.Secret)), http.StatusUnauthorized)
		r = ts.Do(t, "GET", "/validate", "", "X-Api-Key", apptest.Base64(bad.Key), "X-Api-Secret", apptest.Base64(bad.Secret))
		wantLimited(t, r, 60)
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("got Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
		}
		// The key's owner is not shut out by someone else's failures.
		apptest.WantStatus(t, ts.Do(t, "GET", "/validate", "", "X-Api-Key", apptest.Base64(k.Key), "X-Api-Secret", apptest.Base64(k.Secret)), http.StatusOK)

		m := ts.Metrics(t)
		for _, want := range []string{
			`keyledger_limited_requests_total{limit="registration_address"} 2`,
			`keyledger_limited_requests_total{limit="login_address"} 3`,
			`keyledger_validations_total{outcome="rate_limited"} 1`,
		} {
			if !strings.Contains(string(m), want+"\n") {
				t.Errorf("metrics: no %s", want)
			}
		}
	})
	t.Run("TrustedProxy", func(t *testing.T) {
		ts := startServerWith(t, func(c *app.ServeConfig) {
			c.Limits = app.LimitsConfig{TrustedProxies: []string{"127.0.0.1", "::1"}, RegistrationBurst: 1, RegistrationEvery: time.Hour}
			c.SignUp.Registration = "open" // behind a proxy the default is verified
		})
		register := func(email, xff string) apptest.Response {
			return ts.Do(t, "POST", "/users", `{"email":"`+email+`","password":"`+apptest.Password+`"}`, "X-Forwarded-For", xff)
		}
		apptest.WantStatus(t, register("a@example.com", "198.51.100.1"), http.StatusCreated)
		wantLimited(t, register("b@example.com", "198.51.100.1"), 3600)
		wantLimited(t, register("b@example.com", "203.0.113.9, 198.51.100.1"), 3600) // what the client wrote
		apptest.WantStatus(t, register("b@example.com", "198.51.100.2"), http.StatusCreated)
		apptest.WantStatus(t, register("c@example.com", ""), http.StatusCreated) // the proxy itself
		wantLimited(t, register("d@example.com", ""), 3600)
	})
}

// TestServe_PasswordHashingCap sends many concurrent logins to a server
// that may hash two passwords at once and does not wait for a slot: the
// hashes in flight never exceed two, and every answer is 200, 401, 429 or
// 503 (with Retry-After), never a 500.
func TestServe_PasswordHashingCap(t *testing.T) {
	t.Parallel()
	ts := startServerWith(t, func(c *app.ServeConfig) {
		c.Argon2 = auth.Argon2Params{Memory: 4 << 10, Time: 2, Threads: 1} // a few ms each
		c.Limits = app.LimitsConfig{MaxPasswordHashing: 2, PasswordHashingWait: -1, LoginFailures: -1, RegistrationBurst: -1}
	})
	const users = 4
	for i := range users {
		for {
			r := ts.Do(t, "POST", "/users", `{"email":"u`+strconv.Itoa(i)+`@example.com","password":"`+apptest.Password+`"}`)
			if r.Status == http.StatusCreated {
				break
			}
			apptest.WantStatus(t, r, http.StatusServiceUnavailable)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 64 {
		wg.Go(func() {
			pw := apptest.Password
			if i%2 == 1 {
				pw = "wrong wrong wrong wrong"
			}
			r := ts.Do(t, "POST", "/sessions", `{"email":"u`+strconv.Itoa(i%users)+`@example.com","password":"`+pw+`"}`)
			if r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "1" {
				t.Errorf("503 without Retry-After: 1: %q", r.Header.Get("Retry-After"))
			}
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for status, n := range statuses {
		switch status {
		case http.StatusOK, http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusServiceUnavailable:
		default:
			t.Errorf("got %d answers with status %d, want only 200, 401, 429 and 503", n, status)
		}
	}
	if peak := ts.Passwords().PeakInFlight(); peak > 2 || peak < 1 {
		t.Errorf("peak password hashes in flight: got %d, want 1 or 2", peak)
	}
	t.Logf("statuses %v, peak in flight %d", statuses, ts.Passwords().PeakInFlight())
	m := ts.Metrics(t)
	for _, want := range []string{"keyledger_password_hashing_in_flight 0\n", "keyledger_password_hashing_max 2\n",
		`keyledger_limited_requests_total{limit="password_hashing"} ` + strconv.Itoa(statuses[http.StatusServiceUnavailable]) + "\n"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics: no %q", want)
		}
	}
}
