package apptest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// StartWith is Start with edit applied to the configuration first (a
// registration mode, a mail server, limits).
func StartWith(t *testing.T, dir string, edit func(*app.ServeConfig)) *Server {
	t.Helper()
	logs := &SyncBuffer{}
	s := &app.Server{
		Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	edit(&s.Config)
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ts := &Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: logs}
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	return ts
}
