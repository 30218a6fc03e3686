package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestClient_KeyPolicies drives every key policy call of the Go client
// against the real serve wiring.
func TestClient_KeyPolicies(t *testing.T) {
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

	k, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "orders", Scopes: []string{"orders:read"},
		Metadata: json.RawMessage(`{"plan":"pro"}`)})
	if err != nil || len(k.Scopes) != 1 || string(k.Metadata) != `{"plan":"pro"}` || k.Version != 1 {
		t.Fatalf("CreateKey: got %+v, %v", k, err)
	}
	id, err := c.ValidateScopes(ctx, k.APIKey, k.Secret, client.StyleAPIKeyHeaders, "orders:read")
	if err != nil || id.Name != "orders" || string(id.Metadata) != `{"plan":"pro"}` {
		t.Fatalf("ValidateScopes: got %+v, %v", id, err)
	}
	if _, err := c.ValidateScopes(ctx, k.APIKey, k.Secret, client.StyleAPIKeyHeaders, "orders:write"); !client.IsForbidden(err) {
		t.Fatalf("ValidateScopes without the scope: got %v, want 403", err)
	}
	scopes := []string{"orders:read", "orders:write"}
	edited, err := c.EditKey(ctx, k.APIKey, client.KeyEdit{Scopes: &scopes}, k.Version)
	if err != nil || len(edited.Scopes) != 2 || edited.Version != 2 {
		t.Fatalf("EditKey: got %+v, %v", edited, err)
	}
	name := "stale"
	if _, err := c.EditKey(ctx, k.APIKey, client.KeyEdit{Name: &name}, k.Version); err == nil || !hasStatus(err, http.StatusPreconditionFailed) {
		t.Fatalf("EditKey with a stale version: got %v, want 412", err)
	}
	if _, err := c.ValidateScopes(ctx, k.APIKey, k.Secret, client.StyleAPIKeyHeaders, "orders:write"); err != nil {
		t.Fatalf("ValidateScopes after the edit: %v", err)
	}
	if err := c.DisableKey(ctx, k.APIKey, "pause"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetKey(ctx, k.APIKey); err != nil || got.Status != client.StatusDisabled {
		t.Fatalf("GetKey of a disabled key: got %+v, %v", got, err)
	}
	if _, err := c.Validate(ctx, k.APIKey, k.Secret, client.StyleAPIKeyHeaders); !client.IsUnauthorized(err) {
		t.Fatalf("Validate of a disabled key: got %v, want 401", err)
	}
	if err := c.EnableKey(ctx, k.APIKey, ""); err != nil {
		t.Fatal(err)
	}
	next, err := c.RegenerateSecretWithGrace(ctx, k.APIKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{k.Secret, next.Secret} {
		if _, err := c.Validate(ctx, k.APIKey, secret, client.StyleAPIKeyHeaders); err != nil {
			t.Errorf("Validate in the grace period: %v", err)
		}
	}
	if got, err := c.GetKey(ctx, k.APIKey); err != nil || got.PreviousSecretExpiresAt == nil {
		t.Errorf("GetKey in the grace period: got %+v, %v, want previous_secret_expires_at", got, err)
	}
}

func hasStatus(err error, status int) bool {
	e, ok := err.(*client.Error)
	return ok && e.Status == status
}
