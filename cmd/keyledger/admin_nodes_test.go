package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
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
