package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestServe_KeyLimits drives a key's limits through serve end to end:
// set on create, shown in every view, changed and removed by PATCH (with
// If-Match), topped up by the owner once per Idempotency-Key; another
// user's key is 404 and stays as it was, a key without credits 409, bad
// values 400 naming the field, and a revoked key refuses them all.
func TestServe_KeyLimits(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", apptest.Password)
	alice := apptest.Bearer(ts.Login(t, "alice@example.com", apptest.Password))
	ts.Register(t, "mallory@example.com", apptest.Password)
	mallory := apptest.Bearer(ts.Login(t, "mallory@example.com", apptest.Password))

	r := ts.Do(t, "POST", "/api-keys",
		`{"name":"metered","rate_limit":{"limit":5,"window":"1m"},"credits":{"remaining":100,"refill":{"amount":100,"interval":"1d"}}}`, alice...)
	apptest.WantStatus(t, r, http.StatusCreated)
	created := r.JSON(t)
	key := created["api_key"].(string)
	wantLimits := func(step string, v map[string]any, rate string, remaining float64, refill string) {
		t.Helper()
		gotRate, _ := json.Marshal(v["rate_limit"])
		if string(gotRate) != rate {
			t.Errorf("%s: rate_limit: got %s, want %s", step, gotRate, rate)
		}
		c, _ := v["credits"].(map[string]any)
		if remaining < 0 {
			if v["credits"] != nil {
				t.Errorf("%s: credits: got %v, want null", step, v["credits"])
			}
			return
		}
		gotRefill, _ := json.Marshal(c["refill"])
		if c == nil || c["remaining"] != remaining || string(gotRefill) != refill {
			t.Errorf("%s: credits: got %v, want %v remaining, refill %s", step, v["credits"], remaining, refill)
		}
	}
	wantLimits("create", created, `{"limit":5,"window":"1m"}`, 100, `{"amount":100,"interval":"1d"}`)
	if c := created["credits"].(map[string]any); c["next_refill_at"] == nil {
		t.Errorf("create: got no next_refill_at, want one a day on")
	}
	wantLimits("get", ts.Do(t, "GET", "/api-keys/"+key, "", alice...).JSON(t), `{"limit":5,"window":"1m"}`, 100, `{"amount":100,"interval":"1d"}`)
	list := ts.Do(t, "GET", "/api-keys", "", alice...).JSON(t)["keys"].([]any)
	wantLimits("list", list[0].(map[string]any), `{"limit":5,"window":"1m"}`, 100, `{"amount":100,"interval":"1d"}`)
	// A key with limits validates, and the request costs a credit.
	creds := []string{"X-Api-Key", apptest.Base64(key), "X-Api-Secret", apptest.Base64(created["secret"].(string))}
	apptest.WantStatus(t, ts.Do(t, "GET", "/validate", "", creds...), http.StatusOK)
	wantLimits("after a validation", ts.Do(t, "GET", "/api-keys/"+key, "", alice...).JSON(t), `{"limit":5,"window":"1m"}`, 99, `{"amount":100,"interval":"1d"}`)

	t.Run("TopUp", func(t *testing.T) {
		idem := append(append([]string{}, alice...), "Idempotency-Key", "top-up-1")
		first := ts.Do(t, "POST", "/api-keys/"+key+"/credits", `{"add":20}`, idem...)
		apptest.WantStatus(t, first, http.StatusOK)
		wantLimits("top-up", first.JSON(t), `{"limit":5,"window":"1m"}`, 119, `{"amount":100,"interval":"1d"}`)
		again := ts.Do(t, "POST", "/api-keys/"+key+"/credits", `{"add":20}`, idem...)
		apptest.WantStatus(t, again, http.StatusOK)
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry: got no Idempotent-Replayed, want the first answer replayed")
		}
		wantLimits("after the retry", ts.Do(t, "GET", "/api-keys/"+key, "", alice...).JSON(t),
			`{"limit":5,"window":"1m"}`, 119, `{"amount":100,"interval":"1d"}`)
	})

	t.Run("OtherUser", func(t *testing.T) {
		head := apptest.StreamHead(t, ts)
		for _, rq := range []struct{ method, path, body string }{
			{"POST", "/api-keys/" + key + "/credits", `{"add":1000}`},
			{"PATCH", "/api-keys/" + key, `{"rate_limit":null,"credits":{"remaining":1000000}}`},
			{"GET", "/api-keys/" + key, ""},
		} {
			r := ts.Do(t, rq.method, rq.path, rq.body, mallory...)
			apptest.WantStatus(t, r, http.StatusNotFound)
			if r.ErrorCode(t) != "not_found" || strings.Contains(string(r.Body), "metered") {
				t.Errorf("%s %s as mallory: got %s, want a plain not_found", rq.method, rq.path, r.Body)
			}
		}
		if got := apptest.StreamHead(t, ts); got != head {
			t.Errorf("mallory's attempts appended to the log: head %d -> %d", head, got)
		}
		wantLimits("after mallory", ts.Do(t, "GET", "/api-keys/"+key, "", alice...).JSON(t),
			`{"limit":5,"window":"1m"}`, 119, `{"amount":100,"interval":"1d"}`)
	})

	t.Run("BadValues", func(t *testing.T) {
		head := apptest.StreamHead(t, ts)
		for body, field := range map[string]string{
			`{"rate_limit":{"limit":0,"window":"1m"}}`:                            "rate_limit.limit",
			`{"rate_limit":{"limit":5,"window":"5 minutes"}}`:                     "rate_limit.window",
			`{"rate_limit":{"limit":5,"window":"1m","per":"ip"}}`:                 "rate_limit must be",
			`{"credits":{"remaining":-1}}`:                                        "credits must be",
			`{"credits":{"remaining":1,"refill":{"amount":1,"interval":"10s"}}}`:  "credits.refill.interval",
			`{"credits":{"remaining":10000000000000}}`:                            "credits.remaining",
			`{"credits":{"remaining":1,"refill":{"amount":0,"interval":"1h"}}}`:   "credits.refill.amount",
			`{"credits":{"remaining":1,"refill":{"interval":"1h","amount":"1"}}}`: "credits.refill must be",
		} {
			for _, path := range []string{"/api-keys", "/api-keys/" + key} {
				method := "POST"
				if path != "/api-keys" {
					method = "PATCH"
				}
				r := ts.Do(t, method, path, body, alice...)
				apptest.WantStatus(t, r, http.StatusBadRequest)
				if msg := r.JSON(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, field) {
					t.Errorf("%s %s: got %q, want the message to name %s", method, body, msg, field)
				}
			}
		}
		for _, body := range []string{`{"add":0}`, `{"add":-3}`, `{"add":1.5}`, `{}`, `{"add":1,"reason":"x"}`} {
			apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys/"+key+"/credits", body, alice...), http.StatusBadRequest)
		}
		if got := apptest.StreamHead(t, ts); got != head {
			t.Errorf("refused requests appended to the log: head %d -> %d", head, got)
		}
	})

	t.Run("PatchChangeAndRemove", func(t *testing.T) {
		r := ts.Do(t, "PATCH", "/api-keys/"+key, `{"rate_limit":{"limit":50,"window":"1h"},"credits":{"remaining":7}}`,
			append(append([]string{}, alice...), "If-Match", `"2"`)...)
		apptest.WantStatus(t, r, http.StatusOK)
		wantLimits("patch", r.JSON(t), `{"limit":50,"window":"1h"}`, 7, `null`)
		if r.Header.Get("ETag") != `"4"` {
			t.Errorf("patch: got ETag %q, want \"4\" (one event per changed limit)", r.Header.Get("ETag"))
		}
		apptest.WantStatus(t, ts.Do(t, "PATCH", "/api-keys/"+key, `{"credits":null}`,
			append(append([]string{}, alice...), "If-Match", `"2"`)...), http.StatusPreconditionFailed)
		r = ts.Do(t, "PATCH", "/api-keys/"+key, `{"rate_limit":null,"credits":null}`, alice...)
		apptest.WantStatus(t, r, http.StatusOK)
		wantLimits("removed", r.JSON(t), `null`, -1, "")
		r = ts.Do(t, "POST", "/api-keys/"+key+"/credits", `{"add":5}`, alice...)
		apptest.WantStatus(t, r, http.StatusConflict)
		if msg := r.JSON(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "no credits") {
			t.Errorf("top-up without credits: got %q, want it to say the key has no credits", msg)
		}
	})

	t.Run("Revoked", func(t *testing.T) {
		apptest.WantStatus(t, ts.Do(t, "PATCH", "/api-keys/"+key, `{"credits":{"remaining":3}}`, alice...), http.StatusOK)
		apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+key, "", alice...), http.StatusNoContent)
		apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys/"+key+"/credits", `{"add":5}`, alice...), http.StatusConflict)
		apptest.WantStatus(t, ts.Do(t, "PATCH", "/api-keys/"+key, `{"rate_limit":{"limit":1,"window":"1s"}}`, alice...), http.StatusConflict)
	})
}

// TestClient_KeyLimits drives the Go client's limits calls against the
// real serve wiring: CreateKey, EditKey (set and clear), AddCredits and,
// as an admin, AdminAddCredits.
func TestClient_KeyLimits(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	anon, err := client.New(ts.Base, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Register(ctx, "carol@example.com", apptest.Password); err != nil {
		t.Fatal(err)
	}
	s, err := anon.Login(ctx, "carol@example.com", apptest.Password)
	if err != nil {
		t.Fatal(err)
	}
	c := anon.WithSession(s.Token)

	k, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "metered", RateLimit: &client.RateLimit{Limit: 10, Window: "1s"},
		Credits: &client.Credits{Remaining: 50, Refill: &client.Refill{Amount: 50, Interval: "30d"}}})
	if err != nil || k.RateLimit == nil || *k.RateLimit != (client.RateLimit{Limit: 10, Window: "1s"}) || k.Credits == nil ||
		k.Credits.Remaining != 50 || k.Credits.Refill == nil || k.Credits.Refill.Interval != "30d" || k.Credits.NextRefillAt == nil {
		t.Fatalf("CreateKey: got %+v (%+v), %v", k, k.Credits, err)
	}
	got, err := c.AddCredits(ctx, k.APIKey, 5)
	if err != nil || got.Credits == nil || got.Credits.Remaining != 55 || got.Version != 2 {
		t.Fatalf("AddCredits: got %+v, %v", got, err)
	}
	if _, err := c.AddCredits(ctx, k.APIKey, 0); !hasStatus(err, http.StatusBadRequest) {
		t.Errorf("AddCredits of 0: got %v, want 400", err)
	}
	got, err = c.EditKey(ctx, k.APIKey, client.KeyEdit{ClearRateLimit: true, Credits: &client.Credits{Remaining: 9}}, got.Version)
	if err != nil || got.RateLimit != nil || got.Credits == nil || got.Credits.Remaining != 9 || got.Credits.Refill != nil {
		t.Fatalf("EditKey: got %+v, %v", got, err)
	}
	got, err = c.EditKey(ctx, k.APIKey, client.KeyEdit{RateLimit: &client.RateLimit{Limit: 1, Window: "1d"}, ClearCredits: true}, 0)
	if err != nil || got.RateLimit == nil || got.RateLimit.Window != "1d" || got.Credits != nil {
		t.Fatalf("EditKey again: got %+v, %v", got, err)
	}
	if _, err := c.AddCredits(ctx, k.APIKey, 1); !hasStatus(err, http.StatusConflict) {
		t.Errorf("AddCredits without credits: got %v, want 409", err)
	}

	ts.CreateUser(t, "ops@example.com", true)
	ts.CaughtUp(t)
	as, err := anon.Login(ctx, "ops@example.com", apptest.Password)
	if err != nil {
		t.Fatal(err)
	}
	admin := anon.WithSession(as.Token)
	if _, err := admin.AdminEditKey(ctx, k.APIKey, client.KeyEdit{Credits: &client.Credits{Remaining: 1}}, 0); err != nil {
		t.Fatal(err)
	}
	got, err = admin.AdminAddCredits(ctx, k.APIKey, 4, "support ticket 7")
	if err != nil || got.Credits == nil || got.Credits.Remaining != 5 {
		t.Fatalf("AdminAddCredits: got %+v, %v", got, err)
	}
	if _, err := c.AdminAddCredits(ctx, k.APIKey, 4, ""); !hasStatus(err, http.StatusForbidden) {
		t.Errorf("AdminAddCredits by a user: got %v, want 403", err)
	}
}

// TestServe_AdminTopUpIdempotency: a signed admin top-up retried with its
// Idempotency-Key (signed anew: a signature is never accepted twice) is
// answered from the first one's record and adds once; another admin using
// the same Idempotency-Key runs a command of its own. Records of signed
// requests are kept per admin, never in one scope shared by every admin.
func TestServe_AdminTopUpIdempotency(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", apptest.Password)
	k := ts.CreateKey(t, ts.Login(t, "alice@example.com", apptest.Password), `{"credits":{"remaining":10}}`)
	root := ts.RootAdmin(t)
	ops := apptest.NewAdminKey(t, t.TempDir(), "ops")
	text, _ := ops.Public.MarshalText()
	apptest.WantStatus(t, ts.AdminDo(t, root, "POST", "/admin/admin-keys", `{"name":"ops","key":"`+string(text)+`"}`), http.StatusCreated)
	ts.CaughtUp(t)

	path, body := "/admin/keys/"+k.Key+"/credits", `{"add":5,"reason":"ticket 9"}`
	topUp := func(admin apptest.AdminKey) apptest.Response {
		t.Helper()
		h := append(ts.AdminSigned(t, admin, "POST", path, body), "Idempotency-Key", "top-up-9")
		r := ts.Do(t, "POST", path, body, h...)
		apptest.WantStatus(t, r, http.StatusOK)
		return r
	}
	remaining := func(r apptest.Response) any { return r.JSON(t)["credits"].(map[string]any)["remaining"] }
	if r := topUp(root); remaining(r) != float64(15) {
		t.Fatalf("root's top-up: got %s, want 15 remaining", r.Body)
	}
	ts.WantAppended(t, 0, func() {
		if r := topUp(root); r.Header.Get("Idempotent-Replayed") != "true" || remaining(r) != float64(15) {
			t.Errorf("root's retry: got %v %s, want the first answer replayed", r.Header, r.Body)
		}
	})
	ts.WantAppended(t, 1, func() {
		if r := topUp(ops); r.Header.Get("Idempotent-Replayed") != "" || remaining(r) != float64(20) {
			t.Errorf("ops's top-up with the same Idempotency-Key: got %v %s, want a top-up of its own, 20 remaining", r.Header, r.Body)
		}
	})
}

// TestClient_ValidateLimits: the Go client's validation of a key with
// limits reads where the key stands, pays the cost asked, and reads a 429
// with its code and Retry-After.
func TestClient_ValidateLimits(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "dan@example.com", apptest.Password)
	k := ts.CreateKey(t, ts.Login(t, "dan@example.com", apptest.Password), `{"rate_limit":{"limit":100,"window":"1h"},"credits":{"remaining":10}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ts.Base, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.ValidateCost(ctx, k.Key, k.Secret, client.StyleAuthorization, 7)
	if err != nil || id.Credits == nil || id.Credits.Remaining != 3 || id.RateLimit == nil || id.RateLimit.Limit != 100 ||
		id.RateLimit.Remaining != 99 || id.RateLimit.Reset < 1 || id.RateLimit.Reset > 3600 {
		t.Fatalf("ValidateCost(7): got %+v (%+v, %+v), %v; want 3 credits left and 99 of 100 requests", id, id.Credits, id.RateLimit, err)
	}
	_, err = c.ValidateCost(ctx, k.Key, k.Secret, client.StyleAuthorization, 4)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || e.Code != client.CodeUsageExceeded {
		t.Fatalf("ValidateCost(4) with 3 credits left: got %v, want 429 usage_exceeded", err)
	}
	if id, err := c.Validate(ctx, k.Key, k.Secret, client.StyleAuthorization); err != nil || id.Credits == nil || id.Credits.Remaining != 2 {
		t.Fatalf("Validate (cost 1): got %+v, %v; want 2 credits left", id, err)
	}
}
