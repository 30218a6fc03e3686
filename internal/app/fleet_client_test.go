package app_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestClient_WaitForNodes: with WithWaitForNodes, a command that a live
// node has not confirmed returns its result (the new secret) with a
// *NodesPendingError naming the node; AdminListNodes lists it.
func TestClient_WaitForNodes(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.Fleet = app.FleetConfig{NodeName: "serve:client", Liveness: time.Hour, WaitTimeout: 200 * time.Millisecond}
	})
	defer ts.Stop(t)
	ctx := context.Background()
	ts.CreateUser(t, "root@example.com", true)
	ts.CaughtUp(t)
	anon, err := client.New(ts.Base, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	session, err := anon.Login(ctx, "root@example.com", apptest.Password)
	if err != nil {
		t.Fatal(err)
	}
	c := anon.WithSession(session.Token)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	newName := "k2"
	// Only serve is live: the wait completes.
	natstest.Eventually(t, 10*time.Second, func() bool { return len(ts.Fleet().Nodes()) == 1 }, "serve heard")
	if _, err := c.EditKey(client.WithWaitForNodes(ctx), k.APIKey, client.KeyEdit{Name: &newName}, 0); err != nil {
		t.Fatalf("EditKey with only serve live: %v", err)
	}
	// A node that announces itself and never applies anything.
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Validator)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("keyledger_fleet.stuck", []byte(`{"name":"stuck","version":"v0","applied_seq":1,"staleness_seconds":0}`)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool {
		nodes, err := c.AdminListNodes(ctx)
		return err == nil && slices.ContainsFunc(nodes, func(n client.Node) bool { return n.Name == "stuck" && n.Live && n.Lag > 0 })
	}, "the stuck node listed live and behind")
	s, err := c.RegenerateSecret(client.WithWaitForNodes(ctx), k.APIKey)
	var pending *client.NodesPendingError
	if !errors.As(err, &pending) || pending.Applied != "1/2" || !slices.Equal(pending.Pending, []string{"stuck"}) {
		t.Fatalf("RegenerateSecret: got %v, want a NodesPendingError naming stuck", err)
	}
	if s.Secret == "" || s.APIKey != k.APIKey {
		t.Fatalf("RegenerateSecret: got %+v, want the new secret despite the pending node", s)
	}
	// Without the option nothing waits.
	if err := c.DisableKey(ctx, k.APIKey, "r"); err != nil {
		t.Fatalf("DisableKey: %v", err)
	}
}
