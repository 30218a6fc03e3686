package api_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app/apptest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestServe_Contract(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	var secrets []string

	t.Run("Health", func(t *testing.T) {
		apptest.WantStatus(t, ts.Do(t, "GET", "/healthz", ""), http.StatusOK)
		r := ts.Do(t, "GET", "/readyz", "")
		apptest.WantStatus(t, r, http.StatusOK)
		if r.JSON(t)["ready"] != true {
			t.Fatalf("got %s, want ready true", r.Body)
		}
	})

	aliceID := ts.Register(t, " Alice@Example.COM ", apptest.Password)
	bobID := ts.Register(t, "bob@example.com", apptest.Password)

	t.Run("RegisterUser", func(t *testing.T) {
		r := ts.Do(t, "POST", "/users", `{"email":"carol@example.com","password":"`+apptest.Password+`"}`)
		apptest.WantStatus(t, r, http.StatusCreated)
		golden(t, "register_user", r.Body)
		if !strings.HasPrefix(aliceID, "usr_") || aliceID == bobID {
			t.Fatalf("got ids %q and %q, want distinct usr_ ids", aliceID, bobID)
		}
		cases := []struct {
			name, body, ctype string
			want              int
		}{
			{"ErrEmailTaken", `{"email":"ALICE@example.com","password":"` + apptest.Password + `"}`, "", 409},
			{"ErrShortPassword", `{"email":"dave@example.com","password":"fourteen chars"}`, "", 400},
			{"ErrBadEmail", `{"email":"not-an-email","password":"` + apptest.Password + `"}`, "", 400},
			{"ErrDisplayName", `{"email":"Dave <dave@example.com>","password":"` + apptest.Password + `"}`, "", 400},
			{"ErrMissingFields", `{}`, "", 400},
			{"ErrMalformedJSON", `{"email":`, "", 400},
			{"ErrUnknownField", `{"email":"e@example.com","password":"` + apptest.Password + `","admin":true}`, "", 400},
			{"ErrTrailingData", `{"email":"e@example.com","password":"` + apptest.Password + `"} {}`, "", 400},
			{"ErrNotAnObject", `["x"]`, "", 400},
			{"ErrWrongType", `{"email":1,"password":"` + apptest.Password + `"}`, "", 400},
			{"ErrContentType", `{"email":"e@example.com","password":"` + apptest.Password + `"}`, "text/plain", 400},
			{"ErrTooLarge", `{"email":"e@example.com","password":"` + strings.Repeat("a", 70<<10) + `"}`, "", 413},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				headers := []string{}
				if tc.ctype != "" {
					headers = []string{"Content-Type", tc.ctype}
				}
				r := ts.Do(t, "POST", "/users", tc.body, headers...)
				apptest.WantStatus(t, r, tc.want)
				r.ErrorCode(t)
			})
		}
		t.Run("EmptyBody", func(t *testing.T) {
			apptest.WantStatus(t, ts.Do(t, "POST", "/users", ""), http.StatusBadRequest)
		})
		t.Run("LongPasswordNotTruncated", func(t *testing.T) {
			long := strings.Repeat("long pass-phrase no. ", 15) // 315 characters
			ts.Register(t, "long@example.com", long)
			ts.Login(t, "long@example.com", long)
			r := ts.Do(t, "POST", "/sessions", `{"email":"long@example.com","password":"`+long[:256]+`"}`)
			apptest.WantStatus(t, r, http.StatusUnauthorized)
		})
	})

	var aliceToken, bobToken string
	t.Run("CreateSession", func(t *testing.T) {
		r := ts.Do(t, "POST", "/sessions", `{"email":"alice@example.com","password":"`+apptest.Password+`"}`)
		apptest.WantStatus(t, r, http.StatusOK)
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("got Cache-Control %q, want no-store", got)
		}
		aliceToken = r.JSON(t)["token"].(string)
		bobToken = ts.Login(t, "bob@example.com", apptest.Password)
		apptest.CheckToken(t, ts, aliceToken, aliceID)

		wrong := ts.Do(t, "POST", "/sessions", `{"email":"alice@example.com","password":"wrong password, long enough"}`)
		unknown := ts.Do(t, "POST", "/sessions", `{"email":"nobody@example.com","password":"wrong password, long enough"}`)
		apptest.WantStatus(t, wrong, http.StatusUnauthorized)
		apptest.WantStatus(t, unknown, http.StatusUnauthorized)
		if !bytes.Equal(wrong.Body, unknown.Body) {
			t.Errorf("got %s and %s, want the same answer for a wrong password and an unknown email", wrong.Body, unknown.Body)
		}
	})

	t.Run("LoginThrottled", func(t *testing.T) {
		ts.Register(t, "victim@example.com", apptest.Password)
		var last apptest.Response
		for i := 0; i < 8; i++ {
			last = ts.Do(t, "POST", "/sessions", `{"email":"victim@example.com","password":"guess number `+string(rune('a'+i))+` long"}`)
			if last.Status == http.StatusTooManyRequests {
				break
			}
			apptest.WantStatus(t, last, http.StatusUnauthorized)
		}
		apptest.WantStatus(t, last, http.StatusTooManyRequests)
		if last.Header.Get("Retry-After") == "" {
			t.Fatal("got no Retry-After on 429")
		}
		// Even the right password waits until the throttle lifts.
		apptest.WantStatus(t, ts.Do(t, "POST", "/sessions", `{"email":"victim@example.com","password":"`+apptest.Password+`"}`), http.StatusTooManyRequests)
		// Other accounts are unaffected.
		ts.Login(t, "bob@example.com", apptest.Password)
	})

	t.Run("JWKS", func(t *testing.T) {
		r := ts.Do(t, "GET", "/.well-known/jwks.json", "")
		apptest.WantStatus(t, r, http.StatusOK)
		var set struct {
			Keys []struct{ Kty, Crv, X, Kid, Alg string }
		}
		if err := json.Unmarshal(r.Body, &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("got %s, want one key", r.Body)
		}
		k := set.Keys[0]
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Kid == "" {
			t.Fatalf("got %+v, want an OKP Ed25519 EdDSA key with a kid", k)
		}
		pub, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			t.Fatalf("got x %q, want a base64url Ed25519 public key", k.X)
		}
		parts := strings.Split(aliceToken, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatal("the JWKS key does not verify the session token")
		}
	})

	t.Run("SessionRequired", func(t *testing.T) {
		forged := apptest.ForgeToken(t, aliceToken)
		for name, h := range map[string]string{
			"Missing": "", "Basic": "Basic " + apptest.Base64("a:b"), "Garbage": "Bearer abc.def.ghi",
			"AlgNone": "Bearer " + forged["none"], "AlgHS256": "Bearer " + forged["hs256"],
			"Tampered": "Bearer " + forged["tampered"],
		} {
			t.Run(name, func(t *testing.T) {
				r := ts.Do(t, "GET", "/api-keys", "", "Authorization", h)
				apptest.WantStatus(t, r, http.StatusUnauthorized)
				if r.ErrorCode(t) != "unauthorized" {
					t.Fatalf("got %s, want code unauthorized", r.Body)
				}
			})
		}
		apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", "Authorization", "bearer "+aliceToken), http.StatusOK)
	})

	auth := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	var first, second apptest.CreatedKey
	t.Run("CreateKey", func(t *testing.T) {
		r := ts.Do(t, "POST", "/api-keys", `{"name":"ci","expires_at":"2099-01-02T03:04:05Z"}`, auth(aliceToken)...)
		apptest.WantStatus(t, r, http.StatusCreated)
		golden(t, "create_key", r.Body)
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("got Cache-Control %q, want no-store", got)
		}
		m := r.JSON(t)
		first = apptest.CreatedKey{Key: m["api_key"].(string), Secret: m["secret"].(string)}
		if m["status"] != "active" || m["name"] != "ci" || m["expires_at"] != "2099-01-02T03:04:05Z" {
			t.Fatalf("got %s, want an active key named ci expiring 2099-01-02T03:04:05Z", r.Body)
		}
		second = ts.CreateKey(t, aliceToken, "") // no body at all
		secrets = append(secrets, first.Secret, second.Secret)
		for name, body := range map[string]string{
			"ErrPastExpiry":   `{"expires_at":"2001-01-01T00:00:00Z"}`,
			"ErrBadExpiry":    `{"expires_at":"tomorrow"}`,
			"ErrLongName":     `{"name":"` + strings.Repeat("n", 101) + `"}`,
			"ErrControlChar":  `{"name":"a\u0007b"}`,
			"ErrUnknownField": `{"permissions":["x"]}`,
		} {
			t.Run(name, func(t *testing.T) {
				apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys", body, auth(aliceToken)...), http.StatusBadRequest)
			})
		}
	})

	t.Run("Validate", func(t *testing.T) {
		r := ts.Do(t, "GET", "/validate", "", "X-Api-Key", apptest.Base64(first.Key), "X-Api-Secret", apptest.Base64(first.Secret))
		apptest.WantStatus(t, r, http.StatusOK)
		if r.Header.Get("X-Keyledger-User") != aliceID || r.Header.Get("X-Keyledger-Key") != first.Key {
			t.Fatalf("got identity headers %q %q, want %q %q", r.Header.Get("X-Keyledger-User"),
				r.Header.Get("X-Keyledger-Key"), aliceID, first.Key)
		}
		if m := r.JSON(t); m["api_key"] != first.Key || m["user_id"] != aliceID {
			t.Fatalf("got %s, want the key and its owner", r.Body)
		}
		for _, scheme := range []string{"ApiKey", "apikey", "APIKEY"} {
			r := ts.Do(t, "POST", "/validate", "", "Authorization", scheme+" "+apptest.Base64(first.Key+":"+first.Secret))
			apptest.WantStatus(t, r, http.StatusOK)
		}
		// Every failure is the same 401.
		flipped := first.Secret[:10] + string(first.Secret[10]^1) + first.Secret[11:]
		unknownKey := "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
		var bodies []string
		for name, h := range map[string][]string{
			"WrongSecret":   {"X-Api-Key", apptest.Base64(first.Key), "X-Api-Secret", apptest.Base64(second.Secret)},
			"UnknownKey":    {"X-Api-Key", apptest.Base64(unknownKey), "X-Api-Secret", apptest.Base64(first.Secret)},
			"BadChecksum":   {"X-Api-Key", apptest.Base64(first.Key), "X-Api-Secret", apptest.Base64(flipped)},
			"NotBase64":     {"X-Api-Key", first.Key, "X-Api-Secret", first.Secret},
			"OnlyKey":       {"X-Api-Key", apptest.Base64(first.Key)},
			"Nothing":       {},
			"NoColon":       {"Authorization", "ApiKey " + apptest.Base64(first.Key+first.Secret)},
			"BearerInstead": {"Authorization", "Bearer " + aliceToken},
			"RawPair":       {"Authorization", "ApiKey " + first.Key + ":" + first.Secret},
		} {
			r := ts.Do(t, "GET", "/validate", "", h...)
			if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != "ApiKey" {
				t.Errorf("%s: got %d with WWW-Authenticate %q, want 401 with ApiKey", name, r.Status, r.Header.Get("WWW-Authenticate"))
			}
			bodies = append(bodies, string(r.Body))
		}
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Fatalf("got different 401 bodies %q and %q, want one", bodies[0], b)
			}
		}
	})

	t.Run("ListKeys", func(t *testing.T) {
		r := ts.Do(t, "GET", "/api-keys", "", auth(aliceToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
		var list struct {
			Keys []map[string]any `json:"keys"`
			Next *string          `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Keys) != 2 || list.Keys[0]["api_key"] != second.Key || list.Keys[1]["api_key"] != first.Key || list.Next != nil {
			t.Fatalf("got %s, want [second, first] and no next cursor", r.Body)
		}
		if bytes.Contains(r.Body, []byte("secret\"")) || bytes.Contains(r.Body, []byte("hash")) {
			t.Fatalf("got %s, want no secret or hash in a listing", r.Body)
		}
		page := ts.Do(t, "GET", "/api-keys?limit=1", "", auth(aliceToken)...)
		apptest.WantStatus(t, page, http.StatusOK)
		next, _ := page.JSON(t)["next_cursor"].(string)
		if next == "" {
			t.Fatalf("got %s, want a next_cursor", page.Body)
		}
		page2 := ts.Do(t, "GET", "/api-keys?limit=1&cursor="+next, "", auth(aliceToken)...)
		apptest.WantStatus(t, page2, http.StatusOK)
		if m := page2.JSON(t); m["next_cursor"] != nil || !strings.Contains(string(page2.Body), first.Key) {
			t.Fatalf("got %s, want the first key and no next cursor", page2.Body)
		}
		bob := ts.Do(t, "GET", "/api-keys", "", auth(bobToken)...)
		apptest.WantStatus(t, bob, http.StatusOK)
		if strings.Contains(string(bob.Body), first.Key) {
			t.Fatalf("bob sees alice's key: %s", bob.Body)
		}
		for _, q := range []string{"limit=0", "limit=201", "limit=abc", "limit=-1", "cursor=nonsense"} {
			apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys?"+q, "", auth(aliceToken)...), http.StatusBadRequest)
		}
		apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys?limit=200", "", auth(aliceToken)...), http.StatusOK)
	})

	t.Run("GetKey", func(t *testing.T) {
		r := ts.Do(t, "GET", "/api-keys/"+first.Key, "", auth(aliceToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
		golden(t, "get_key", r.Body)
		missing := ts.Do(t, "GET", "/api-keys/ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "", auth(aliceToken)...)
		foreign := ts.Do(t, "GET", "/api-keys/"+first.Key, "", auth(bobToken)...)
		malformed := ts.Do(t, "GET", "/api-keys/..%2f..%2fetc", "", auth(aliceToken)...)
		for _, r := range []apptest.Response{missing, foreign, malformed} {
			apptest.WantStatus(t, r, http.StatusNotFound)
		}
		if !bytes.Equal(missing.Body, foreign.Body) {
			t.Fatalf("got %s and %s, want someone else's key to look exactly like a missing one", foreign.Body, missing.Body)
		}
	})

	t.Run("RegenerateSecret", func(t *testing.T) {
		apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys/"+first.Key+"/regenerate", "", auth(bobToken)...), http.StatusNotFound)
		if ts.Validate(t, first) != http.StatusOK {
			t.Fatal("a foreign regenerate attempt changed the key")
		}
		r := ts.Do(t, "POST", "/api-keys/"+first.Key+"/regenerate", "", auth(aliceToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
		m := r.JSON(t)
		renewed := apptest.CreatedKey{Key: first.Key, Secret: m["secret"].(string)}
		secrets = append(secrets, renewed.Secret)
		if m["api_key"] != first.Key || renewed.Secret == first.Secret || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %s (Cache-Control %q), want a new secret for the same key", r.Body, r.Header.Get("Cache-Control"))
		}
		if got := ts.Validate(t, first); got != http.StatusUnauthorized {
			t.Fatalf("old secret: got %d, want 401 at once", got)
		}
		if got := ts.Validate(t, renewed); got != http.StatusOK {
			t.Fatalf("new secret: got %d, want 200", got)
		}
		k := ts.Do(t, "GET", "/api-keys/"+first.Key, "", auth(aliceToken)...).JSON(t)
		if k["secret_regenerated_at"] == nil {
			t.Fatal("got no secret_regenerated_at after a regeneration")
		}
		first = renewed
	})

	t.Run("RevokeKey", func(t *testing.T) {
		apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+second.Key, "", auth(bobToken)...), http.StatusNotFound)
		if ts.Validate(t, second) != http.StatusOK {
			t.Fatal("a foreign revoke attempt changed the key")
		}
		r := ts.Do(t, "DELETE", "/api-keys/"+second.Key, "", auth(aliceToken)...)
		apptest.WantStatus(t, r, http.StatusNoContent)
		if len(r.Body) != 0 {
			t.Fatalf("got body %q, want none on 204", r.Body)
		}
		if got := ts.Validate(t, second); got != http.StatusUnauthorized {
			t.Fatalf("revoked key: got %d, want 401 at once", got)
		}
		head := apptest.StreamHead(t, ts)
		apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+second.Key, "", auth(aliceToken)...), http.StatusNoContent)
		if got := apptest.StreamHead(t, ts); got != head {
			t.Fatalf("revoking a revoked key appended events: head %d -> %d", head, got)
		}
		apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys/"+second.Key+"/regenerate", "", auth(aliceToken)...), http.StatusConflict)
		k := ts.Do(t, "GET", "/api-keys/"+second.Key, "", auth(aliceToken)...).JSON(t)
		if k["status"] != "revoked" || k["revoked_at"] == nil {
			t.Fatalf("got %v, want status revoked with revoked_at", k)
		}
	})

	t.Run("Routing", func(t *testing.T) {
		r := ts.Do(t, "GET", "/no/such/route", "")
		apptest.WantStatus(t, r, http.StatusNotFound)
		r.ErrorCode(t)
		r = ts.Do(t, "PUT", "/api-keys", "", auth(aliceToken)...)
		apptest.WantStatus(t, r, http.StatusMethodNotAllowed)
		if r.ErrorCode(t) != "method_not_allowed" || r.Header.Get("Allow") == "" {
			t.Fatalf("got %s with Allow %q, want a JSON 405 with Allow", r.Body, r.Header.Get("Allow"))
		}
	})

	t.Run("NoSecretInLogsOrLog", func(t *testing.T) {
		logs := ts.Logs.String()
		if !strings.Contains(logs, `"msg":"request"`) {
			t.Fatal("found no request log lines: the check below would prove nothing")
		}
		stream := apptest.AllStreamData(t, ts)
		if !bytes.Contains(stream, []byte(first.Key)) {
			t.Fatal("found no key in the stream: the check below would prove nothing")
		}
		for _, s := range append(secrets, apptest.Password) {
			for _, form := range []string{s, apptest.Base64(s)} {
				if strings.Contains(logs, form) {
					t.Errorf("a secret or password appears in the logs")
				}
				if bytes.Contains(stream, []byte(form)) {
					t.Errorf("a secret or password appears in the event stream")
				}
			}
		}
	})
}

var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`ak_[0-9A-Z]{26}`), "ak_<ULID>"},
	{regexp.MustCompile(`usr_[0-9A-Z]{26}`), "usr_<ULID>"},
	{regexp.MustCompile(`sk_[0-9A-Za-z]{49}`), "sk_<SECRET>"},
	{regexp.MustCompile(`"[a-z]+@example\.com"`), `"<EMAIL>"`},
	{regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"`), `"<TIME>"`},
}

// golden compares a response body, with ids, secrets and times masked,
// against testdata/<name>.golden; -update rewrites the file.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: not JSON: %s", name, body)
	}
	pretty, _ := json.MarshalIndent(v, "", "  ")
	got := string(pretty) + "\n"
	for _, m := range volatile {
		got = m.re.ReplaceAllString(got, m.with)
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("%s: got\n%s\nwant\n%s", name, got, want)
	}
}
