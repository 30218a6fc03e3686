package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

func idemKey(key string) []string { return []string{"Idempotency-Key", key} }

// wantReplay fails unless again is first sent again from the record:
// same status, body and kept headers, marked replayed.
func wantReplay(t *testing.T, first, again apptest.Response) {
	t.Helper()
	if again.Status != first.Status || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("retry: got %d %s, want %d %s", again.Status, again.Body, first.Status, first.Body)
	}
	for _, h := range []string{"Location", "Cache-Control", "Content-Type"} {
		if again.Header.Get(h) != first.Header.Get(h) {
			t.Errorf("retry: header %s: got %q, want %q", h, again.Header.Get(h), first.Header.Get(h))
		}
	}
	if got := again.Header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("retry: Idempotent-Replayed: got %q, want true", got)
	}
	if got := first.Header.Get("Idempotent-Replayed"); got != "" {
		t.Errorf("first response: Idempotent-Replayed: got %q, want none", got)
	}
}

func wantCode(t *testing.T, r apptest.Response, status int, code string) {
	t.Helper()
	apptest.WantStatus(t, r, status)
	if got := r.ErrorCode(t); got != code {
		t.Fatalf("got code %q (%s), want %q", got, r.Body, code)
	}
}

// kvValues returns every raw value in the server's idempotency bucket.
func kvValues(t *testing.T, ts *apptest.Server) [][]byte {
	t.Helper()
	ctx := context.Background()
	kv, err := apptest.JetStream(t, ts).KeyValue(ctx, ts.Idempotency().Bucket())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Value())
	}
	return out
}

// TestServe_Idempotency drives the four routes that take an
// Idempotency-Key through the real wiring: a retry is answered from the
// record and appends nothing.
func TestServe_Idempotency(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	aliceToken := ts.Login(t, "alice@example.com", apptest.Password)
	alice := apptest.Bearer(aliceToken)
	ts.Register(t, "bob@example.com", apptest.Password)
	bob := apptest.Bearer(ts.Login(t, "bob@example.com", apptest.Password))
	var secrets []string // every secret issued: none may be in the bucket in clear

	t.Run("RegisterUser", func(t *testing.T) {
		body := `{"email":"carol@example.com","password":"` + apptest.Password + `"}`
		var first, again apptest.Response
		ts.WantAppended(t, 2, func() { // the email reservation and the user
			first = ts.Do(t, "POST", "/users", body, idemKey("reg-1")...)
			apptest.WantStatus(t, first, http.StatusCreated)
			again = ts.Do(t, "POST", "/users", body, idemKey("reg-1")...)
		})
		wantReplay(t, first, again)
		if first.Header.Get("Location") == "" {
			t.Errorf("got no Location, want the user's")
		}
		// Without the header, as before: the address is taken.
		wantCode(t, ts.Do(t, "POST", "/users", body), http.StatusConflict, "conflict")
	})

	t.Run("CreateKey", func(t *testing.T) {
		body := `{"name":"ci"}`
		var first, again apptest.Response
		ts.WantAppended(t, 1, func() {
			first = ts.Do(t, "POST", "/api-keys", body, append(alice, idemKey("create-1")...)...)
			apptest.WantStatus(t, first, http.StatusCreated)
			again = ts.Do(t, "POST", "/api-keys", body, append(alice, idemKey("create-1")...)...)
		})
		wantReplay(t, first, again)
		m := first.JSON(t)
		k := apptest.CreatedKey{Key: m["api_key"].(string), Secret: m["secret"].(string)}
		secrets = append(secrets, k.Secret)
		if first.Header.Get("Location") != "/api-keys/"+k.Key || again.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("got Location %q, Cache-Control %q; want /api-keys/%s, no-store",
				again.Header.Get("Location"), again.Header.Get("Cache-Control"), k.Key)
		}
		if got := ts.Validate(t, k); got != http.StatusOK {
			t.Errorf("validate: got %d, want 200", got)
		}
	})

	k := ts.CreateKey(t, aliceToken, "")
	secrets = append(secrets, k.Secret)

	t.Run("RegenerateSecret", func(t *testing.T) {
		var first, again apptest.Response
		ts.WantAppended(t, 1, func() {
			first = ts.Do(t, "POST", "/api-keys/"+k.Key+"/regenerate", "", append(alice, idemKey("regen-1")...)...)
			apptest.WantStatus(t, first, http.StatusOK)
			again = ts.Do(t, "POST", "/api-keys/"+k.Key+"/regenerate", "", append(alice, idemKey("regen-1")...)...)
		})
		wantReplay(t, first, again)
		fresh := apptest.CreatedKey{Key: k.Key, Secret: first.JSON(t)["secret"].(string)}
		secrets = append(secrets, fresh.Secret)
		if ts.Validate(t, k) != http.StatusUnauthorized || ts.Validate(t, fresh) != http.StatusOK {
			t.Errorf("want the old secret refused and the replayed one valid")
		}
	})

	t.Run("RevokeKey", func(t *testing.T) {
		var first, again apptest.Response
		ts.WantAppended(t, 1, func() {
			first = ts.Do(t, "DELETE", "/api-keys/"+k.Key, "", append(alice, idemKey("revoke-1")...)...)
			apptest.WantStatus(t, first, http.StatusNoContent)
			again = ts.Do(t, "DELETE", "/api-keys/"+k.Key, "", append(alice, idemKey("revoke-1")...)...)
		})
		wantReplay(t, first, again)
	})

	t.Run("ErrorResponseKept", func(t *testing.T) {
		// A domain error is the request's outcome too: a retry gets it
		// again, even once the state that caused it has changed.
		path := "/api-keys/" + k.Key + "/regenerate"
		first := ts.Do(t, "POST", path, "", append(alice, idemKey("regen-revoked")...)...)
		wantCode(t, first, http.StatusConflict, "conflict")
		wantReplay(t, first, ts.Do(t, "POST", path, "", append(alice, idemKey("regen-revoked")...)...))
	})

	t.Run("ErrReused", func(t *testing.T) {
		ts.WantAppended(t, 0, func() {
			for name, req := range map[string]struct{ method, path, body string }{
				"Body":   {"POST", "/api-keys", `{"name":"cd"}`},
				"Method": {"DELETE", "/api-keys/" + k.Key, ""},
				"Path":   {"POST", "/api-keys/" + k.Key + "/regenerate", ""},
			} {
				r := ts.Do(t, req.method, req.path, req.body, append(alice, idemKey("create-1")...)...)
				if r.Status != http.StatusUnprocessableEntity || r.ErrorCode(t) != "idempotency_key_reused" {
					t.Errorf("%s: got %d %s, want 422 idempotency_key_reused", name, r.Status, r.Body)
				}
			}
			// Whitespace is part of the body.
			r := ts.Do(t, "POST", "/api-keys", `{"name": "ci"}`, append(alice, idemKey("create-1")...)...)
			wantCode(t, r, http.StatusUnprocessableEntity, "idempotency_key_reused")
		})
	})

	t.Run("OtherUser", func(t *testing.T) {
		// Bob's key "create-1" is his own: a new request, a new key.
		var r apptest.Response
		ts.WantAppended(t, 1, func() {
			r = ts.Do(t, "POST", "/api-keys", `{"name":"ci"}`, append(bob, idemKey("create-1")...)...)
		})
		apptest.WantStatus(t, r, http.StatusCreated)
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("got a replay of alice's response")
		}
		secrets = append(secrets, r.JSON(t)["secret"].(string))
	})

	t.Run("ErrInvalidKey", func(t *testing.T) {
		ts.WantAppended(t, 0, func() {
			for name, values := range map[string][]string{
				"Empty":    {""},
				"TooLong":  {strings.Repeat("k", 256)},
				"NonASCII": {"clé"},
				"Control":  {"a\tb"},
				"Twice":    {"a", "b"},
			} {
				req, err := http.NewRequest("POST", ts.Base+"/api-keys", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", alice[1])
				req.Header["Idempotency-Key"] = values
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("%s: got %d, want 400", name, resp.StatusCode)
				}
			}
		})
		// The longest key is fine.
		apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys", "", append(alice, idemKey(strings.Repeat("k", 255))...)...), http.StatusCreated)
	})

	t.Run("Concurrent", func(t *testing.T) {
		const n = 8
		responses := make([]apptest.Response, n)
		ts.WantAppended(t, 1, func() {
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					responses[i] = ts.Do(t, "POST", "/api-keys", `{"name":"race"}`, append(alice, idemKey("race-1")...)...)
				})
			}
			wg.Wait()
		})
		var created []apptest.Response
		statuses := make([]int, n)
		for i, r := range responses {
			statuses[i] = r.Status
			switch r.Status {
			case http.StatusCreated:
				created = append(created, r)
			case http.StatusConflict:
				if code := r.ErrorCode(t); code != "idempotency_key_in_use" || r.Header.Get("Retry-After") == "" {
					t.Errorf("got 409 %s with Retry-After %q, want idempotency_key_in_use and a Retry-After", code, r.Header.Get("Retry-After"))
				}
			default:
				t.Errorf("got %d %s, want 201 or 409", r.Status, r.Body)
			}
		}
		t.Logf("statuses: %v", statuses)
		if len(created) == 0 {
			t.Fatal("no request succeeded")
		}
		for _, r := range created[1:] {
			if !bytes.Equal(r.Body, created[0].Body) {
				t.Errorf("got two different keys: %s and %s", created[0].Body, r.Body)
			}
		}
		secrets = append(secrets, created[0].JSON(t)["secret"].(string))
		apptest.WantStatus(t, ts.Do(t, "POST", "/api-keys", `{"name":"race"}`, append(alice, idemKey("race-1")...)...), http.StatusCreated)
	})

	t.Run("AfterCrash", func(t *testing.T) { testAfterCrash(t, ts, aliceID, aliceToken, &secrets) })

	t.Run("NoSecretInBucket", func(t *testing.T) {
		values := kvValues(t, ts)
		if len(values) == 0 {
			t.Fatal("the bucket is empty")
		}
		for _, v := range values {
			for _, s := range secrets {
				for _, needle := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), s[3 : len(s)-6]} {
					if bytes.Contains(v, []byte(needle)) {
						t.Fatalf("a stored record holds a secret in clear")
					}
				}
			}
			for _, needle := range []string{aliceID, "carol@example.com", "create-1", apptest.Password} {
				if bytes.Contains(v, []byte(needle)) {
					t.Errorf("a stored record holds %q in clear", needle)
				}
			}
		}
		if strings.Contains(ts.Logs.String(), secrets[0]) {
			t.Errorf("the log holds a secret")
		}
	})
}

// testAfterCrash: the first request's server died after the command's
// append and before it recorded the response. What it leaves behind is
// made by hand: a pending record whose lease has run out, holding the
// identifiers chosen for the command, and the command's effect in the log
// (the ledger entry point run with those identifiers). A retry takes the
// record over and runs the command again with the same identifiers: it
// answers success and appends nothing, whatever JetStream's duplicate
// window. One case leaves the record alone, the command never run: the
// retry runs it, once.
func testAfterCrash(t *testing.T, ts *apptest.Server, aliceID, aliceToken string, secrets *[]string) {
	alice := apptest.Bearer(aliceToken)
	signingKey, err := auth.LoadOrCreateSigningKey(ts.Config.SigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := app.IdempotencySecret(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	// A store whose clock is an hour behind: its leases have run out.
	crashed, err := idempotency.New(ctx, nc, secret, idempotency.WithBucket(ts.Idempotency().Bucket()),
		idempotency.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	key := ts.CreateKey(t, aliceToken, "")
	regenerated := ts.CreateKey(t, aliceToken, "")

	for _, tc := range []struct {
		name, method, route, path, body, scope string
		pathValues                             []string
		headers                                []string
		wantStatus                             int
		run                                    func(p ledger.Preset) error // the first attempt's command; nil: never ran
		appended                               uint64                      // by the retry
		check                                  func(t *testing.T, p ledger.Preset, r apptest.Response)
	}{
		{name: "RegisterUser", method: "POST", route: "POST /users", path: "/users", scope: "anonymous",
			body: `{"email":"dave@example.com","password":"` + apptest.Password + `"}`, wantStatus: http.StatusCreated,
			run: func(p ledger.Preset) error {
				_, err := ts.Service().RegisterUser(ctx, ledger.RegisterUser{Email: "dave@example.com", Password: apptest.Password, Preset: p})
				return err
			},
			check: func(t *testing.T, p ledger.Preset, r apptest.Response) {
				if id := r.JSON(t)["id"]; id != p.UserID {
					t.Errorf("got user %v, want the first attempt's %s", id, p.UserID)
				}
			}},
		{name: "CreateKey", method: "POST", route: "POST /api-keys", path: "/api-keys", scope: aliceID,
			body: `{"name":"crash"}`, headers: alice, wantStatus: http.StatusCreated,
			run: func(p ledger.Preset) error {
				_, _, err := ts.Service().CreateKey(ctx, ledger.CreateKey{UserID: aliceID, Name: "crash", Preset: p})
				return err
			},
			check: func(t *testing.T, p ledger.Preset, r apptest.Response) {
				m := r.JSON(t)
				if m["api_key"] != p.APIKey || m["secret"] != p.Secret.Reveal() || r.Header.Get("Location") != "/api-keys/"+p.APIKey {
					t.Errorf("got key %v, want the first attempt's %s with its secret and Location", m["api_key"], p.APIKey)
				}
				*secrets = append(*secrets, p.Secret.Reveal())
			}},
		{name: "CreateKeyNeverRan", method: "POST", route: "POST /api-keys", path: "/api-keys", scope: aliceID,
			body: `{"name":"crash early"}`, headers: alice, wantStatus: http.StatusCreated, appended: 1,
			check: func(t *testing.T, p ledger.Preset, r apptest.Response) {
				if m := r.JSON(t); m["api_key"] != p.APIKey || m["secret"] != p.Secret.Reveal() {
					t.Errorf("got key %v, want the record's %s with its secret", m["api_key"], p.APIKey)
				}
				*secrets = append(*secrets, p.Secret.Reveal())
			}},
		{name: "RegenerateSecret", method: "POST", route: "POST /api-keys/{key}/regenerate",
			path: "/api-keys/" + regenerated.Key + "/regenerate", pathValues: []string{regenerated.Key}, scope: aliceID,
			headers: alice, wantStatus: http.StatusOK,
			run: func(p ledger.Preset) error {
				_, err := ts.Service().RegenerateSecret(ctx, ledger.RegenerateSecret{UserID: aliceID, APIKey: regenerated.Key, Preset: p})
				return err
			},
			check: func(t *testing.T, p ledger.Preset, r apptest.Response) {
				if m := r.JSON(t); m["secret"] != p.Secret.Reveal() {
					t.Errorf("got another secret than the first attempt's")
				}
				if ts.Validate(t, apptest.CreatedKey{Key: regenerated.Key, Secret: p.Secret.Reveal()}) != http.StatusOK {
					t.Errorf("the first attempt's secret does not validate")
				}
				*secrets = append(*secrets, p.Secret.Reveal())
			}},
		{name: "RevokeKey", method: "DELETE", route: "DELETE /api-keys/{key}", path: "/api-keys/" + key.Key,
			pathValues: []string{key.Key}, scope: aliceID, headers: alice, wantStatus: http.StatusNoContent,
			run: func(p ledger.Preset) error {
				return ts.Service().RevokeKey(ctx, ledger.RevokeKey{UserID: aliceID, APIKey: key.Key, Preset: p})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ts.Service().NewPreset()
			if err != nil {
				t.Fatal(err)
			}
			plan, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			idem := "crash-" + tc.name
			fp := idempotency.Fingerprint(tc.method, tc.route, tc.pathValues, tc.scope, []byte(tc.body))
			if _, err := crashed.Begin(ctx, idempotency.Key{Scope: tc.scope, Value: idem}, fp, plan); err != nil {
				t.Fatalf("Begin: %v", err)
			}
			if tc.run != nil {
				if err := tc.run(p); err != nil {
					t.Fatalf("the first attempt's command: %v", err)
				}
			}
			var retry apptest.Response
			ts.WantAppended(t, tc.appended, func() {
				retry = ts.Do(t, tc.method, tc.path, tc.body, append(tc.headers, idemKey(idem)...)...)
			})
			apptest.WantStatus(t, retry, tc.wantStatus)
			if retry.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("got a replay, want the command run again")
			}
			if tc.check != nil {
				tc.check(t, p, retry)
			}
			// Done now: the next retry is a replay.
			wantReplay(t, retry, ts.Do(t, tc.method, tc.path, tc.body, append(tc.headers, idemKey(idem)...)...))
		})
	}
}

// TestServe_IdempotencyUnavailable: with NATS out of reach a request with
// an Idempotency-Key is 503 and leaves no record: once NATS is back, the
// same request runs (once).
func TestServe_IdempotencyUnavailable(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	proxy := natstest.StartProxy(t, strings.TrimPrefix(ns.ClientURL(), "nats://"))
	s := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSURL: proxy.URL(),
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1},
		Logger: slog.New(slog.DiscardHandler),
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := &apptest.Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: &apptest.SyncBuffer{}}
	defer ts.Stop(t)
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	ts.Register(t, "alice@example.com", apptest.Password)
	alice := apptest.Bearer(ts.Login(t, "alice@example.com", apptest.Password))
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	head := func() uint64 {
		st, err := js.Stream(context.Background(), "KEYLEDGER")
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	before := head()

	proxy.Cut()
	natstest.Eventually(t, 10*time.Second, func() bool { return !s.Conn().IsConnected() }, "server cut off from NATS")
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/api-keys", `{"name":"offline"}`},
		{"POST", "/users", `{"email":"bob@example.com","password":"` + apptest.Password + `"}`},
	} {
		r := ts.Do(t, req.method, req.path, req.body, append(alice, idemKey("offline-1")...)...)
		wantCode(t, r, http.StatusServiceUnavailable, "unavailable")
		if msg := r.JSON(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "idempotency") {
			t.Errorf("%s %s: got %q, want the idempotency store's 503", req.method, req.path, msg)
		}
	}

	proxy.Restore()
	natstest.Eventually(t, 10*time.Second, s.Conn().IsConnected, "server reconnected")
	r := ts.Do(t, "POST", "/api-keys", `{"name":"offline"}`, append(alice, idemKey("offline-1")...)...)
	apptest.WantStatus(t, r, http.StatusCreated)
	if r.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("got a replay, want the first run")
	}
	if got := head(); got != before+1 {
		t.Errorf("got %d events appended, want 1", got-before)
	}
}
