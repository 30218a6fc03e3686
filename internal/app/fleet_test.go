package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
)

type listedNode struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	AppliedSeq uint64 `json:"applied_seq"`
	Lag        uint64 `json:"lag"`
	Live       bool   `json:"live"`
}

// adminNodes returns GET /admin/nodes.
func adminNodes(t *testing.T, ts *apptest.Server, k apptest.AdminKey) (head uint64, nodes map[string]listedNode) {
	t.Helper()
	r := ts.AdminDo(t, k, "GET", "/admin/nodes", "")
	if r.Status != 200 {
		t.Fatalf("GET /admin/nodes: got %d %s, want 200", r.Status, r.Body)
	}
	var out struct {
		Head  uint64       `json:"head"`
		Nodes []listedNode `json:"nodes"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	nodes = map[string]listedNode{}
	for _, n := range out.Nodes {
		nodes[n.Name] = n
	}
	return out.Head, nodes
}

// TestFleet_WaitNodes: with three validation nodes, a revocation asked
// with ?wait=nodes answers only once all of them (and serve) applied it:
// the key is refused on each right after the answer. A node cut off from
// NATS while live leaves the next one at 202 naming it, and once silent
// for the liveness window it no longer counts.
func TestFleet_WaitNodes(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Now())
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		// A long liveness window: the node cut off stays live until the
		// test moves the clock past it.
		c.Fleet = app.FleetConfig{NodeName: "serve:test", HeartbeatInterval: 50 * time.Millisecond,
			Liveness: time.Minute, WaitTimeout: 2 * time.Second, Clock: clock.Now}
	})
	defer ts.Stop(t)
	admin := ts.RootAdmin(t)
	proxy := natstest.StartProxy(t, strings.TrimPrefix(ts.NATSURL(), "nats://"))
	var nodes []*app.Node
	for i, name := range []string{"node-1", "node-2", "node-3"} {
		url := ts.NATSURL()
		if i == 2 {
			url = proxy.URL()
		}
		n := &app.Node{Config: app.NodeConfig{NATSURL: url, HTTPAddr: "127.0.0.1:0",
			NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)},
			Signed:     app.SignedRequestsConfig{ReplayCache: "shared"},
			Fleet:      app.FleetConfig{NodeName: name, HeartbeatInterval: 50 * time.Millisecond}}}
		if err := n.Open(context.Background()); err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		defer n.Close(context.Background())
		nodes = append(nodes, n)
	}
	ts.Register(t, "alice@example.com", "correct horse battery staple")
	token := ts.Login(t, "alice@example.com", "correct horse battery staple")
	keys := []apptest.CreatedKey{ts.CreateKey(t, token, ""), ts.CreateKey(t, token, ""), ts.CreateKey(t, token, "")}
	natstest.Eventually(t, 10*time.Second, func() bool {
		_, listed := adminNodes(t, ts, admin)
		for _, name := range []string{"serve:test", "node-1", "node-2", "node-3"} {
			if !listed[name].Live {
				return false
			}
		}
		return true
	}, "serve and three nodes listed live")
	for i, n := range nodes {
		natstest.Eventually(t, 10*time.Second, func() bool {
			_, err := n.Validator().Validate(context.Background(), keys[0].Key, keys[0].Secret)
			return err == nil
		}, fmt.Sprintf("the key valid on node-%d before the revocation", i+1))
	}

	t.Run("BadWaitRefusedBeforeTheCommand", func(t *testing.T) {
		r := ts.Do(t, "DELETE", "/api-keys/"+keys[0].Key+"?wait=all", "", apptest.Bearer(token)...)
		if r.Status != 400 {
			t.Fatalf("got %d %s, want 400", r.Status, r.Body)
		}
		// Someone else's key stays a 404, answered at once with no wait.
		ts.Register(t, "mallory@example.com", "correct horse battery staple")
		mallory := ts.Login(t, "mallory@example.com", "correct horse battery staple")
		if r := ts.Do(t, "DELETE", "/api-keys/"+keys[0].Key+"?wait=nodes", "", apptest.Bearer(mallory)...); r.Status != 404 ||
			r.Header.Get("Keyledger-Nodes-Applied") != "" {
			t.Fatalf("another user's key with ?wait=nodes: got %d %q, want 404 without a count", r.Status, r.Header.Get("Keyledger-Nodes-Applied"))
		}
		if r := ts.Do(t, "GET", "/api-keys/"+keys[0].Key, "", apptest.Bearer(token)...); r.JSON(t)["status"] != "active" {
			t.Fatalf("the key after a refused wait: %s, want active", r.Body)
		}
	})

	t.Run("EveryNodeApplied", func(t *testing.T) {
		r := ts.Do(t, "DELETE", "/api-keys/"+keys[0].Key+"?wait=nodes", "", apptest.Bearer(token)...)
		if r.Status != 204 || r.Header.Get("Keyledger-Nodes-Applied") != "4/4" {
			t.Fatalf("got %d %q %s, want 204 with 4/4", r.Status, r.Header.Get("Keyledger-Nodes-Applied"), r.Body)
		}
		// Right after the answer, with no waiting: refused on every node.
		for i, n := range nodes {
			if _, err := n.Validator().Validate(context.Background(), keys[0].Key, keys[0].Secret); err == nil {
				t.Errorf("node-%d accepts the key revoked with ?wait=nodes", i+1)
			}
		}
	})

	t.Run("NodeCutOff", func(t *testing.T) {
		proxy.Cut()
		r := ts.Do(t, "POST", "/api-keys/"+keys[1].Key+"/disable?wait=nodes", "", apptest.Bearer(token)...)
		if r.Status != 202 || r.Header.Get("Keyledger-Nodes-Applied") != "3/4" {
			t.Fatalf("got %d %q %s, want 202 with 3/4", r.Status, r.Header.Get("Keyledger-Nodes-Applied"), r.Body)
		}
		body := r.JSON(t)
		pending, _ := body["pending_nodes"].([]any)
		if len(pending) != 1 || pending[0] != "node-3" || body["nodes_applied"] != "3/4" {
			t.Fatalf("got %s, want node-3 pending", r.Body)
		}
		if m := ts.Metrics(t); strings.Contains(m, "\nkeyledger_fleet_max_lag 0\n") || !strings.Contains(m, "\nkeyledger_fleet_live_nodes 4\n") {
			t.Errorf("metrics while node-3 is behind: want 4 live nodes and a lag; got\n%s", m)
		}
		// The command itself is in force: the key is disabled.
		if r := ts.Do(t, "GET", "/api-keys/"+keys[1].Key, "", apptest.Bearer(token)...); r.JSON(t)["status"] != "disabled" {
			t.Fatalf("the key after a 202: %s, want disabled", r.Body)
		}
	})

	t.Run("SilentNodeDropsOut", func(t *testing.T) {
		clock.Advance(2 * time.Minute)
		natstest.Eventually(t, 10*time.Second, func() bool {
			_, listed := adminNodes(t, ts, admin)
			return listed["node-1"].Live && listed["node-2"].Live && listed["serve:test"].Live &&
				!listed["node-3"].Live && listed["node-3"].Name == "node-3"
		}, "node-3 listed as not live, the others live")
		head, listed := adminNodes(t, ts, admin)
		if n := listed["node-3"]; n.Lag == 0 || n.Lag != head-n.AppliedSeq {
			t.Errorf("node-3: got lag %d (applied %d, head %d), want behind", n.Lag, n.AppliedSeq, head)
		}
		r := ts.Do(t, "POST", "/api-keys/"+keys[2].Key+"/regenerate?wait=nodes", "{}", apptest.Bearer(token)...)
		if r.Status != 200 || r.Header.Get("Keyledger-Nodes-Applied") != "3/3" || r.JSON(t)["secret"] == "" {
			t.Fatalf("got %d %q %s, want 200 with 3/3", r.Status, r.Header.Get("Keyledger-Nodes-Applied"), r.Body)
		}
		natstest.Eventually(t, 10*time.Second, func() bool {
			return strings.Contains(ts.Metrics(t), "\nkeyledger_fleet_live_nodes 3\n")
		}, "keyledger_fleet_live_nodes 3")
		names := slices.Sorted(func(yield func(string) bool) {
			for name := range listed {
				if !yield(name) {
					return
				}
			}
		})
		if !slices.Equal(names, []string{"node-1", "node-2", "node-3", "serve:test"}) {
			t.Errorf("listed %v", names)
		}
	})
}
