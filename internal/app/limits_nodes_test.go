package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/testclock"
)

// limitNodes starts three validation nodes on ts with validator
// credentials, sharing clock for windows and refills.
func limitNodes(t *testing.T, ts *apptest.Server, clock *testclock.Clock) []*app.Node {
	t.Helper()
	var nodes []*app.Node
	for i := range 3 {
		n := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0", MetricsAddr: "off",
			NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)},
			Fleet:      app.FleetConfig{NodeName: fmt.Sprintf("limits-%d", i+1), HeartbeatInterval: 50 * time.Millisecond},
			// A decision may wait long for the shared counters: on a
			// loaded machine a round trip past the default 250ms would
			// refuse requests (503) this test counts on.
			KeyLimits: app.KeyLimitsConfig{Clock: clock.Now, Timeout: 10 * time.Second}}}
		if err := n.Open(context.Background()); err != nil {
			t.Fatalf("open node %d: %v", i+1, err)
		}
		t.Cleanup(func() { n.Close(context.Background()) })
		nodes = append(nodes, n)
	}
	return nodes
}

// caughtUp waits until every node applied what serve has applied.
func caughtUp(t *testing.T, ts *apptest.Server, nodes []*app.Node) {
	t.Helper()
	head := ts.Projector().Status().Applied
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, n := range nodes {
		if err := n.Validator().WaitFor(ctx, head); err != nil {
			t.Fatalf("node %d applying up to %d: %v", i+1, head, err)
		}
	}
}

// hammerOutcome counts answers of /validate by status, and the cost of
// the accepted ones.
type hammerOutcome struct {
	mu       sync.Mutex
	byStatus map[int]int
	cost     atomic.Uint64
}

// hammer sends perNode requests to each node's /validate from four
// clients per node at once; cost(i) is the i-th request's cost.
func hammer(t *testing.T, nodes []*app.Node, k apptest.CreatedKey, perNode int, cost func(i int) int) *hammerOutcome {
	t.Helper()
	out := &hammerOutcome{byStatus: map[int]int{}}
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for _, n := range nodes {
		url := "http://" + n.HTTPAddr() + "/validate"
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < perNode; i += 4 {
					req, _ := http.NewRequest("GET", url, nil)
					req.Header.Set("X-Api-Key", apptest.Base64(k.Key))
					req.Header.Set("X-Api-Secret", apptest.Base64(k.Secret))
					c := cost(i)
					req.Header.Set("X-Keyledger-Cost", strconv.Itoa(c))
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						out.cost.Add(uint64(c))
					}
					out.mu.Lock()
					out.byStatus[resp.StatusCode]++
					out.mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return out
}

// TestLimits_ThreeNodes: three validation nodes hammered at once over
// HTTP on one key. A rate limit of 100 an hour accepts at most 100 across
// the nodes in each window (and at least 90 with demand well above it);
// a PATCH of the limit, confirmed by every node with ?wait=nodes, holds
// the next window to the new limit. Credits of 1,000 spent at costs 1 to
// 3 over 3,000 attempts are never overdrawn, and once the nodes close
// (giving back what they hold) the key view shows exactly what was not
// spent.
func TestLimits_ThreeNodes(t *testing.T) {
	t.Parallel()
	clock := testclock.New(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.KeyLimits = app.KeyLimitsConfig{Clock: clock.Now, Timeout: 10 * time.Second}
		c.Fleet = app.FleetConfig{NodeName: "serve:limits", HeartbeatInterval: 50 * time.Millisecond, Liveness: time.Minute,
			WaitTimeout: 20 * time.Second}
	})
	defer ts.Stop(t)
	nodes := limitNodes(t, ts, clock)
	ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	rate := ts.CreateKey(t, token, `{"name":"rate","rate_limit":{"limit":100,"window":"1h"}}`)
	credits := ts.CreateKey(t, token, `{"name":"credits","credits":{"remaining":1000}}`)
	caughtUp(t, ts, nodes)

	for w := range 2 {
		got := hammer(t, nodes, rate, 200, func(int) int { return 1 })
		ok, limited := got.byStatus[http.StatusOK], got.byStatus[http.StatusTooManyRequests]
		t.Logf("window %d: %v", w, got.byStatus)
		if ok > 100 || ok < 90 || ok+limited != 600 {
			t.Errorf("window %d: %d accepted and %d refused with 429 of 600, want 90 to 100 accepted and the rest 429", w, ok, limited)
		}
		clock.Advance(time.Hour)
	}

	t.Run("PatchedLimitOnEveryNode", func(t *testing.T) {
		r := ts.Do(t, "PATCH", "/api-keys/"+rate.Key+"?wait=nodes", `{"rate_limit":{"limit":10,"window":"1h"}}`,
			"Authorization", "Bearer "+token, "Content-Type", "application/json")
		apptest.WantStatus(t, r, http.StatusOK)
		if got := r.Header.Get("Keyledger-Nodes-Applied"); got != "4/4" {
			t.Fatalf("PATCH ?wait=nodes: Keyledger-Nodes-Applied %q, want 4/4", got)
		}
		got := hammer(t, nodes, rate, 50, func(int) int { return 1 })
		if ok := got.byStatus[http.StatusOK]; ok > 10 || ok < 9 {
			t.Errorf("after the PATCH: %d accepted across the nodes, want 9 to 10 (limit 10): %v", ok, got.byStatus)
		}
	})

	t.Run("Credits", func(t *testing.T) {
		got := hammer(t, nodes, credits, 1000, func(i int) int { return 1 + i%3 })
		spent := got.cost.Load()
		t.Logf("credits: %v, accepted cost %d", got.byStatus, spent)
		if spent > 1000 || spent < 900 {
			t.Fatalf("accepted cost %d of 1000 credits, want 900 to 1000 and never more", spent)
		}
		for _, n := range nodes {
			if err := n.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		view := ts.Do(t, "GET", "/api-keys/"+credits.Key, "", "Authorization", "Bearer "+token).JSON(t)
		remaining := view["credits"].(map[string]any)["remaining"].(float64)
		if uint64(remaining)+spent != 1000 {
			t.Errorf("key view: %v credits remaining after %d spent, want %d", remaining, spent, 1000-spent)
		}
	})
}
