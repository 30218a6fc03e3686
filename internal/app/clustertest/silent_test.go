package clustertest_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestServe_SilentNATSNode reaches a three-node cluster through a proxy to
// one node (serve learns the others from the server), then has the proxy
// forward nothing and close nothing: what a machine that dies, or a network
// that drops everything, looks like, unlike a killed process whose socket
// is reset. serve must notice the dead connection within seconds, move to
// another node and acknowledge commands again; with nats.go's default
// PINGs (every 2 minutes, 2 unanswered) it would publish into the dead
// connection for about 4 minutes.
func TestServe_SilentNATSNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	const stuck = 30 * time.Second // far above the few seconds PINGs take
	cluster := natstest.RunCluster(t, 3)
	proxy := natstest.StartProxy(t, strings.TrimPrefix(cluster.URL(0), "nats://"))
	logs := &apptest.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's logs:\n%s", logs)
		}
	})
	srv := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSURL: proxy.URL(), Replicas: 3,
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, MaxKeysPerUser: -1, CheckpointInterval: -1},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if err := srv.Open(t.Context()); err != nil {
		srv.Close(context.Background())
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	natstest.Eventually(t, 30*time.Second, srv.Ready, "serve ready")
	// The stream led elsewhere: the cluster itself stays whole, only
	// serve's way to it goes silent.
	cluster.WaitStreamCurrent(t, eventstore.DefaultStream)
	cluster.MoveStreamLeader(t, eventstore.DefaultStream, 1)

	load := apptest.NewCommandLoad(t, "http://"+srv.HTTPAddr(), "silent", time.Second)
	user := load.AddUser(t, "owner@example.com")
	if _, err := load.CreateKeyFor(t.Context(), user); err != nil {
		t.Fatal(err)
	}
	session, err := load.API.Login(t.Context(), "owner@example.com", apptest.Password)
	if err != nil {
		t.Fatal(err)
	}
	api := load.API.WithSession(session.Token)

	proxy.Freeze()
	frozen := time.Now()
	var tries int
	natstest.Eventually(t, stuck, func() bool {
		tries++
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := api.CreateKey(ctx, client.CreateKeyRequest{Name: "after the silence"})
		return err == nil
	}, "a command acknowledged after serve's NATS node went silent")
	t.Logf("a command acknowledged %v after the proxy went silent (%d tries); serve now on %s",
		time.Since(frozen).Round(time.Millisecond), tries, srv.Conn().ConnectedServerName())
	if got := srv.Conn().ConnectedUrlRedacted(); got == proxy.URL() {
		t.Errorf("serve is still connected through the silent proxy")
	}
}
