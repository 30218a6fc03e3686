package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// TestAdmin_Integrity: admin integrity --verify waits for a verification
// of the whole log and prints its verdict with the trust root; once a
// message the ledger did not sign is in the log, the verdict names it and
// the command exits 5.
func TestAdmin_Integrity(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.VerifyInterval = -1 })
	defer ts.Stop(t)
	before := mustAdmin(t, ts, "integrity")
	if !strings.Contains(before, "trust root: sha256:") || !strings.Contains(before, "verification: never") {
		t.Errorf("admin integrity before any verification: %q", before)
	}
	out := mustAdmin(t, ts, "integrity", "--verify")
	if !strings.Contains(out, "verification: ok at ") {
		t.Fatalf("admin integrity --verify on a clean log: %q", out)
	}

	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, "keyledger.user.usr_01JH6Z3Q8X4N6V2R9T5M7K3B8Y",
		[]byte(`{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B8Y","type":"user.disabled","schema":1,"aggregate":"usr_01JH6Z3Q8X4N6V2R9T5M7K3B8Y","version":1,"time":"2026-11-01T00:00:00Z","actor":"admin:root","data":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"integrity", "--verify"}
	code, stdout, stderr := adminCLI(t, ts, args...)
	wantExit(t, append([]string{"admin"}, args...), code, stdout, stderr, 5)
	if !strings.Contains(stdout, "verification: failed") || !strings.Contains(stdout, fmt.Sprintf("problem: sequence %d", ack.Sequence)) {
		t.Errorf("admin integrity --verify after a forged message at %d: %q", ack.Sequence, stdout)
	}
}
