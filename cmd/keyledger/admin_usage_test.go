package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestAdminUsage: `keyledger admin usage` lists a key validated on a
// validation node, with its count, and refuses a bad --top.
func TestAdminUsage(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", "correct horse battery staple")
	token := ts.Login(t, "alice@example.com", "correct horse battery staple")
	k := ts.CreateKey(t, token, "")
	node := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0", Fleet: app.FleetConfig{NodeName: "cli-node"},
		UsageInterval: time.Hour, NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)}}}
	ctx := context.Background()
	if err := node.Open(ctx); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, time.Minute, func() bool { return node.Validator().Status().Ready }, "node ready")
	for range 3 {
		if _, err := node.Validator().Validate(ctx, k.Key, k.Secret); err != nil {
			t.Fatal(err)
		}
	}
	if err := node.Close(ctx); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, time.Minute, func() bool { _, ok := ts.Server.Usage().LastUsed(k.Key); return ok }, "usage folded")
	out := mustAdmin(t, ts, "usage", "--window", "2h", "--top", "5")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "API KEY") {
		t.Fatalf("got %q, want a header and one key", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 3 || f[0] != k.Key || f[1] != "3" || f[2] != "0" {
		t.Fatalf("got %q, want %s with 3 valid and 0 refused", lines[1], k.Key)
	}
	code, stdout, stderr := adminCLI(t, ts, "usage", "--top", "0")
	wantExit(t, []string{"admin", "usage", "--top", "0"}, code, stdout, stderr, 2)
}
