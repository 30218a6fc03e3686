// Package natstest starts real nats-servers with JetStream for tests, single
// servers and clusters, and offers a polling helper to await conditions
// instead of sleeping.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/embedded"
)

// RunServer starts a single nats-server with JetStream file storage in a
// temporary directory on a free loopback port; it is shut down when the
// test ends.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerAt(t, t.TempDir())
}

// RunServerAt is RunServer with a given store directory, so a test can
// restart a server on the same data.
func RunServerAt(t testing.TB, storeDir string) *server.Server {
	t.Helper()
	s, err := embedded.Start(embedded.Config{StoreDir: storeDir})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect connects to s; the connection is closed when the test ends.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to nats-server: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Eventually polls cond every few milliseconds until it holds, and fails
// the test with msg if it does not within timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string) {
	t.Helper()
	eventually(t, timeout, cond, func() string { return msg })
}

// eventually is Eventually with a message built on failure, so that it
// can describe the last state cond saw.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", timeout, msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
