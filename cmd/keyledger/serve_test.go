package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// syncBuffer is a log sink that tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a running `keyledger serve` on loopback with its data in
// dir, logging at debug level into logs.
type testServer struct {
	*Server
	base string
	logs *syncBuffer
}

func startServer(t *testing.T, dir string) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	s := &Server{
		Config: ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
			// No checkpoints: tests compare the stream's head before and
			// after commands that must append nothing.
			CheckpointInterval: -1},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ts := &testServer{Server: s, base: "http://" + s.HTTPAddr(), logs: logs}
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	return ts
}

func (ts *testServer) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %q", r.status, r.body)
	}
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	if msg, _ := e["message"].(string); code == "" || msg == "" {
		t.Fatalf("got body %s, want a JSON error with code and message", r.body)
	}
	return code
}

// do sends a request; headers come in pairs.
func (ts *testServer) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s %s: got %d %s, want no 5xx", method, path, resp.StatusCode, b)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("got status %d (%s), want %d", r.status, r.body, want)
	}
}

func (ts *testServer) register(t *testing.T, email, password string) string {
	t.Helper()
	r := ts.do(t, "POST", "/users", `{"email":"`+email+`","password":"`+password+`"}`)
	wantStatus(t, r, http.StatusCreated)
	return r.json(t)["id"].(string)
}

func (ts *testServer) login(t *testing.T, email, password string) string {
	t.Helper()
	r := ts.do(t, "POST", "/sessions", `{"email":"`+email+`","password":"`+password+`"}`)
	wantStatus(t, r, http.StatusOK)
	return r.json(t)["token"].(string)
}

type createdKey struct{ key, secret string }

func (ts *testServer) createKey(t *testing.T, token, body string) createdKey {
	t.Helper()
	r := ts.do(t, "POST", "/api-keys", body, "Authorization", "Bearer "+token)
	wantStatus(t, r, http.StatusCreated)
	m := r.json(t)
	return createdKey{key: m["api_key"].(string), secret: m["secret"].(string)}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// validate returns the status of /validate with x-api-key/x-api-secret.
func (ts *testServer) validate(t *testing.T, k createdKey) int {
	t.Helper()
	return ts.do(t, "GET", "/validate", "", "X-Api-Key", b64(k.key), "X-Api-Secret", b64(k.secret)).status
}

const password = "correct horse battery staple"

func TestServe_Contract(t *testing.T) {
	ts := startServer(t, t.TempDir())
	defer ts.close(t)
	var secrets []string

	t.Run("Health", func(t *testing.T) {
		wantStatus(t, ts.do(t, "GET", "/healthz", ""), http.StatusOK)
		r := ts.do(t, "GET", "/readyz", "")
		wantStatus(t, r, http.StatusOK)
		if r.json(t)["ready"] != true {
			t.Fatalf("got %s, want ready true", r.body)
		}
	})

	aliceID := ts.register(t, " Alice@Example.COM ", password)
	bobID := ts.register(t, "bob@example.com", password)

	t.Run("RegisterUser", func(t *testing.T) {
		r := ts.do(t, "POST", "/users", `{"email":"carol@example.com","password":"`+password+`"}`)
		wantStatus(t, r, http.StatusCreated)
		golden(t, "register_user", r.body)
		if !strings.HasPrefix(aliceID, "usr_") || aliceID == bobID {
			t.Fatalf("got ids %q and %q, want distinct usr_ ids", aliceID, bobID)
		}
		cases := []struct {
			name, body, ctype string
			want              int
		}{
			{"ErrEmailTaken", `{"email":"ALICE@example.com","password":"` + password + `"}`, "", 409},
			{"ErrShortPassword", `{"email":"dave@example.com","password":"fourteen chars"}`, "", 400},
			{"ErrBadEmail", `{"email":"not-an-email","password":"` + password + `"}`, "", 400},
			{"ErrDisplayName", `{"email":"Dave <dave@example.com>","password":"` + password + `"}`, "", 400},
			{"ErrMissingFields", `{}`, "", 400},
			{"ErrMalformedJSON", `{"email":`, "", 400},
			{"ErrUnknownField", `{"email":"e@example.com","password":"` + password + `","admin":true}`, "", 400},
			{"ErrTrailingData", `{"email":"e@example.com","password":"` + password + `"} {}`, "", 400},
			{"ErrNotAnObject", `["x"]`, "", 400},
			{"ErrWrongType", `{"email":1,"password":"` + password + `"}`, "", 400},
			{"ErrContentType", `{"email":"e@example.com","password":"` + password + `"}`, "text/plain", 400},
			{"ErrTooLarge", `{"email":"e@example.com","password":"` + strings.Repeat("a", 70<<10) + `"}`, "", 413},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				headers := []string{}
				if tc.ctype != "" {
					headers = []string{"Content-Type", tc.ctype}
				}
				r := ts.do(t, "POST", "/users", tc.body, headers...)
				wantStatus(t, r, tc.want)
				r.errorCode(t)
			})
		}
		t.Run("EmptyBody", func(t *testing.T) {
			wantStatus(t, ts.do(t, "POST", "/users", ""), http.StatusBadRequest)
		})
		t.Run("LongPasswordNotTruncated", func(t *testing.T) {
			long := strings.Repeat("p", 300)
			ts.register(t, "long@example.com", long)
			ts.login(t, "long@example.com", long)
			r := ts.do(t, "POST", "/sessions", `{"email":"long@example.com","password":"`+long[:256]+`"}`)
			wantStatus(t, r, http.StatusUnauthorized)
		})
	})

	var aliceToken, bobToken string
	t.Run("CreateSession", func(t *testing.T) {
		r := ts.do(t, "POST", "/sessions", `{"email":"alice@example.com","password":"`+password+`"}`)
		wantStatus(t, r, http.StatusOK)
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("got Cache-Control %q, want no-store", got)
		}
		aliceToken = r.json(t)["token"].(string)
		bobToken = ts.login(t, "bob@example.com", password)
		checkToken(t, ts, aliceToken, aliceID)

		wrong := ts.do(t, "POST", "/sessions", `{"email":"alice@example.com","password":"wrong password, long enough"}`)
		unknown := ts.do(t, "POST", "/sessions", `{"email":"nobody@example.com","password":"wrong password, long enough"}`)
		wantStatus(t, wrong, http.StatusUnauthorized)
		wantStatus(t, unknown, http.StatusUnauthorized)
		if !bytes.Equal(wrong.body, unknown.body) {
			t.Errorf("got %s and %s, want the same answer for a wrong password and an unknown email", wrong.body, unknown.body)
		}
	})

	t.Run("LoginThrottled", func(t *testing.T) {
		ts.register(t, "victim@example.com", password)
		var last response
		for i := 0; i < 8; i++ {
			last = ts.do(t, "POST", "/sessions", `{"email":"victim@example.com","password":"guess number `+string(rune('a'+i))+` long"}`)
			if last.status == http.StatusTooManyRequests {
				break
			}
			wantStatus(t, last, http.StatusUnauthorized)
		}
		wantStatus(t, last, http.StatusTooManyRequests)
		if last.header.Get("Retry-After") == "" {
			t.Fatal("got no Retry-After on 429")
		}
		// Even the right password waits until the throttle lifts.
		wantStatus(t, ts.do(t, "POST", "/sessions", `{"email":"victim@example.com","password":"`+password+`"}`), http.StatusTooManyRequests)
		// Other accounts are unaffected.
		ts.login(t, "bob@example.com", password)
	})

	t.Run("JWKS", func(t *testing.T) {
		r := ts.do(t, "GET", "/.well-known/jwks.json", "")
		wantStatus(t, r, http.StatusOK)
		var set struct {
			Keys []struct{ Kty, Crv, X, Kid, Alg string }
		}
		if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("got %s, want one key", r.body)
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
		forged := forgeToken(t, aliceToken)
		for name, h := range map[string]string{
			"Missing": "", "Basic": "Basic " + b64("a:b"), "Garbage": "Bearer abc.def.ghi",
			"AlgNone": "Bearer " + forged["none"], "AlgHS256": "Bearer " + forged["hs256"],
			"Tampered": "Bearer " + forged["tampered"],
		} {
			t.Run(name, func(t *testing.T) {
				r := ts.do(t, "GET", "/api-keys", "", "Authorization", h)
				wantStatus(t, r, http.StatusUnauthorized)
				if r.errorCode(t) != "unauthorized" {
					t.Fatalf("got %s, want code unauthorized", r.body)
				}
			})
		}
		wantStatus(t, ts.do(t, "GET", "/api-keys", "", "Authorization", "bearer "+aliceToken), http.StatusOK)
	})

	auth := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	var first, second createdKey
	t.Run("CreateKey", func(t *testing.T) {
		r := ts.do(t, "POST", "/api-keys", `{"name":"ci","expires_at":"2099-01-02T03:04:05Z"}`, auth(aliceToken)...)
		wantStatus(t, r, http.StatusCreated)
		golden(t, "create_key", r.body)
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("got Cache-Control %q, want no-store", got)
		}
		m := r.json(t)
		first = createdKey{key: m["api_key"].(string), secret: m["secret"].(string)}
		if m["status"] != "active" || m["name"] != "ci" || m["expires_at"] != "2099-01-02T03:04:05Z" {
			t.Fatalf("got %s, want an active key named ci expiring 2099-01-02T03:04:05Z", r.body)
		}
		second = ts.createKey(t, aliceToken, "") // no body at all
		secrets = append(secrets, first.secret, second.secret)
		for name, body := range map[string]string{
			"ErrPastExpiry":   `{"expires_at":"2001-01-01T00:00:00Z"}`,
			"ErrBadExpiry":    `{"expires_at":"tomorrow"}`,
			"ErrLongName":     `{"name":"` + strings.Repeat("n", 101) + `"}`,
			"ErrControlChar":  `{"name":"a\u0007b"}`,
			"ErrUnknownField": `{"scopes":["x"]}`,
		} {
			t.Run(name, func(t *testing.T) {
				wantStatus(t, ts.do(t, "POST", "/api-keys", body, auth(aliceToken)...), http.StatusBadRequest)
			})
		}
	})

	t.Run("Validate", func(t *testing.T) {
		r := ts.do(t, "GET", "/validate", "", "X-Api-Key", b64(first.key), "X-Api-Secret", b64(first.secret))
		wantStatus(t, r, http.StatusOK)
		if r.header.Get("X-Keyledger-User") != aliceID || r.header.Get("X-Keyledger-Key") != first.key {
			t.Fatalf("got identity headers %q %q, want %q %q", r.header.Get("X-Keyledger-User"),
				r.header.Get("X-Keyledger-Key"), aliceID, first.key)
		}
		if m := r.json(t); m["api_key"] != first.key || m["user_id"] != aliceID {
			t.Fatalf("got %s, want the key and its owner", r.body)
		}
		for _, scheme := range []string{"ApiKey", "apikey", "APIKEY"} {
			r := ts.do(t, "POST", "/validate", "", "Authorization", scheme+" "+b64(first.key+":"+first.secret))
			wantStatus(t, r, http.StatusOK)
		}
		// Every failure is the same 401.
		flipped := first.secret[:10] + string(first.secret[10]^1) + first.secret[11:]
		unknownKey := "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
		var bodies []string
		for name, h := range map[string][]string{
			"WrongSecret":   {"X-Api-Key", b64(first.key), "X-Api-Secret", b64(second.secret)},
			"UnknownKey":    {"X-Api-Key", b64(unknownKey), "X-Api-Secret", b64(first.secret)},
			"BadChecksum":   {"X-Api-Key", b64(first.key), "X-Api-Secret", b64(flipped)},
			"NotBase64":     {"X-Api-Key", first.key, "X-Api-Secret", first.secret},
			"OnlyKey":       {"X-Api-Key", b64(first.key)},
			"Nothing":       {},
			"NoColon":       {"Authorization", "ApiKey " + b64(first.key+first.secret)},
			"BearerInstead": {"Authorization", "Bearer " + aliceToken},
			"RawPair":       {"Authorization", "ApiKey " + first.key + ":" + first.secret},
		} {
			r := ts.do(t, "GET", "/validate", "", h...)
			if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != "ApiKey" {
				t.Errorf("%s: got %d with WWW-Authenticate %q, want 401 with ApiKey", name, r.status, r.header.Get("WWW-Authenticate"))
			}
			bodies = append(bodies, string(r.body))
		}
		for _, b := range bodies[1:] {
			if b != bodies[0] {
				t.Fatalf("got different 401 bodies %q and %q, want one", bodies[0], b)
			}
		}
	})

	t.Run("ListKeys", func(t *testing.T) {
		r := ts.do(t, "GET", "/api-keys", "", auth(aliceToken)...)
		wantStatus(t, r, http.StatusOK)
		var list struct {
			Keys []map[string]any `json:"keys"`
			Next *string          `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Keys) != 2 || list.Keys[0]["api_key"] != second.key || list.Keys[1]["api_key"] != first.key || list.Next != nil {
			t.Fatalf("got %s, want [second, first] and no next cursor", r.body)
		}
		if bytes.Contains(r.body, []byte("secret\"")) || bytes.Contains(r.body, []byte("hash")) {
			t.Fatalf("got %s, want no secret or hash in a listing", r.body)
		}
		page := ts.do(t, "GET", "/api-keys?limit=1", "", auth(aliceToken)...)
		wantStatus(t, page, http.StatusOK)
		next, _ := page.json(t)["next_cursor"].(string)
		if next == "" {
			t.Fatalf("got %s, want a next_cursor", page.body)
		}
		page2 := ts.do(t, "GET", "/api-keys?limit=1&cursor="+next, "", auth(aliceToken)...)
		wantStatus(t, page2, http.StatusOK)
		if m := page2.json(t); m["next_cursor"] != nil || !strings.Contains(string(page2.body), first.key) {
			t.Fatalf("got %s, want the first key and no next cursor", page2.body)
		}
		bob := ts.do(t, "GET", "/api-keys", "", auth(bobToken)...)
		wantStatus(t, bob, http.StatusOK)
		if strings.Contains(string(bob.body), first.key) {
			t.Fatalf("bob sees alice's key: %s", bob.body)
		}
		for _, q := range []string{"limit=0", "limit=201", "limit=abc", "limit=-1", "cursor=nonsense"} {
			wantStatus(t, ts.do(t, "GET", "/api-keys?"+q, "", auth(aliceToken)...), http.StatusBadRequest)
		}
		wantStatus(t, ts.do(t, "GET", "/api-keys?limit=200", "", auth(aliceToken)...), http.StatusOK)
	})

	t.Run("GetKey", func(t *testing.T) {
		r := ts.do(t, "GET", "/api-keys/"+first.key, "", auth(aliceToken)...)
		wantStatus(t, r, http.StatusOK)
		golden(t, "get_key", r.body)
		missing := ts.do(t, "GET", "/api-keys/ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "", auth(aliceToken)...)
		foreign := ts.do(t, "GET", "/api-keys/"+first.key, "", auth(bobToken)...)
		malformed := ts.do(t, "GET", "/api-keys/..%2f..%2fetc", "", auth(aliceToken)...)
		for _, r := range []response{missing, foreign, malformed} {
			wantStatus(t, r, http.StatusNotFound)
		}
		if !bytes.Equal(missing.body, foreign.body) {
			t.Fatalf("got %s and %s, want someone else's key to look exactly like a missing one", foreign.body, missing.body)
		}
	})

	t.Run("RegenerateSecret", func(t *testing.T) {
		wantStatus(t, ts.do(t, "POST", "/api-keys/"+first.key+"/regenerate", "", auth(bobToken)...), http.StatusNotFound)
		if ts.validate(t, first) != http.StatusOK {
			t.Fatal("a foreign regenerate attempt changed the key")
		}
		r := ts.do(t, "POST", "/api-keys/"+first.key+"/regenerate", "", auth(aliceToken)...)
		wantStatus(t, r, http.StatusOK)
		m := r.json(t)
		renewed := createdKey{key: first.key, secret: m["secret"].(string)}
		secrets = append(secrets, renewed.secret)
		if m["api_key"] != first.key || renewed.secret == first.secret || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %s (Cache-Control %q), want a new secret for the same key", r.body, r.header.Get("Cache-Control"))
		}
		if got := ts.validate(t, first); got != http.StatusUnauthorized {
			t.Fatalf("old secret: got %d, want 401 at once", got)
		}
		if got := ts.validate(t, renewed); got != http.StatusOK {
			t.Fatalf("new secret: got %d, want 200", got)
		}
		k := ts.do(t, "GET", "/api-keys/"+first.key, "", auth(aliceToken)...).json(t)
		if k["secret_regenerated_at"] == nil {
			t.Fatal("got no secret_regenerated_at after a regeneration")
		}
		first = renewed
	})

	t.Run("RevokeKey", func(t *testing.T) {
		wantStatus(t, ts.do(t, "DELETE", "/api-keys/"+second.key, "", auth(bobToken)...), http.StatusNotFound)
		if ts.validate(t, second) != http.StatusOK {
			t.Fatal("a foreign revoke attempt changed the key")
		}
		r := ts.do(t, "DELETE", "/api-keys/"+second.key, "", auth(aliceToken)...)
		wantStatus(t, r, http.StatusNoContent)
		if len(r.body) != 0 {
			t.Fatalf("got body %q, want none on 204", r.body)
		}
		if got := ts.validate(t, second); got != http.StatusUnauthorized {
			t.Fatalf("revoked key: got %d, want 401 at once", got)
		}
		head := streamHead(t, ts)
		wantStatus(t, ts.do(t, "DELETE", "/api-keys/"+second.key, "", auth(aliceToken)...), http.StatusNoContent)
		if got := streamHead(t, ts); got != head {
			t.Fatalf("revoking a revoked key appended events: head %d -> %d", head, got)
		}
		wantStatus(t, ts.do(t, "POST", "/api-keys/"+second.key+"/regenerate", "", auth(aliceToken)...), http.StatusConflict)
		k := ts.do(t, "GET", "/api-keys/"+second.key, "", auth(aliceToken)...).json(t)
		if k["status"] != "revoked" || k["revoked_at"] == nil {
			t.Fatalf("got %v, want status revoked with revoked_at", k)
		}
	})

	t.Run("Routing", func(t *testing.T) {
		r := ts.do(t, "GET", "/no/such/route", "")
		wantStatus(t, r, http.StatusNotFound)
		r.errorCode(t)
		r = ts.do(t, "PUT", "/api-keys", "", auth(aliceToken)...)
		wantStatus(t, r, http.StatusMethodNotAllowed)
		if r.errorCode(t) != "method_not_allowed" || r.header.Get("Allow") == "" {
			t.Fatalf("got %s with Allow %q, want a JSON 405 with Allow", r.body, r.header.Get("Allow"))
		}
	})

	t.Run("NoSecretInLogsOrLog", func(t *testing.T) {
		logs := ts.logs.String()
		if !strings.Contains(logs, `"msg":"request"`) {
			t.Fatal("found no request log lines: the check below would prove nothing")
		}
		stream := allStreamData(t, ts)
		if !bytes.Contains(stream, []byte(first.key)) {
			t.Fatal("found no key in the stream: the check below would prove nothing")
		}
		for _, s := range append(secrets, password) {
			for _, form := range []string{s, b64(s)} {
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

// checkToken decodes a session token's header and claims.
func checkToken(t *testing.T, ts *testServer, token, userID string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("got %d token parts, want 3", len(parts))
	}
	var header, claims map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		t.Fatalf("token header or claims are not JSON")
	}
	if header["alg"] != "EdDSA" || header["kid"] == nil || header["kid"] == "" {
		t.Fatalf("got header %v, want alg EdDSA and a kid", header)
	}
	for _, c := range []string{"iss", "aud", "sub", "iat", "exp"} {
		if claims[c] == nil {
			t.Fatalf("got claims %v, want %s", claims, c)
		}
	}
	if claims["sub"] != userID {
		t.Fatalf("got sub %v, want %s", claims["sub"], userID)
	}
}

// forgeToken returns variants of a valid token that must all be refused.
func forgeToken(t *testing.T, token string) map[string]string {
	t.Helper()
	parts := strings.Split(token, ".")
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := strings.Replace(string(claims), `"sub":"usr_`, `"sub":"usr_X`, 1)
	return map[string]string{
		"none":     enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"hs256":    enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
		"tampered": parts[0] + "." + enc([]byte(tampered)) + "." + parts[2],
	}
}

func streamHead(t *testing.T, ts *testServer) uint64 {
	t.Helper()
	js := jsFor(t, ts)
	s, err := js.Stream(context.Background(), "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func jsFor(t *testing.T, ts *testServer) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(ts.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// allStreamData returns the headers and payloads of every stored message.
func allStreamData(t *testing.T, ts *testServer) []byte {
	t.Helper()
	js := jsFor(t, ts)
	s, err := js.Stream(context.Background(), "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	head := streamHead(t, ts)
	var out bytes.Buffer
	for seq := uint64(1); seq <= head; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		for k, v := range m.Header {
			out.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		out.Write(m.Data)
		out.WriteByte('\n')
	}
	return out.Bytes()
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
