package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/ratelimit"
)

func loginBody(email, password string) string {
	return `{"email":"` + email + `","password":"` + password + `"}`
}

func failures(t testing.TB, limit int, window time.Duration) *ratelimit.Failures {
	t.Helper()
	f, err := ratelimit.NewFailures(ratelimit.FailuresConfig{Limit: limit, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func bucket(t testing.TB, every time.Duration, burst int) *ratelimit.Bucket {
	t.Helper()
	b, err := ratelimit.NewBucket(ratelimit.BucketConfig{Every: every, Burst: burst})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantRateLimited checks a 429 with a JSON rate_limited error and
// Retry-After of retryAfter whole seconds.
func wantRateLimited(t testing.TB, r result, retryAfter int) {
	t.Helper()
	wantStatus(t, r, http.StatusTooManyRequests)
	if code := r.errorCode(t); code != "rate_limited" {
		t.Fatalf("got code %q, want rate_limited", code)
	}
	if got := r.header.Get("Retry-After"); got != fmt.Sprint(retryAfter) {
		t.Fatalf("got Retry-After %q, want %d", got, retryAfter)
	}
}

// metric returns the value of one sample in h's metrics exposition.
func (h *harness) metric(t testing.TB, sample string) string {
	t.Helper()
	w := httptest.NewRecorder()
	h.metrics.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.SplitSeq(w.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	t.Fatalf("no sample %s in:\n%s", sample, w.Body.String())
	return ""
}

// TestAPI_LoginFailuresPerAddress: failed logins from one client address
// are limited whichever emails they try; a spoofed X-Forwarded-For from an
// untrusted peer does not reset the count; successes do not count, but do
// not wipe earlier failures either.
func TestAPI_LoginFailuresPerAddress(t *testing.T) {
	t.Parallel()
	const peer, other = "192.0.2.1:40000", "192.0.2.2:40000"
	t.Run("BlocksAfterTheLimit", func(t *testing.T) {
		h := newHarness(t, func(c *handlers.Config) { c.LoginFailures = failures(t, 3, 15*time.Minute) })
		for i := range 3 {
			r := h.do("POST", "/sessions", peer, loginBody(fmt.Sprintf("user%d@example.com", i), "wrong wrong wrong wrong"))
			wantStatus(t, r, http.StatusUnauthorized)
		}
		wantRateLimited(t, h.do("POST", "/sessions", peer, loginBody("user9@example.com", "wrong wrong wrong wrong")), 900)
		// The right password is refused too while the address is blocked.
		wantRateLimited(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), 900)
		// Spoofed X-Forwarded-For headers from the same untrusted peer.
		for _, xff := range []string{"198.51.100.7", "198.51.100.8, 10.0.0.1", "unknown"} {
			wantRateLimited(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword),
				"X-Forwarded-For", xff), 900)
		}
		// Another address is not blocked.
		wantStatus(t, h.do("POST", "/sessions", other, loginBody("alice@example.com", testPassword)), http.StatusOK)
		// Retry-After counts down with the clock, rounded up.
		h.clock.Advance(10*time.Minute + 500*time.Millisecond)
		wantRateLimited(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), 300)
		h.clock.Advance(5 * time.Minute)
		wantStatus(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), http.StatusOK)
		if got := h.metric(t, `keyledger_limited_requests_total{limit="login_address"}`); got != "6" {
			t.Errorf("limited login_address: got %s, want 6", got)
		}
	})
	t.Run("SuccessesDoNotCount", func(t *testing.T) {
		h := newHarness(t, func(c *handlers.Config) { c.LoginFailures = failures(t, 3, 15*time.Minute) })
		for range 10 {
			wantStatus(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), http.StatusOK)
		}
		// Two failures, a success, a failure: three failures, blocked.
		wantStatus(t, h.do("POST", "/sessions", peer, loginBody("a@example.com", "wrong wrong wrong wrong")), http.StatusUnauthorized)
		wantStatus(t, h.do("POST", "/sessions", peer, loginBody("b@example.com", "wrong wrong wrong wrong")), http.StatusUnauthorized)
		wantStatus(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), http.StatusOK)
		wantStatus(t, h.do("POST", "/sessions", peer, loginBody("c@example.com", "wrong wrong wrong wrong")), http.StatusUnauthorized)
		wantRateLimited(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), 900)
	})
	t.Run("MalformedRequestsDoNotCount", func(t *testing.T) {
		h := newHarness(t, func(c *handlers.Config) { c.LoginFailures = failures(t, 1, 15*time.Minute) })
		for range 5 {
			wantStatus(t, h.do("POST", "/sessions", peer, `{"email":`), http.StatusBadRequest)
		}
		wantStatus(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), http.StatusOK)
	})
	t.Run("NoLimitConfigured", func(t *testing.T) {
		h := newHarness(t, nil)
		for i := range 50 { // one attempt per email: the ledger's own per-email throttle stays out of it
			wantStatus(t, h.do("POST", "/sessions", peer, loginBody(fmt.Sprintf("x%d@example.com", i), "wrong wrong wrong wrong")), http.StatusUnauthorized)
		}
	})
}

// TestAPI_LoginFailuresPerAddress_TrustedProxy: behind a trusted proxy the
// client is the address it appends to X-Forwarded-For; whatever a client
// puts in front of that does not change it.
func TestAPI_LoginFailuresPerAddress_TrustedProxy(t *testing.T) {
	t.Parallel()
	proxies, err := handlers.ParseTrustedProxies("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *handlers.Config) {
		c.LoginFailures = failures(t, 2, 15*time.Minute)
		c.Proxies = proxies
	})
	const proxy = "10.1.2.3:5555"
	fail := func(xff string) result {
		return h.do("POST", "/sessions", proxy, loginBody("x@example.com", "wrong wrong wrong wrong"), "X-Forwarded-For", xff)
	}
	wantStatus(t, fail("198.51.100.1"), http.StatusUnauthorized)
	wantStatus(t, fail("203.0.113.50, 198.51.100.1"), http.StatusUnauthorized)
	wantRateLimited(t, fail("203.0.113.51, 198.51.100.1"), 900)
	wantRateLimited(t, fail("198.51.100.1, 10.9.9.9"), 900) // through a second trusted proxy
	// Other clients behind the same proxy are not blocked.
	wantStatus(t, fail("198.51.100.2"), http.StatusUnauthorized)
	wantStatus(t, h.do("POST", "/sessions", proxy, loginBody("alice@example.com", testPassword),
		"X-Forwarded-For", "198.51.100.3"), http.StatusOK)
}

// TestAPI_LoginOutcomesThatAreNotGuesses: the ledger's throttle per email
// and address answers 429 with Retry-After, and its refusals do not count
// against the client's address. (A saturated password hasher's 503 is
// tested through the whole server in cmd/keyledger,
// TestServe_PasswordHashingCap.)
func TestAPI_LoginOutcomesThatAreNotGuesses(t *testing.T) {
	t.Parallel()
	const peer = "192.0.2.1:40000"
	h := newHarness(t, func(c *handlers.Config) { c.LoginFailures = failures(t, 6, 15*time.Minute) })
	// Five wrong passwords for alice from peer use its five free failures
	// for her email (then a wait of a second, doubling), and five of the
	// address's six.
	for range 5 {
		wantStatus(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", "wrong wrong wrong wrong")), http.StatusUnauthorized)
	}
	for range 3 {
		wantRateLimited(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), 1)
	}
	// Not guesses of this address's: with one failure of its budget left it
	// is still free to log in once the wait is over.
	h.clock.Advance(time.Second)
	wantStatus(t, h.do("POST", "/sessions", peer, loginBody("alice@example.com", testPassword)), http.StatusOK)
	if got := h.metric(t, `keyledger_limited_requests_total{limit="login_email"}`); got != "3" {
		t.Errorf("limited login_email: got %s, want 3", got)
	}
	if got := h.metric(t, `keyledger_limited_requests_total{limit="login_address"}`); got != "0" {
		t.Errorf("limited login_address: got %s, want 0", got)
	}
}

// TestAPI_RegistrationsPerAddress: registrations from one address are
// paced by a token bucket, failed ones included; IPv6 clients are told
// apart by their /64.
func TestAPI_RegistrationsPerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *handlers.Config) { c.Registrations = bucket(t, 6*time.Minute, 2) })
	register := func(peer, email string, headers ...string) result {
		return h.do("POST", "/users", peer, loginBody(email, testPassword), headers...)
	}
	const peer = "192.0.2.1:40000"
	wantStatus(t, register(peer, "a@example.com"), http.StatusCreated)
	wantStatus(t, register(peer, "a@example.com"), http.StatusConflict) // counts too
	wantRateLimited(t, register(peer, "b@example.com"), 360)
	wantRateLimited(t, register(peer, "b@example.com", "X-Forwarded-For", "198.51.100.9"), 360)
	wantStatus(t, register("192.0.2.2:1", "b@example.com"), http.StatusCreated)
	h.clock.Advance(6 * time.Minute)
	wantStatus(t, register(peer, "c@example.com"), http.StatusCreated)
	wantRateLimited(t, register(peer, "d@example.com"), 360)

	wantStatus(t, register("[2001:db8::1]:1", "v6a@example.com"), http.StatusCreated)
	wantStatus(t, register("[2001:db8::2]:1", "v6b@example.com"), http.StatusCreated)
	wantRateLimited(t, register("[2001:db8::ffff:1]:1", "v6c@example.com"), 360)
	wantStatus(t, register("[2001:db8:0:1::1]:1", "v6c@example.com"), http.StatusCreated)
	if got := h.metric(t, `keyledger_limited_requests_total{limit="registration_address"}`); got != "4" {
		t.Errorf("limited registration_address: got %s, want 4", got)
	}
}

// TestAPI_Readyz: /readyz stays 200 while the read models serve reads,
// NATS connected or not; it turns 503 while they catch up, once they are
// staler than ReadyMaxStaleness, and with ?strict=1 while NATS is away.
func TestAPI_Readyz(t *testing.T) {
	t.Parallel()
	disconnected := handlers.ReadyStatus{Ready: true, AppliedSeq: 7, StartSeq: 7, StalenessSeconds: 42, Connected: false}
	never := handlers.ReadyStatus{Ready: true, StalenessSeconds: -1, Connected: true}
	catchingUp := handlers.ReadyStatus{AppliedSeq: 3, StartSeq: 7, StalenessSeconds: -1, Connected: true}
	tests := []struct {
		name         string
		st           handlers.ReadyStatus
		maxStaleness time.Duration
		query        string
		want         int
		wantReason   string
	}{
		{"CaughtUp", caughtUp, 0, "", 200, ""},
		{"CaughtUpStrict", caughtUp, 0, "?strict=1", 200, ""},
		{"CatchingUp", catchingUp, 0, "", 503, "catching up with the event log"},
		{"Disconnected", disconnected, 0, "", 200, ""},
		{"DisconnectedStrict", disconnected, 0, "?strict=1", 503, "not connected to NATS: commands cannot be stored"},
		{"DisconnectedStrictBare", disconnected, 0, "?strict", 503, "not connected to NATS: commands cannot be stored"},
		{"DisconnectedStrictOff", disconnected, 0, "?strict=0", 200, ""},
		{"DisconnectedWithinBound", disconnected, time.Minute, "", 200, ""},
		{"DisconnectedBeyondBound", disconnected, 30 * time.Second, "", 503, "read models not confirmed complete for longer than 30s"},
		{"NeverConfirmedWithBound", never, 30 * time.Second, "", 503, "read models not confirmed complete for longer than 30s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *handlers.Config) { c.ReadyMaxStaleness = tc.maxStaleness })
			h.ready.set(tc.st)
			r := h.do("GET", "/readyz"+tc.query, "192.0.2.1:1", "")
			wantStatus(t, r, tc.want)
			var got handlers.ReadyStatus
			if err := jsonUnmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			want := tc.st
			want.Ready, want.Reason = tc.want == 200, tc.wantReason
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestAPI_StalenessHeader: reads carry X-Keyledger-Staleness while NATS is
// away or the view is older than StaleAfter, and not otherwise.
func TestAPI_StalenessHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   handlers.ReadyStatus
		want string
	}{
		{"Fresh", caughtUp, ""},
		{"DisconnectedJustNow", handlers.ReadyStatus{Ready: true, StalenessSeconds: 0.25}, "0.250"},
		{"Disconnected", handlers.ReadyStatus{Ready: true, StalenessSeconds: 12.5}, "12.500"},
		{"ConnectedButBehind", handlers.ReadyStatus{Ready: true, StalenessSeconds: 6, Connected: true}, "6.000"},
		{"ConnectedAtTheBound", handlers.ReadyStatus{Ready: true, StalenessSeconds: handlers.StaleAfter.Seconds(), Connected: true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.ready.set(tc.st)
			r := h.do("GET", "/api-keys", "192.0.2.1:1", "", "Authorization", "Bearer "+h.token)
			wantStatus(t, r, http.StatusOK)
			if got := r.header.Get(handlers.HeaderStaleness); got != tc.want {
				t.Fatalf("got %s %q, want %q", handlers.HeaderStaleness, got, tc.want)
			}
		})
	}
}

// TestAPI_NotReadyRetryAfter: while catching up, gated routes answer 503
// with Retry-After: 1.
func TestAPI_NotReadyRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.ready.set(handlers.ReadyStatus{StalenessSeconds: -1, Connected: true})
	r := h.do("POST", "/sessions", "192.0.2.1:1", loginBody("alice@example.com", testPassword))
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") != "1" || r.errorCode(t) != "unavailable" {
		t.Fatalf("got Retry-After %q, body %s, want 1 and unavailable", r.header.Get("Retry-After"), r.body)
	}
}

func jsonUnmarshal(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
