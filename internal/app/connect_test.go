package app_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
)

// startNATSAt starts a nats-server with JetStream on addr (host:port),
// shut down when the test ends.
func startNATSAt(t *testing.T, addr string) *server.Server {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(&server.Options{Host: host, Port: p, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server on %s not ready", addr)
	}
	return s
}

const retryLine = "NATS not reachable yet, retrying"

// TestServe_WaitsForNATS: serve with --nats-url started before NATS
// retries its first connection and starts once NATS is up.
func TestServe_WaitsForNATS(t *testing.T) {
	t.Parallel()
	addr := apptest.FreeAddr(t)
	logs := &apptest.SyncBuffer{}
	s := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSURL: "nats://" + addr,
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1,
			StartTimeout: 30 * time.Second},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	}
	opened := make(chan error, 1)
	go func() { opened <- s.Open(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	natstest.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), retryLine) },
		"serve retrying its NATS connection")
	startNATSAt(t, addr)
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("Open: got %v, want nil once NATS is up", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("Open did not return within 40s")
	}
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	if !strings.Contains(logs.String(), "connected to NATS") {
		t.Errorf("logs: got %q, want a line saying it connected", logs.String())
	}
}

// TestNode_WaitsForNATS: a validator started before NATS (and before the
// ledger made the stream) retries and starts once both are there.
func TestNode_WaitsForNATS(t *testing.T) {
	t.Parallel()
	addr := apptest.FreeAddr(t)
	logs := &apptest.SyncBuffer{}
	n := &app.Node{Config: app.NodeConfig{NATSURL: "nats://" + addr, HTTPAddr: "127.0.0.1:0", StartTimeout: 30 * time.Second},
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	opened := make(chan error, 1)
	go func() { opened <- n.Open(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	natstest.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), retryLine) },
		"the validator retrying its NATS connection")
	ns := startNATSAt(t, addr)
	ledgertest.New(t, natstest.Connect(t, ns))
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("Open: got %v, want nil once NATS is up", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("Open did not return within 40s")
	}
}

// TestConnectNATS_GivesUp: past the start timeout the error names the URL,
// never the credentials in it.
func TestConnectNATS_GivesUp(t *testing.T) {
	t.Parallel()
	addr := apptest.FreeAddr(t) // nothing listens there
	logs := &apptest.SyncBuffer{}
	_, err := app.ConnectNATS(context.Background(), "nats://alice:s3cret@"+addr, 300*time.Millisecond,
		slog.New(slog.NewTextHandler(logs, nil)))
	if err == nil {
		t.Fatal("got a connection, want an error")
	}
	if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "gave up after") {
		t.Errorf("got %q, want it to name %s and the wait", err, addr)
	}
	if strings.Contains(err.Error()+logs.String(), "s3cret") {
		t.Errorf("the password leaked: %q, logs %q", err, logs.String())
	}
	if n := strings.Count(logs.String(), retryLine); n != 1 {
		t.Errorf("got %d retry lines in 300ms, want 1 (at most one every few seconds)", n)
	}
}
