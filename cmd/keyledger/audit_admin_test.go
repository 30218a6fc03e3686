package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// TestAudit_AdminRequests: audit verify checks the signed requests serve
// keeps in the events admins cause, counts them, and names an event the
// holder of the ledger's signing key wrote as an admin's act without that
// admin's signature, although serve and every reader act on it.
func TestAudit_AdminRequests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startCheckpointedServer(t, dir)
	defer ts.Stop(t)

	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	leaked := ts.CreateKey(t, token, `{"name":"leaked"}`)
	kept := ts.CreateKey(t, token, `{"name":"kept"}`)
	mustAdmin(t, ts, "keys", "revoke", leaked.Key, "--reason", "leaked")
	mustAdmin(t, ts, "users", "disable", aliceID, "--reason", "audit test")
	mustAdmin(t, ts, "users", "enable", aliceID)
	mustAdmin(t, ts, "users", "revoke-sessions", aliceID, "--reason", "laptop stolen")

	verifyArgs := []string{"verify", "--state-dir", ""}
	var report audit.Report
	if err := json.Unmarshal([]byte(mustAudit(t, ts, append(verifyArgs, "--json")...)), &report); err != nil {
		t.Fatal(err)
	}
	if !report.OK() || report.AdminRequests != 4 {
		t.Fatalf("got problems %v, %d admin requests verified, want none and 4", report.Problems, report.AdminRequests)
	}
	wantContains(t, "verify", mustAudit(t, ts, verifyArgs...), "admin requests verified: 4", "OK: the log is intact")

	// The holder of the ledger's signing key revokes a key as admin root,
	// without root's signature.
	keyFile := ts.Config.SigningKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(dir, "ledger-ed25519.pem")
	}
	key, err := auth.LoadOrCreateSigningKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Ledger)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(key))
	if err != nil {
		t.Fatal(err)
	}
	events, last, err := store.Load(ctx, domain.CategoryKey, kept.Key)
	if err != nil || len(events) == 0 {
		t.Fatalf("Load(%s): %d events, %v", kept.Key, len(events), err)
	}
	prev := events[len(events)-1]
	forged := domain.Event{Type: domain.TypeKeyRevoked, Schema: domain.SchemaOf(domain.TypeKeyRevoked), Aggregate: kept.Key,
		Version: prev.Version + 1, Prev: prev.Hash, Time: time.Now().UTC(), Actor: "admin:root", Data: domain.KeyRevoked{Reason: "forged"}}
	seqs, err := store.Append(ctx, eventstore.Pending{Event: forged, ExpectedSeq: last})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	ts.CaughtUp(t)
	if got := ts.Validate(t, kept); got != 401 {
		t.Fatalf("the forged revocation is signed by the ledger's key: got %d, want serve to act on it (401)", got)
	}

	code, stdout, stderr := auditCLI(t, ts, verifyArgs...)
	wantExit(t, verifyArgs, code, stdout, stderr, 1)
	wantContains(t, "verify output", stdout,
		fmt.Sprintf("PROBLEM sequence %d (%s): key.revoked is recorded as admin:root's act but carries no kept request", seqs[0], kept.Key),
		"admin requests verified: 4")
	wantContains(t, "verify stderr", stderr, fmt.Sprintf("sequence %d", seqs[0]))
}
