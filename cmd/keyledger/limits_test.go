package main

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestServe_MaxKeysPerUser: --max-keys-per-user answers 409 with a clear
// JSON error once a user holds that many unrevoked keys.
func TestServe_MaxKeysPerUser(t *testing.T) {
	s := &Server{
		Config: ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1, MaxKeysPerUser: 1},
		Logger: slog.New(slog.DiscardHandler),
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	ts := &testServer{Server: s, base: "http://" + s.HTTPAddr(), logs: &syncBuffer{}}
	ts.register(t, "alice@example.com", password)
	token := ts.login(t, "alice@example.com", password)
	k := ts.createKey(t, token, "")
	r := ts.do(t, "POST", "/api-keys", "", "Authorization", "Bearer "+token)
	wantStatus(t, r, http.StatusConflict)
	if code := r.errorCode(t); code != "conflict" {
		t.Fatalf("got code %q, want conflict", code)
	}
	wantStatus(t, ts.do(t, "DELETE", "/api-keys/"+k.key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	ts.createKey(t, token, "")
}
