package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/handlers"
)

// creditsAnswer is a CreditsReader that answers what the test sets, and
// records the policies it was asked about.
type creditsAnswer struct {
	mu     sync.Mutex
	n      uint64
	err    error
	asked  []domain.CreditPolicy
	apiKey string
}

func (c *creditsAnswer) Remaining(_ context.Context, apiKey string, p domain.CreditPolicy) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked, c.apiKey = append(c.asked, p), apiKey
	return c.n, c.err
}

func (c *creditsAnswer) set(n uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n, c.err = n, err
}

type keyLimitsView struct {
	APIKey    string `json:"api_key"`
	RateLimit *struct {
		Limit  uint64 `json:"limit"`
		Window string `json:"window"`
	} `json:"rate_limit"`
	Credits *struct {
		Remaining uint64 `json:"remaining"`
		Refill    *struct {
			Amount   uint64
			Interval string
		} `json:"refill"`
		NextRefillAt *time.Time `json:"next_refill_at"`
	} `json:"credits"`
}

func decodeLimits(t *testing.T, r result) keyLimitsView {
	t.Helper()
	var v keyLimitsView
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("%v in %s", err, r.body)
	}
	return v
}

// TestAPI_KeyLimitsView: the key view shows the live remaining credits
// when the CreditsReader answers, and the credits the policy grants at
// the ledger's clock when it errs (never a 5xx); a refill at its interval
// shows in the granted credits and the next refill time.
func TestAPI_KeyLimitsView(t *testing.T) {
	t.Parallel()
	reader := &creditsAnswer{n: 42}
	h := newHarness(t, func(c *handlers.Config) { c.Credits = reader })
	auth := []string{"Authorization", "Bearer " + h.token, "Content-Type", "application/json"}
	r := h.do("POST", "/api-keys", "192.0.2.1:1",
		`{"rate_limit":{"limit":5,"window":"60s"},"credits":{"remaining":10,"refill":{"amount":50,"interval":"1h"}}}`, auth...)
	wantStatus(t, r, http.StatusCreated)
	v := decodeLimits(t, r)
	if v.RateLimit == nil || v.RateLimit.Limit != 5 || v.RateLimit.Window != "1m" || v.Credits == nil || v.Credits.Remaining != 42 {
		t.Fatalf("created: got %s, want the rate limit 5 per 1m and the live 42 credits", r.body)
	}
	if len(reader.asked) != 1 || reader.apiKey != v.APIKey || reader.asked[0].Epoch != 1 || reader.asked[0].Initial != 10 {
		t.Fatalf("reader asked %+v about %s, want epoch 1 with 10 initial credits of %s", reader.asked, reader.apiKey, v.APIKey)
	}

	reader.set(0, errors.New("engine unreachable"))
	start := h.clock.Now()
	r = h.do("GET", "/api-keys/"+v.APIKey, "192.0.2.1:1", "", auth...)
	wantStatus(t, r, http.StatusOK)
	got := decodeLimits(t, r)
	if got.Credits == nil || got.Credits.Remaining != 10 || got.Credits.Refill == nil || got.Credits.Refill.Amount != 50 ||
		got.Credits.NextRefillAt == nil || got.Credits.NextRefillAt.Sub(start) > time.Hour {
		t.Fatalf("engine down: got %s, want the 10 credits granted and a refill within the hour", r.body)
	}
	h.clock.Advance(time.Hour + time.Second)
	r = h.do("GET", "/api-keys/"+v.APIKey, "192.0.2.1:1", "", auth...)
	if got := decodeLimits(t, r); got.Credits.Remaining != 50 || !got.Credits.NextRefillAt.After(h.clock.Now()) {
		t.Fatalf("after the refill: got %s, want 50 granted and the next refill ahead", r.body)
	}
	r = h.do("POST", "/api-keys/"+v.APIKey+"/credits", "192.0.2.1:1", `{"add":7}`, auth...)
	wantStatus(t, r, http.StatusOK)
	if got := decodeLimits(t, r); got.Credits.Remaining != 50 {
		t.Errorf("topped up after a refill: got %s, want 50 (10+7 is below the refill's 50)", r.body)
	}
	r = h.do("PATCH", "/api-keys/"+v.APIKey, "192.0.2.1:1", `{"rate_limit":null,"credits":{"remaining":70}}`, auth...)
	wantStatus(t, r, http.StatusOK)
	if got := decodeLimits(t, r); got.RateLimit != nil || got.Credits.Remaining != 70 || got.Credits.Refill != nil || got.Credits.NextRefillAt != nil {
		t.Errorf("after the PATCH: got %s, want no rate limit and 70 credits without refill", r.body)
	}
	r = h.do("PATCH", "/api-keys/"+v.APIKey, "192.0.2.1:1", `{"credits":null}`, auth...)
	if !strings.Contains(r.body, `"rate_limit":null,"credits":null`) {
		t.Errorf("all removed: got %s, want rate_limit and credits null", r.body)
	}
}

// TestAPI_KeyLimitsBadValues: every bad limit is a 400 whose message
// names the field, and nothing is stored.
func TestAPI_KeyLimitsBadValues(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	auth := []string{"Authorization", "Bearer " + h.token, "Content-Type", "application/json"}
	r := h.do("POST", "/api-keys", "192.0.2.1:1", `{"credits":{"remaining":1}}`, auth...)
	wantStatus(t, r, http.StatusCreated)
	key := decodeLimits(t, r).APIKey
	for _, tc := range []struct{ method, path, body, field string }{
		{"POST", "/api-keys", `{"rate_limit":{"limit":0,"window":"1m"}}`, "rate_limit.limit"},
		{"POST", "/api-keys", `{"rate_limit":{"limit":-5,"window":"1m"}}`, "rate_limit must be"},
		{"POST", "/api-keys", `{"rate_limit":{"limit":5}}`, "rate_limit must be"},
		{"POST", "/api-keys", `{"rate_limit":{"limit":5,"window":"1w"}}`, "rate_limit.window"},
		{"POST", "/api-keys", `{"rate_limit":{"limit":5,"window":"2d"}}`, "rate_limit.window"},
		{"POST", "/api-keys", `{"rate_limit":{"limit":5,"window":"1m","burst":3}}`, "rate_limit must be"},
		{"POST", "/api-keys", `{"rate_limit":"5/m"}`, "rate_limit must be"},
		{"POST", "/api-keys", `{"credits":{"remaining":1000000000001}}`, "credits.remaining"},
		{"POST", "/api-keys", `{"credits":{"remaining":1.5}}`, "credits must be"},
		{"POST", "/api-keys", `{"credits":{}}`, "credits must be"},
		{"POST", "/api-keys", `{"credits":{"remaining":1,"refill":{"amount":0,"interval":"1h"}}}`, "credits.refill.amount"},
		{"POST", "/api-keys", `{"credits":{"remaining":1,"refill":{"amount":1,"interval":"30s"}}}`, "credits.refill.interval"},
		{"POST", "/api-keys", `{"credits":{"remaining":1,"refill":{"amount":1}}}`, "credits.refill must be"},
		{"PATCH", "/api-keys/" + key, `{"rate_limit":{"limit":1,"window":"0s"}}`, "rate_limit.window"},
		{"PATCH", "/api-keys/" + key, `{"credits":{"remaining":-1}}`, "credits must be"},
		{"POST", "/api-keys/" + key + "/credits", `{"add":0}`, "add"},
		{"POST", "/api-keys/" + key + "/credits", `{"add":1000000000001}`, "add"},
		{"POST", "/api-keys/" + key + "/credits", `{"add":-1}`, "field add"},
		{"POST", "/api-keys/" + key + "/credits", `{}`, "add"},
		{"POST", "/admin/keys/" + key + "/credits", `{"add":0,"reason":"x"}`, "add"},
	} {
		head := h.ledger.Head(t)
		r := h.do(tc.method, tc.path, "192.0.2.1:1", tc.body, auth...)
		wantStatus(t, r, http.StatusBadRequest)
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, tc.field) {
			t.Errorf("%s %s: got %s, want code invalid and a message naming %s", tc.method, tc.body, r.body, tc.field)
		}
		if got := h.ledger.Head(t); got != head {
			t.Errorf("%s %s: the log grew from %d to %d", tc.method, tc.body, head, got)
		}
	}
}

// stuckCredits is a CreditsReader that never answers before its context
// ends, and records how long it was given.
type stuckCredits struct {
	mu    sync.Mutex
	given []time.Duration
}

func (s *stuckCredits) Remaining(ctx context.Context, _ string, _ domain.CreditPolicy) (uint64, error) {
	d, ok := ctx.Deadline()
	s.mu.Lock()
	if ok {
		s.given = append(s.given, time.Until(d))
	} else {
		s.given = append(s.given, -1)
	}
	s.mu.Unlock()
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestAPI_KeyLimitsStuckReader: a CreditsReader that hangs does not hang
// the key views: each call gets at most CreditsTimeout, and the view
// shows the credits granted.
func TestAPI_KeyLimitsStuckReader(t *testing.T) {
	t.Parallel()
	reader := &stuckCredits{}
	h := newHarness(t, func(c *handlers.Config) { c.Credits = reader })
	auth := []string{"Authorization", "Bearer " + h.token, "Content-Type", "application/json"}
	r := h.do("POST", "/api-keys", "192.0.2.1:1", `{"credits":{"remaining":12}}`, auth...)
	wantStatus(t, r, http.StatusCreated)
	if v := decodeLimits(t, r); v.Credits == nil || v.Credits.Remaining != 12 {
		t.Fatalf("create with a stuck reader: got %s, want the 12 credits granted", r.body)
	}
	r = h.do("GET", "/api-keys", "192.0.2.1:1", "", auth...)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, `"remaining":12`) {
		t.Errorf("list with a stuck reader: got %s, want the 12 credits granted", r.body)
	}
	reader.mu.Lock()
	defer reader.mu.Unlock()
	if len(reader.given) == 0 {
		t.Fatal("the reader was never asked")
	}
	for _, d := range reader.given {
		if d < 0 || d > handlers.CreditsTimeout {
			t.Errorf("the reader was given %v, want a deadline within %v", d, handlers.CreditsTimeout)
		}
	}
}
