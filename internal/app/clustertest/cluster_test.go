package clustertest_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestServe_NodeLossUnderLoad runs serve with --replicas 3 on a three-node
// NATS cluster, reached through the list of the nodes' URLs, and loses one
// node while clients keep sending commands: the stream's leader in two
// subtests, a follower in the other two, each once the node the ledger is
// connected to (it must move its connection too) and once another. The
// ledger must keep serving through the loss, and afterwards the log must
// hold every acknowledged command exactly once and nothing nobody asked
// for, and the read models must be what a fresh fold of the log gives.
func TestServe_NodeLossUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	for _, c := range []struct {
		name        string
		leader      bool // lose the stream's leader, else a follower
		ledgersNode bool // lose the node the ledger is connected to
	}{
		{"StreamLeader/LedgersNode", true, true},
		{"StreamLeader/OtherNode", true, false},
		{"Follower/LedgersNode", false, true},
		{"Follower/OtherNode", false, false},
	} {
		t.Run(c.name, func(t *testing.T) { testNodeLoss(t, c.leader, c.ledgersNode) })
	}
}

func testNodeLoss(t *testing.T, loseLeader, loseLedgersNode bool) {
	const (
		stream = eventstore.DefaultStream
		// acks is how many commands each phase must see acknowledged:
		// before the loss, while the node is down, after its return.
		acks = 20
		// outage is how long at least the node stays down, under load.
		outage = 2 * time.Second
	)
	cluster := natstest.RunCluster(t, 3)
	logs := &apptest.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's logs:\n%s", logs)
		}
	})
	srv := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSURL: cluster.URLs(), Replicas: 3,
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, MaxKeysPerUser: -1,
			CheckpointInterval: time.Second},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
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
	cluster.WaitStreamCurrent(t, stream)

	load := apptest.NewCommandLoad(t, "http://"+srv.HTTPAddr(), "cluster", 10*time.Millisecond)
	load.AddWorkers(load.AddUser(t, "owner@example.com"), 3)
	stop := load.Run(t.Context())
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	natstest.Eventually(t, 30*time.Second, func() bool { return load.AckedSince(time.Time{}) >= acks }, "commands acknowledged before the loss")

	// Place the stream's leader so that the node to lose is the one asked
	// for.
	ledgersNode := cluster.Index(srv.Conn().ConnectedServerName())
	if ledgersNode < 0 {
		t.Fatalf("the ledger is connected to %q, not a node of the cluster", srv.Conn().ConnectedServerName())
	}
	other := (ledgersNode + 1) % cluster.Len()
	var down int
	switch {
	case loseLeader && loseLedgersNode:
		cluster.MoveStreamLeader(t, stream, ledgersNode)
		down = ledgersNode
	case loseLeader:
		cluster.MoveStreamLeader(t, stream, other)
		down = other
	case loseLedgersNode:
		cluster.MoveStreamLeader(t, stream, other)
		down = ledgersNode
	default:
		// The leader on the ledger's node; lose another.
		cluster.MoveStreamLeader(t, stream, ledgersNode)
		down = other
	}
	t.Logf("ledger connected to %s, stream led by %s, meta leader %s: shutting down %s", cluster.Name(ledgersNode),
		cluster.Name(cluster.StreamLeader(stream)), cluster.Name(cluster.MetaLeader()), cluster.Name(down))
	lossStart := time.Now()
	cluster.Shutdown(down)
	lost := time.Now()
	natstest.Eventually(t, 60*time.Second, func() bool { return load.AckedSince(lost) >= acks && time.Since(lost) >= outage },
		"commands acknowledged with "+cluster.Name(down)+" down")
	if got := srv.Conn().ConnectedServerName(); got == cluster.Name(down) {
		t.Errorf("the ledger is still connected to %s", got)
	}
	cluster.Restart(t, down)
	restarted := time.Now()
	natstest.Eventually(t, 60*time.Second, func() bool { return load.AckedSince(restarted) >= acks },
		"commands acknowledged after "+cluster.Name(down)+" returned")
	stop()
	stopped = true

	// The ledger kept serving while the node was down: most commands
	// begun then were acknowledged, thanks to bounded retries.
	acked, all := load.Share(lossStart, restarted)
	t.Logf("%s down for %v: %d of %d commands begun meanwhile acknowledged; longest time without an acknowledgement %v",
		cluster.Name(down), restarted.Sub(lossStart).Round(time.Millisecond), acked, all,
		load.LongestStall(lossStart, restarted).Round(time.Millisecond))
	t.Logf("load: %s", load.Summary())
	if 2*acked < all {
		t.Errorf("with %s down, %d of %d commands acknowledged, want at least half", cluster.Name(down), acked, all)
	}

	// The returned node has caught up: the log is whole on every replica.
	cluster.WaitStreamCurrent(t, stream)
	nc, err := nats.Connect(cluster.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	f := apptest.FoldLog(t, nc)
	load.CheckLog(t, f)
	apptest.VerifyLog(t, nc)
	natstest.Eventually(t, 30*time.Second, func() bool { return srv.Projector().Position() >= f.Head },
		"serve's read models reach the head of the log")
	load.CheckProjections(t, f)
}
