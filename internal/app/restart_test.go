package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestServe_Restart stops the server and starts it again on the same data
// directory: users, keys, revocations, regenerations and session tokens
// must all survive.
func TestServe_Restart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := apptest.Start(t, dir)
	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	kept := ts.CreateKey(t, token, `{"name":"kept"}`)
	revoked := ts.CreateKey(t, token, `{"name":"revoked"}`)
	renewed := ts.CreateKey(t, token, `{"name":"renewed"}`)
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+revoked.Key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	r := ts.Do(t, "POST", "/api-keys/"+renewed.Key+"/regenerate", "", "Authorization", "Bearer "+token)
	apptest.WantStatus(t, r, http.StatusOK)
	oldSecret := renewed
	renewed.Secret = r.JSON(t)["secret"].(string)
	before := ts.Do(t, "GET", "/api-keys", "", "Authorization", "Bearer "+token)
	apptest.WantStatus(t, before, http.StatusOK)
	ts.Stop(t)

	ts = apptest.Start(t, dir)
	defer ts.Stop(t)
	after := ts.Do(t, "GET", "/api-keys", "", "Authorization", "Bearer "+token)
	apptest.WantStatus(t, after, http.StatusOK) // the old session token is still accepted
	if string(after.Body) != string(before.Body) {
		t.Fatalf("listing changed across restart:\nbefore %s\nafter  %s", before.Body, after.Body)
	}
	for _, c := range []struct {
		name string
		key  apptest.CreatedKey
		want int
	}{{"Kept", kept, 200}, {"Revoked", revoked, 401}, {"Renewed", renewed, 200}, {"OldSecret", oldSecret, 401}} {
		if got := ts.Validate(t, c.key); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
	if got := ts.Do(t, "POST", "/users", `{"email":"alice@example.com","password":"`+apptest.Password+`"}`).Status; got != http.StatusConflict {
		t.Errorf("re-registering after restart: got %d, want 409", got)
	}
	ts.Login(t, "alice@example.com", apptest.Password)
	apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys/"+kept.Key, "", "Authorization", "Bearer "+token), http.StatusOK)
	if !strings.Contains(string(after.Body), kept.Key) || aliceID == "" {
		t.Fatal("kept key missing after restart")
	}
}

// TestServe_EmbeddedLoopbackOnly: the embedded NATS server has no
// authentication, so serve refuses to listen beyond loopback.
func TestServe_EmbeddedLoopbackOnly(t *testing.T) {
	t.Parallel()
	s := &app.Server{Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "0.0.0.0:0"}}
	err := s.Open(context.Background())
	s.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("got %v, want a refusal to expose the embedded NATS server", err)
	}
}
