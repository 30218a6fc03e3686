package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestServe_MaxKeysPerUser: --max-keys-per-user answers 409 with a clear
// JSON error once a user holds that many unrevoked keys.
func TestServe_MaxKeysPerUser(t *testing.T) {
	s := &Server{
		Config: ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1, MaxKeysPerUser: 1},
		Logger: slog.New(slog.DiscardHandler),
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	ts := &testServer{Server: s, base: "http://" + s.HTTPAddr(), logs: &syncBuffer{}}
	ts.register(t, "alice@example.com", password)
	token := ts.login(t, "alice@example.com", password)
	k := ts.createKey(t, token, "")
	r := ts.do(t, "POST", "/api-keys", "", "Authorization", "Bearer "+token)
	wantStatus(t, r, http.StatusConflict)
	if code := r.errorCode(t); code != "conflict" {
		t.Fatalf("got code %q, want conflict", code)
	}
	wantStatus(t, ts.do(t, "DELETE", "/api-keys/"+k.key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	ts.createKey(t, token, "")
}

// startServerWith is startServer with cfg's limits and NATS URL.
func startServerWith(t *testing.T, edit func(*ServeConfig)) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	s := &Server{
		Config: ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	edit(&s.Config)
	if err := s.Open(context.Background()); err != nil {
		s.Close(context.Background())
		t.Fatalf("Open: %v", err)
	}
	ts := &testServer{Server: s, base: "http://" + s.HTTPAddr(), logs: logs}
	t.Cleanup(func() { ts.close(t) })
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	return ts
}

// wantLimited checks a 429 rate_limited answer with Retry-After seconds.
func wantLimited(t *testing.T, r response, retryAfter int) {
	t.Helper()
	wantStatus(t, r, http.StatusTooManyRequests)
	if code := r.errorCode(t); code != "rate_limited" {
		t.Fatalf("got code %q, want rate_limited", code)
	}
	if got := r.header.Get("Retry-After"); got != strconv.Itoa(retryAfter) {
		t.Fatalf("got Retry-After %q, want %d", got, retryAfter)
	}
}

// TestServe_RateLimits runs serve with small limits: registrations and
// failed logins per client address, and failed validations per API key,
// answer 429 with Retry-After; a spoofed X-Forwarded-For does not reset a
// limit unless the peer is a trusted proxy.
func TestServe_RateLimits(t *testing.T) {
	t.Run("Direct", func(t *testing.T) {
		ts := startServerWith(t, func(c *ServeConfig) {
			c.Limits = LimitsConfig{LoginFailures: 3, LoginFailureWindow: time.Minute,
				RegistrationBurst: 2, RegistrationEvery: time.Hour, ValidateFailures: 2, ValidateFailureWindow: time.Minute}
		})
		ts.register(t, "alice@example.com", password)
		ts.register(t, "bob@example.com", password)
		r := ts.do(t, "POST", "/users", `{"email":"carol@example.com","password":"`+password+`"}`)
		wantLimited(t, r, 3600)
		r = ts.do(t, "POST", "/users", `{"email":"carol@example.com","password":"`+password+`"}`, "X-Forwarded-For", "198.51.100.1")
		wantLimited(t, r, 3600)

		token := ts.login(t, "alice@example.com", password)
		for i := range 3 {
			wantStatus(t, ts.do(t, "POST", "/sessions", `{"email":"user`+strconv.Itoa(i)+`@example.com","password":"wrong wrong wrong wrong"}`), http.StatusUnauthorized)
		}
		for _, xff := range []string{"", "198.51.100.2", "198.51.100.3, 127.0.0.1"} {
			r = ts.do(t, "POST", "/sessions", `{"email":"bob@example.com","password":"`+password+`"}`, "X-Forwarded-For", xff)
			wantLimited(t, r, 60)
		}

		k := ts.createKey(t, token, "")
		bad := createdKey{key: k.key, secret: ts.createKey(t, token, "").secret}
		wantStatus(t, ts.do(t, "GET", "/validate", "", "X-Api-Key", b64(bad.key), "X-Api-Secret", b64(bad.secret)), http.StatusUnauthorized)
		wantStatus(t, ts.do(t, "GET", "/validate", "", "X-Api-Key", b64(bad.key), "X-Api-Secret", b64(bad.secret)), http.StatusUnauthorized)
		r = ts.do(t, "GET", "/validate", "", "X-Api-Key", b64(bad.key), "X-Api-Secret", b64(bad.secret))
		wantLimited(t, r, 60)
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("got Cache-Control %q, want no-store", r.header.Get("Cache-Control"))
		}
		// The key's owner is not shut out by someone else's failures.
		wantStatus(t, ts.do(t, "GET", "/validate", "", "X-Api-Key", b64(k.key), "X-Api-Secret", b64(k.secret)), http.StatusOK)

		m := ts.do(t, "GET", "/metrics", "").body
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
		ts := startServerWith(t, func(c *ServeConfig) {
			c.Limits = LimitsConfig{TrustedProxies: []string{"127.0.0.1", "::1"}, RegistrationBurst: 1, RegistrationEvery: time.Hour}
		})
		register := func(email, xff string) response {
			return ts.do(t, "POST", "/users", `{"email":"`+email+`","password":"`+password+`"}`, "X-Forwarded-For", xff)
		}
		wantStatus(t, register("a@example.com", "198.51.100.1"), http.StatusCreated)
		wantLimited(t, register("b@example.com", "198.51.100.1"), 3600)
		wantLimited(t, register("b@example.com", "203.0.113.9, 198.51.100.1"), 3600) // what the client wrote
		wantStatus(t, register("b@example.com", "198.51.100.2"), http.StatusCreated)
		wantStatus(t, register("c@example.com", ""), http.StatusCreated) // the proxy itself
		wantLimited(t, register("d@example.com", ""), 3600)
	})
}

// TestServe_PasswordHashingCap sends many concurrent logins to a server
// that may hash two passwords at once and does not wait for a slot: the
// hashes in flight never exceed two, and every answer is 200, 401, 429 or
// 503 (with Retry-After), never a 500.
func TestServe_PasswordHashingCap(t *testing.T) {
	ts := startServerWith(t, func(c *ServeConfig) {
		c.Argon2 = auth.Argon2Params{Memory: 4 << 10, Time: 2, Threads: 1} // a few ms each
		c.Limits = LimitsConfig{MaxPasswordHashing: 2, PasswordHashingWait: -1, LoginFailures: -1, RegistrationBurst: -1}
	})
	const users = 4
	for i := range users {
		for {
			r := ts.do(t, "POST", "/users", `{"email":"u`+strconv.Itoa(i)+`@example.com","password":"`+password+`"}`)
			if r.status == http.StatusCreated {
				break
			}
			wantStatus(t, r, http.StatusServiceUnavailable)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 64 {
		wg.Go(func() {
			pw := password
			if i%2 == 1 {
				pw = "wrong wrong wrong wrong"
			}
			r := ts.do(t, "POST", "/sessions", `{"email":"u`+strconv.Itoa(i%users)+`@example.com","password":"`+pw+`"}`)
			if r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "1" {
				t.Errorf("503 without Retry-After: 1: %q", r.header.Get("Retry-After"))
			}
			mu.Lock()
			statuses[r.status]++
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
	if peak := ts.passwords.PeakInFlight(); peak > 2 || peak < 1 {
		t.Errorf("peak password hashes in flight: got %d, want 1 or 2", peak)
	}
	t.Logf("statuses %v, peak in flight %d", statuses, ts.passwords.PeakInFlight())
	m := ts.do(t, "GET", "/metrics", "").body
	for _, want := range []string{"keyledger_password_hashing_in_flight 0\n", "keyledger_password_hashing_max 2\n",
		`keyledger_limited_requests_total{limit="password_hashing"} ` + strconv.Itoa(statuses[http.StatusServiceUnavailable]) + "\n"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics: no %q", want)
		}
	}
}

// TestParseFlags_TrustedProxy: --trusted-proxy is repeatable and takes
// comma lists; KEYLEDGER_TRUSTED_PROXY sets it, the command line replaces
// it; a value that is no address or prefix is a usage error.
func TestParseFlags_TrustedProxy(t *testing.T) {
	parse := func(args ...string) (ServeConfig, error) {
		var cfg ServeConfig
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		serveFlags(fs, &cfg)
		return cfg, parseFlags(fs, args)
	}
	t.Setenv("KEYLEDGER_TRUSTED_PROXY", "10.0.0.0/8,192.0.2.1")
	cfg, err := parse()
	if err != nil || strings.Join(cfg.Limits.TrustedProxies, ";") != "10.0.0.0/8,192.0.2.1" {
		t.Fatalf("environment only: got %q, %v", cfg.Limits.TrustedProxies, err)
	}
	cfg, err = parse("--trusted-proxy", "172.16.0.0/12", "--trusted-proxy", "::1,127.0.0.1")
	if err != nil || strings.Join(cfg.Limits.TrustedProxies, ";") != "172.16.0.0/12;::1,127.0.0.1" {
		t.Fatalf("command line: got %q, %v, want it to replace the environment", cfg.Limits.TrustedProxies, err)
	}
	if _, err := parse("--trusted-proxy", "proxy.example.com"); !errors.As(err, new(usageError)) {
		t.Fatalf("bad value: got %v, want a usage error", err)
	}
	t.Setenv("KEYLEDGER_TRUSTED_PROXY", "nonsense")
	if _, err := parse(); !errors.As(err, new(usageError)) {
		t.Fatalf("bad environment value: got %v, want a usage error", err)
	}
}
