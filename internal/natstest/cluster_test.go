package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/natstest"
)

// TestCluster forms a three-node cluster, replicates a stream on it, and
// loses and restarts its leader: a new leader takes over, and the old one
// rejoins under its name and catches up with what was written without it.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	c := natstest.RunCluster(t, 3)
	if got := c.Len(); got != 3 {
		t.Fatalf("Len: got %d, want 3", got)
	}
	names := map[string]bool{}
	for i := range c.Len() {
		names[c.Name(i)] = true
		if got := c.Server(i).Name(); got != c.Name(i) {
			t.Errorf("node %d: server name %q, want %q", i, got, c.Name(i))
		}
		if got, want := c.Index(c.Name(i)), i; got != want {
			t.Errorf("Index(%q): got %d, want %d", c.Name(i), got, want)
		}
	}
	if len(names) != 3 {
		t.Fatalf("server names %v, want three distinct", names)
	}

	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	// publish stores one message, retrying while the stream has no leader.
	publish := func() {
		t.Helper()
		natstest.Eventually(t, 30*time.Second, func() bool {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := js.Publish(pctx, "t.x", []byte("x"))
			return err == nil
		}, "a publish to the stream")
	}
	for range 5 {
		publish()
	}
	if c.MetaLeader() < 0 {
		t.Fatal("MetaLeader: none after RunCluster")
	}
	leader := c.WaitStreamCurrent(t, "T")
	if got := c.StreamLeader("T"); got != leader {
		t.Fatalf("StreamLeader: got %d, want %d", got, leader)
	}
	follower := c.StreamFollower("T")
	if follower < 0 || follower == leader {
		t.Fatalf("StreamFollower: got %d (leader %d), want another replica", follower, leader)
	}

	// Leadership moves where it is asked to, and back.
	c.MoveStreamLeader(t, "T", follower)
	if got := c.StreamLeader("T"); got != follower {
		t.Fatalf("after MoveStreamLeader(%d): leader %d", follower, got)
	}
	c.MoveStreamLeader(t, "T", leader)

	c.Shutdown(leader)
	if c.Server(leader) != nil {
		t.Fatalf("Server(%d) after Shutdown: got a server, want nil", leader)
	}
	for range 5 {
		publish()
	}
	if got := c.WaitStreamCurrent(t, "T"); got == leader {
		t.Fatalf("the stopped node %s still leads", c.Name(leader))
	}

	c.Restart(t, leader)
	if got := c.Server(leader).Name(); got != c.Name(leader) {
		t.Fatalf("restarted node: name %q, want %q", got, c.Name(leader))
	}
	publish()
	// WaitStreamCurrent compares each replica's own last sequence: the
	// restarted node has caught up with what was written without it.
	c.WaitStreamCurrent(t, "T")
	// Its URL reaches it again, and the stream has all 11 messages on
	// three replicas.
	direct, err := nats.Connect(c.URL(leader))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	if got := direct.ConnectedServerName(); got != c.Name(leader) {
		t.Fatalf("URL(%d) reaches %s, want %s", leader, got, c.Name(leader))
	}
	djs, err := jetstream.New(direct)
	if err != nil {
		t.Fatal(err)
	}
	// Right after the restart the node may not answer stream info within
	// the API's timeout while the stream's leader settles: ask again.
	var info *jetstream.StreamInfo
	var lastErr error
	natstest.Eventually(t, time.Minute, func() bool {
		s, err := djs.Stream(ctx, "T")
		if err == nil {
			info, err = s.Info(ctx)
		}
		lastErr = err
		return err == nil
	}, "stream info through the restarted node")
	if info == nil {
		t.Fatal(lastErr)
	}
	if info.State.Msgs != 11 || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("after the restart: %d messages, replicas %+v; want 11 and 2 replicas", info.State.Msgs, info.Cluster.Replicas)
	}
}
