package app_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestServe_DataDirLock: a second serve on a data directory in use fails
// at once, naming the directory and the holder, before it touches NATS
// (it would share the first one's JetStream store); once the first stops,
// the directory is free again.
func TestServe_DataDirLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := apptest.Start(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	second := &app.Server{Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0"}}
	err := second.Open(ctx)
	if closeErr := second.Close(ctx); closeErr != nil {
		t.Errorf("Close of the refused server: %v", closeErr)
	}
	want := fmt.Sprintf("data directory %s is in use by another keyledger serve (pid %d)", dir, os.Getpid())
	if err == nil || err.Error() != want {
		t.Fatalf("second Open: got %v, want %q", err, want)
	}
	if second.Conn() != nil || second.NATSURL() != "" {
		t.Errorf("second Open: got a NATS connection or server, want none started")
	}
	if !first.Ready() {
		t.Errorf("first server: got not ready after the refused second, want ready")
	}

	first.Stop(t)
	again := apptest.Start(t, dir)
	again.Stop(t)
}
