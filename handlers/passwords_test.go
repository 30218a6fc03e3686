package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/handlers"
)

// TestAPI_RegisterPasswordPolicy: registration refuses the passwords the
// issue found accepted (fifteen spaces, one character repeated, the email
// itself) and common ones, with a 400 that says why in plain words and
// never repeats the password; a passphrase passes.
func TestAPI_RegisterPasswordPolicy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const peer = "192.0.2.1:40000"
	for _, tc := range []struct{ email, password, want string }{
		{"spaces@example.com", strings.Repeat(" ", 15), "must not be only spaces"},
		{"same@example.com", "aaaaaaaaaaaaaaa", "must not be a single character repeated"},
		{"self@example.com", "self@example.com", "must not be your email address"},
		{"local.part@example.com", "Local.Part 2024", "must not be your email address"},
		{"common@example.com", "qwertyuiopasdfghjkl", "on a list of commonly used passwords"},
		{"repeat@example.com", "Password Password", "on a list of commonly used passwords"},
		{"digits@example.com", "iloveyou12345678", "on a list of commonly used passwords"},
	} {
		r := h.do("POST", "/users", peer, loginBody(tc.email, tc.password))
		wantStatus(t, r, http.StatusBadRequest)
		var body struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatal(err)
		}
		if body.Error.Code != "invalid" || !strings.Contains(body.Error.Message, tc.want) {
			t.Errorf("%s: got %q %q, want invalid saying %q", tc.email, body.Error.Code, body.Error.Message, tc.want)
		}
		if p := strings.TrimSpace(tc.password); p != "" && p != tc.email && strings.Contains(r.body, p) {
			t.Errorf("%s: the answer %s repeats the password", tc.email, r.body)
		}
	}
	wantStatus(t, h.do("POST", "/users", peer, loginBody("carol@example.com", "my cat sleeps on the warm keyboard")), http.StatusCreated)
}

// TestAPI_LockoutNotWeaponised plays the attacker and the owner. The
// attacker sends many wrong passwords for alice's email from many
// addresses (directly, and through a trusted proxy with X-Forwarded-For);
// alice, from an address that has not failed, must still get in with her
// password. The attacker on one address is still throttled (429 with
// Retry-After), and once the email is under attack every failing address
// is refused for the rest of its window.
func TestAPI_LockoutNotWeaponised(t *testing.T) {
	t.Parallel()
	proxies, err := handlers.ParseTrustedProxies("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *handlers.Config) {
		c.LoginFailures = failures(t, 50, 15*time.Minute) // serve's default per address
		c.Proxies = proxies
	})
	const victim, guess = "alice@example.com", "wrong guess, long enough"

	// One address guesses: five free failures, then waits that double.
	const one = "203.0.113.1:5000"
	for range 5 {
		wantStatus(t, h.do("POST", "/sessions", one, loginBody(victim, guess)), http.StatusUnauthorized)
	}
	wantRateLimited(t, h.do("POST", "/sessions", one, loginBody(victim, guess)), 1)
	wantRateLimited(t, h.do("POST", "/sessions", one, loginBody(victim, testPassword)), 1)

	// Many addresses guess, eight times each (from the sixth on, refused).
	attempts := 0
	for i := range 40 {
		peer := fmt.Sprintf("198.51.100.%d:1000", i+1)
		xff := []string(nil)
		if i%2 == 1 { // half of them behind the trusted proxy
			peer, xff = "10.0.0.1:443", []string{"X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1)}
		}
		for range 8 {
			r := h.do("POST", "/sessions", peer, loginBody(victim, guess), xff...)
			if r.status != http.StatusUnauthorized && r.status != http.StatusTooManyRequests {
				t.Fatalf("attacker: got status %d (%s), want 401 or 429", r.status, r.body)
			}
			attempts++
		}
	}

	// The owner, from an address that has not failed: in, every time.
	for _, owner := range []struct {
		peer string
		xff  []string
	}{
		{"192.0.2.200:40000", nil},
		{"10.0.0.1:443", []string{"X-Forwarded-For", "198.51.100.250"}},
	} {
		r := h.do("POST", "/sessions", owner.peer, loginBody(victim, testPassword), owner.xff...)
		wantStatus(t, r, http.StatusOK)
	}

	// The email is under attack: an address that has failed for it is
	// refused, right password or not, for the rest of its window.
	r := h.do("POST", "/sessions", "198.51.100.3:1000", loginBody(victim, testPassword))
	wantStatus(t, r, http.StatusTooManyRequests)
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("got Retry-After %q, want the rest of the window", ra)
	}
	// A fresh address gets one guess, then it is refused too.
	wantStatus(t, h.do("POST", "/sessions", "198.51.100.240:1", loginBody(victim, guess)), http.StatusUnauthorized)
	wantRateLimited(t, h.do("POST", "/sessions", "198.51.100.240:1", loginBody(victim, guess)), 900)
	// Others' emails are not affected.
	wantStatus(t, h.do("POST", "/sessions", one, loginBody("bob@example.com", guess)), http.StatusUnauthorized)
	if attempts != 320 {
		t.Fatalf("attempts: got %d, want 320", attempts)
	}
}

// TestAPI_ThrottleHidesWhoExists: wrong passwords for a registered email
// and for an unknown one get the same answers, throttled at the same
// point with the same body and Retry-After, so the throttle tells nobody
// which emails exist.
func TestAPI_ThrottleHidesWhoExists(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	const peer = "203.0.113.9:1"
	for i := range 7 {
		known := h.do("POST", "/sessions", peer, loginBody("alice@example.com", "wrong guess, long enough"))
		unknown := h.do("POST", "/sessions", peer, loginBody("nobody@example.com", "wrong guess, long enough"))
		if known.status != unknown.status || known.body != unknown.body ||
			known.header.Get("Retry-After") != unknown.header.Get("Retry-After") {
			t.Fatalf("attempt %d: got %d %q (Retry-After %q) for a known email and %d %q (%q) for an unknown one, want the same",
				i+1, known.status, known.body, known.header.Get("Retry-After"),
				unknown.status, unknown.body, unknown.header.Get("Retry-After"))
		}
		want := http.StatusUnauthorized
		if i >= 5 {
			want = http.StatusTooManyRequests
		}
		wantStatus(t, known, want)
	}
}
