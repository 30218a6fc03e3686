package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestAdmin_Nodes: admin nodes lists serve's own projector as a node, as
// a table and as JSON.
func TestAdmin_Nodes(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.Fleet.NodeName = "serve:cli" })
	defer ts.Stop(t)
	natstest.Eventually(t, 10*time.Second, func() bool { return len(ts.Fleet().Nodes()) == 1 }, "serve heard")
	out := mustAdmin(t, ts, "nodes")
	if !strings.HasPrefix(out, "NODE ") || !strings.Contains(out, "\nserve:cli ") || !strings.Contains(out, " yes ") {
		t.Errorf("admin nodes: got %q, want serve:cli listed live", out)
	}
	var list struct {
		Nodes []struct {
			Name string `json:"name"`
			Live bool   `json:"live"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(mustAdmin(t, ts, "nodes", "--json")), &list); err != nil || len(list.Nodes) != 1 ||
		list.Nodes[0].Name != "serve:cli" || !list.Nodes[0].Live {
		t.Errorf("admin nodes --json: got %+v, %v", list, err)
	}
}

// TestAdmin_WaitNodes: admin keys disable and revoke with --wait-nodes
// exit 0 once every live node applied them, and 4 naming a live node that
// did not confirm (the command in force all the same).
func TestAdmin_WaitNodes(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.Fleet = app.FleetConfig{NodeName: "serve:cli", Liveness: time.Hour, WaitTimeout: 200 * time.Millisecond}
	})
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	k := ts.CreateKey(t, token, "")
	natstest.Eventually(t, 10*time.Second, func() bool { return len(ts.Fleet().Nodes()) == 1 }, "serve heard")
	if out := mustAdmin(t, ts, "keys", "disable", k.Key, "--reason", "r", "--wait-nodes"); out != "disabled "+k.Key+"\n" {
		t.Errorf("disable --wait-nodes: got %q", out)
	}
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Validator)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("keyledger_fleet.stuck", []byte(`{"name":"stuck","version":"v0","applied_seq":1,"staleness_seconds":0}`)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, func() bool { return len(ts.Fleet().Nodes()) == 2 }, "stuck heard")
	code, _, stderr := adminCLI(t, ts, "keys", "revoke", k.Key, "--reason", "leaked", "--wait-nodes")
	if code != 4 || !strings.Contains(stderr, "stuck") || !strings.Contains(stderr, "1/2") {
		t.Errorf("revoke --wait-nodes with a stuck node: got exit %d (%s), want 4 naming it", code, stderr)
	}
	if got := ts.Validate(t, k); got != 401 {
		t.Errorf("after exit 4: validate got %d, want 401 (in force)", got)
	}
}
