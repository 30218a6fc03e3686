package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestClient_Walkthrough drives the README's walk-through through the Go
// client against the real serve wiring.
func TestClient_Walkthrough(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	anon, err := client.New(ts.Base, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	t.Run("Health", func(t *testing.T) {
		if err := anon.Healthz(ctx); err != nil {
			t.Fatalf("Healthz: %v", err)
		}
		r, err := anon.Readyz(ctx)
		if err != nil || !r.Ready {
			t.Fatalf("Readyz: got %+v, %v, want ready", r, err)
		}
		set, err := anon.JWKS(ctx)
		if err != nil || len(set.Keys) == 0 {
			t.Fatalf("JWKS: got %+v, %v, want a key", set, err)
		}
		if _, err := set.Keys[0].PublicKey(); err != nil {
			t.Fatalf("PublicKey: %v", err)
		}
	})

	alice, err := anon.Register(ctx, "alice@example.com", apptest.Password)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if !strings.HasPrefix(alice.ID, "usr_") || alice.Email != "alice@example.com" || alice.CreatedAt.IsZero() {
		t.Fatalf("Register: got %+v, want a usr_ id, the email and a time", alice)
	}
	session, err := anon.Login(ctx, "alice@example.com", apptest.Password)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if session.Token == "" || !session.ExpiresAt.After(time.Now()) {
		t.Fatalf("Login: got expiry %v and a token of %d bytes, want a future expiry and a token", session.ExpiresAt, len(session.Token))
	}
	ac := anon.WithSession(session.Token)

	t.Run("Errors", func(t *testing.T) {
		_, err := anon.Register(ctx, "alice@example.com", apptest.Password)
		var e *client.Error
		if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != client.CodeConflict || !client.IsConflict(err) {
			t.Fatalf("duplicate Register: got %v, want 409 conflict", err)
		}
		_, err = anon.Login(ctx, "alice@example.com", "not the password at all")
		if !client.IsUnauthorized(err) {
			t.Fatalf("wrong password: got %v, want 401", err)
		}
		if strings.Contains(err.Error(), "not the password") {
			t.Fatalf("got error %q, want it without the password", err)
		}
		if _, err := anon.ListKeys(ctx, client.ListOptions{}); !errors.Is(err, client.ErrNoSession) {
			t.Fatalf("ListKeys without a session: got %v, want ErrNoSession", err)
		}
		if _, err := anon.WithSession("not.a.token").ListKeys(ctx, client.ListOptions{}); !client.IsUnauthorized(err) {
			t.Fatalf("ListKeys with a bad token: got %v, want 401", err)
		}
		if _, err := ac.ListKeys(ctx, client.ListOptions{Limit: 201}); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
			t.Fatalf("limit 201: got %v, want 400", err)
		}
	})

	// Create: one key with an expiry, four without.
	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	withExpiry, err := ac.CreateKey(ctx, client.CreateKeyRequest{Name: "ci", ExpiresAt: &expires})
	if err != nil {
		t.Fatalf("CreateKey with expiry: %v", err)
	}
	if withExpiry.ExpiresAt == nil || !withExpiry.ExpiresAt.Equal(expires) || withExpiry.Name != "ci" ||
		withExpiry.Status != client.StatusActive || withExpiry.Secret == "" {
		t.Fatalf("CreateKey with expiry: got name %q status %q expires %v, want ci, active, %v",
			withExpiry.Name, withExpiry.Status, withExpiry.ExpiresAt, expires)
	}
	created := []client.CreatedKey{withExpiry}
	for range 4 {
		k, err := ac.CreateKey(ctx, client.CreateKeyRequest{})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		if k.ExpiresAt != nil {
			t.Fatalf("CreateKey without expiry: got expires %v, want none", k.ExpiresAt)
		}
		created = append(created, k)
	}
	past := time.Now().Add(-time.Hour)
	if _, err := ac.CreateKey(ctx, client.CreateKeyRequest{ExpiresAt: &past}); !errors.As(err, new(*client.Error)) {
		t.Fatalf("CreateKey in the past: got %v, want *client.Error", err)
	}

	t.Run("List", func(t *testing.T) {
		page, err := ac.ListKeys(ctx, client.ListOptions{Limit: 2})
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if len(page.Keys) != 2 || page.NextCursor == "" {
			t.Fatalf("first page: got %d keys, cursor %q, want 2 and a cursor", len(page.Keys), page.NextCursor)
		}
		var got []string
		for k, err := range ac.AllKeys(ctx, client.ListOptions{Limit: 2}) {
			if err != nil {
				t.Fatalf("AllKeys: %v", err)
			}
			got = append(got, k.APIKey)
		}
		if len(got) != len(created) {
			t.Fatalf("AllKeys: got %d keys, want %d", len(got), len(created))
		}
		for i, k := range got { // newest first
			if want := created[len(created)-1-i].APIKey; k != want {
				t.Fatalf("AllKeys[%d]: got %s, want %s", i, k, want)
			}
		}
	})

	t.Run("Get", func(t *testing.T) {
		k, err := ac.GetKey(ctx, withExpiry.APIKey)
		if err != nil {
			t.Fatalf("GetKey: %v", err)
		}
		if k.APIKey != withExpiry.APIKey || k.Name != "ci" || k.Status != client.StatusActive ||
			k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) || k.RevokedAt != nil {
			t.Fatalf("GetKey: got %+v, want the active ci key", k)
		}
		if _, err := ac.GetKey(ctx, "ak_01ARZ3NDEKTSV4RRFFQ69G5FAV"); !client.IsNotFound(err) {
			t.Fatalf("GetKey of a missing key: got %v, want 404", err)
		}
	})

	key := created[1]
	t.Run("Validate", func(t *testing.T) {
		for _, style := range []client.HeaderStyle{client.StyleAPIKeyHeaders, client.StyleAuthorization} {
			id, err := anon.Validate(ctx, key.APIKey, key.Secret, style)
			if err != nil {
				t.Fatalf("Validate %v: %v", style, err)
			}
			if id.APIKey != key.APIKey || id.UserID != alice.ID {
				t.Fatalf("Validate %v: got %+v, want %s of %s", style, id, key.APIKey, alice.ID)
			}
		}
		// A protected service called through the Transport sees the same.
		hc := &http.Client{Transport: &client.Transport{APIKey: key.APIKey, Secret: key.Secret, Style: client.StyleAuthorization}}
		resp, err := hc.Get(ts.Base + "/validate")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Keyledger-User") != alice.ID {
			t.Fatalf("Transport: got %d user %q, want 200 %s", resp.StatusCode, resp.Header.Get("X-Keyledger-User"), alice.ID)
		}
	})

	t.Run("Regenerate", func(t *testing.T) {
		fresh, err := ac.RegenerateSecret(ctx, key.APIKey)
		if err != nil {
			t.Fatalf("RegenerateSecret: %v", err)
		}
		if fresh.APIKey != key.APIKey || fresh.Secret == "" || fresh.Secret == key.Secret {
			t.Fatalf("RegenerateSecret: got key %s and an unchanged or empty secret, want %s and a new one", fresh.APIKey, key.APIKey)
		}
		_, err = anon.Validate(ctx, key.APIKey, key.Secret, client.StyleAPIKeyHeaders)
		var e *client.Error
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
			t.Fatalf("old secret: got %v, want *client.Error with status 401", err)
		}
		if strings.Contains(err.Error(), key.Secret) {
			t.Fatalf("got error %q, want it without the secret", err)
		}
		if _, err := anon.Validate(ctx, key.APIKey, fresh.Secret, client.StyleAuthorization); err != nil {
			t.Fatalf("new secret: %v", err)
		}
		key.Secret = fresh.Secret
	})

	t.Run("Revoke", func(t *testing.T) {
		if err := ac.RevokeKey(ctx, key.APIKey); err != nil {
			t.Fatalf("RevokeKey: %v", err)
		}
		if err := ac.RevokeKey(ctx, key.APIKey); err != nil {
			t.Fatalf("RevokeKey again: got %v, want success", err)
		}
		if _, err := anon.Validate(ctx, key.APIKey, key.Secret, client.StyleAPIKeyHeaders); !client.IsUnauthorized(err) {
			t.Fatalf("Validate a revoked key: got %v, want 401", err)
		}
		k, err := ac.GetKey(ctx, key.APIKey)
		if err != nil || k.Status != client.StatusRevoked || k.RevokedAt == nil {
			t.Fatalf("GetKey: got %+v, %v, want revoked", k, err)
		}
		if _, err := ac.RegenerateSecret(ctx, key.APIKey); !client.IsConflict(err) {
			t.Fatalf("RegenerateSecret of a revoked key: got %v, want 409", err)
		}
	})

	t.Run("OtherUser", func(t *testing.T) {
		if _, err := anon.Register(ctx, "bob@example.com", apptest.Password); err != nil {
			t.Fatalf("Register: %v", err)
		}
		s, err := anon.Login(ctx, "bob@example.com", apptest.Password)
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		bob, err := client.New(ts.Base, client.WithToken(s.Token))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bob.GetKey(ctx, withExpiry.APIKey); !client.IsNotFound(err) {
			t.Fatalf("GetKey of alice's key: got %v, want 404", err)
		}
		if err := bob.RevokeKey(ctx, withExpiry.APIKey); !client.IsNotFound(err) {
			t.Fatalf("RevokeKey of alice's key: got %v, want 404", err)
		}
		page, err := bob.ListKeys(ctx, client.ListOptions{})
		if err != nil || len(page.Keys) != 0 || page.NextCursor != "" {
			t.Fatalf("ListKeys: got %+v, %v, want no keys", page, err)
		}
	})

	t.Run("AdminForbidden", func(t *testing.T) {
		_, err := ac.AdminListKeys(ctx, alice.ID, client.StatusActive)
		var e *client.Error
		if !client.IsForbidden(err) || !errors.As(err, &e) || e.Status != http.StatusForbidden {
			t.Fatalf("AdminListKeys: got %v, want 403", err)
		}
		if err := ac.AdminRevokeKey(ctx, withExpiry.APIKey, "test"); !client.IsForbidden(err) {
			t.Fatalf("AdminRevokeKey: got %v, want 403", err)
		}
		if err := ac.AdminDisableUser(ctx, alice.ID, "test"); !client.IsForbidden(err) {
			t.Fatalf("AdminDisableUser: got %v, want 403", err)
		}
		if _, err := ac.AdminRevokeUserKeys(ctx, alice.ID, "test"); !client.IsForbidden(err) {
			t.Fatalf("AdminRevokeUserKeys: got %v, want 403", err)
		}
		if _, err := anon.Validate(ctx, withExpiry.APIKey, withExpiry.Secret, client.StyleAPIKeyHeaders); err != nil {
			t.Fatalf("the key admin calls were refused on: got %v, want it still valid", err)
		}
	})
}

// TestClient_IdempotencyKey: the client sends a context's Idempotency-Key
// on commands, a retry gets the first answer, and a reuse for another
// request is a *client.Error with code idempotency_key_reused.
func TestClient_IdempotencyKey(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	anon, err := client.New(ts.Base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Register(client.WithIdempotencyKey(ctx, "register-dave"), "dave@example.com", apptest.Password); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Register(client.WithIdempotencyKey(ctx, "register-dave"), "dave@example.com", apptest.Password); err != nil {
		t.Fatalf("Register retried: got %v, want the first answer", err)
	}
	session, err := anon.Login(ctx, "dave@example.com", apptest.Password)
	if err != nil {
		t.Fatal(err)
	}
	ac := anon.WithSession(session.Token)
	ictx := client.WithIdempotencyKey(ctx, "create-ci-1")
	first, err := ac.CreateKey(ictx, client.CreateKeyRequest{Name: "ci", SignedOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	again, err := ac.CreateKey(ictx, client.CreateKeyRequest{Name: "ci", SignedOnly: true})
	if err != nil || again.APIKey != first.APIKey || again.Secret != first.Secret || !again.SignedOnly {
		t.Fatalf("CreateKey retried: got %+v, %v, want the first key and secret", again.APIKey, err)
	}
	_, err = ac.CreateKey(ictx, client.CreateKeyRequest{Name: "other"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != client.CodeIdempotencyKeyReused || ce.Status != http.StatusUnprocessableEntity {
		t.Fatalf("reused for another body: got %v, want 422 %s", err, client.CodeIdempotencyKeyReused)
	}
	n := 0
	for _, err := range ac.AllKeys(ctx, client.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("AllKeys: got %d keys, want 1", n)
	}
}

// TestClient_Retries: with WithRetries, a create whose answer was lost
// (the connection dropped, or a 503 in its place, after the ledger stored
// the key) is sent again with the same Idempotency-Key and answered with
// the first key and secret; exactly one key exists.
func TestClient_Retries(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	backend, err := url.Parse(ts.Base)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var keys []string                 // Idempotency-Key of each create that reached the front
	var lost []string                 // api keys in the answers the front threw away
	losses := []string{"drop", "503"} // what the front does to the first creates
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		out, err := http.NewRequestWithContext(r.Context(), r.Method, ts.Base+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		out.Host = backend.Host
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		loss := ""
		if r.Method == http.MethodPost && r.URL.Path == "/api-keys" {
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			if len(losses) > 0 {
				loss, losses = losses[0], losses[1:]
				var k struct {
					APIKey string `json:"api_key"`
				}
				_ = json.Unmarshal(answer, &k)
				lost = append(lost, k.APIKey)
			}
			mu.Unlock()
		}
		switch loss {
		case "drop": // the connection dies before the answer
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case "503":
			w.Header().Set("Retry-After", "0")
			http.Error(w, "upstream lost", http.StatusServiceUnavailable)
			return
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	defer front.Close()

	c, err := client.New(front.URL, client.WithRetries(4, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "erin@example.com", apptest.Password); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(ctx, "erin@example.com", apptest.Password)
	if err != nil {
		t.Fatal(err)
	}
	ac := c.WithSession(s.Token)
	k, err := ac.CreateKey(ctx, client.CreateKeyRequest{Name: "retried"})
	if err != nil {
		t.Fatalf("CreateKey through a lossy front: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 3 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Fatalf("Idempotency-Keys of the attempts: got %q, want three equal, non-empty", keys)
	}
	if len(lost) != 2 || lost[0] != k.APIKey || lost[1] != k.APIKey {
		t.Fatalf("lost answers named %q, the retry %q: want the same key throughout", lost, k.APIKey)
	}
	n := 0
	for key, err := range ac.AllKeys(ctx, client.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if key.APIKey != k.APIKey {
			t.Errorf("listing has %s, want only %s", key.APIKey, k.APIKey)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("got %d keys, want exactly 1", n)
	}
	if code := ts.Validate(t, apptest.CreatedKey{Key: k.APIKey, Secret: k.Secret}); code != http.StatusOK {
		t.Errorf("validate the returned secret: got %d, want 200", code)
	}
}
