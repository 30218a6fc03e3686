package eventstore_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestSubscribe_ConsumerNodeLoss loses the cluster node that hosts a
// subscription's consumer while the subscriber stays connected to another:
// the subscription must notice within a few seconds and carry on from
// where it was, not wait out the client's default heartbeat (10s without
// a single event reaching the read models).
func TestSubscribe_ConsumerNodeLoss(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	const resumeWithin = 5 * time.Second
	c := natstest.RunCluster(t, 3)
	ctx := t.Context()
	// The subscriber talks to node 0 alone: its connection stays up.
	nc, err := nats.Connect(c.URL(0), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	store, err := eventstore.New(ctx, nc, eventstore.WithReplicas(3), eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	writer, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(writer.Close)
	js, err := jetstream.New(writer)
	if err != nil {
		t.Fatal(err)
	}
	var published uint64
	publish := func() {
		t.Helper()
		natstest.Eventually(t, 30*time.Second, func() bool {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			ack, err := js.Publish(pctx, "keyledger.test.x", []byte("x"))
			if err == nil {
				published = ack.Sequence
			}
			return err == nil
		}, "a publish to the stream")
	}
	stream, err := js.Stream(ctx, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var seen []uint64
	delivered := func(seq uint64) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) > 0 && seen[len(seen)-1] >= seq
		}
	}
	// Subscribe until the consumer lands on a node other than the
	// subscriber's (placement is the cluster's choice).
	known := map[string]bool{}
	host := ""
	for attempt := 0; host == "" || host == c.Name(0); attempt++ {
		if attempt == 10 {
			t.Fatalf("the consumer was placed on %s, the subscriber's node, 10 times", c.Name(0))
		}
		sub, err := store.SubscribeRaw(ctx, 1, func(m eventstore.RawMessage) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, m.Seq)
		}, nil)
		if err != nil {
			t.Fatalf("SubscribeRaw: %v", err)
		}
		host = ""
		natstest.Eventually(t, 10*time.Second, func() bool {
			for name := range stream.ConsumerNames(ctx).Name() {
				if known[name] {
					continue
				}
				info, err := stream.Consumer(ctx, name)
				if err != nil || info.CachedInfo().Cluster == nil || info.CachedInfo().Cluster.Leader == "" {
					return false
				}
				known[name] = true
				host = info.CachedInfo().Cluster.Leader
			}
			return host != ""
		}, "the subscription's consumer and its node")
		if host == c.Name(0) {
			sub.Stop()
			mu.Lock()
			seen = nil // it may have delivered the genesis
			mu.Unlock()
			continue
		}
		t.Cleanup(sub.Stop)
	}
	for range 3 {
		publish()
	}
	natstest.Eventually(t, 10*time.Second, delivered(published), "the first messages delivered")

	c.Shutdown(c.Index(host))
	lost := time.Now()
	publish()
	natstest.Eventually(t, resumeWithin, delivered(published),
		"a message stored after "+host+", which hosted the consumer, went down")
	t.Logf("delivered %v after losing %s", time.Since(lost).Round(time.Millisecond), host)
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{1, 2, 3, 4, 5}; !slices.Equal(seen, want) { // the genesis, then 4 publishes
		t.Errorf("delivered sequences %v, want %v: each once, in order", seen, want)
	}
}
