package app_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/knownlog"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// startServeOn opens serve on the test's NATS server with its data in dir
// (no checkpoints of its own: the test writes them) and returns it with a
// stop that may be called more than once.
func startServeOn(t *testing.T, e *trustEnv, dir string) (*apptest.Server, func(), error) {
	t.Helper()
	logs := &apptest.SyncBuffer{}
	s := &app.Server{
		Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSURL: e.srv.ClientURL(),
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if err := s.Open(context.Background()); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
		return nil, nil, err
	}
	ts := &apptest.Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: logs}
	var once sync.Once
	stop := func() { once.Do(func() { ts.Stop(t) }) }
	t.Cleanup(stop)
	natstest.Eventually(t, 30*time.Second, s.Ready, "serve ready")
	return ts, stop, nil
}

// TestTrustAttack_RestoredBackup: the NATS servers' disk is restored from
// a backup taken before a revocation (a VM snapshot or disk backup brought
// back, by accident or by whoever runs the NATS servers): the stream is
// the same one, with its creation time, ending before the revocation; the
// attacker pads it with junk past the sequence nodes applied. A
// validation node and serve, restarted with their state directories,
// refuse the log: each remembers the checkpoint after the revocation that
// it verified while running, and the restored log has none that recent.
// (Before, a node remembered only the checkpoint it found at its start,
// older than the backup, and the revoked key validated again.)
func TestTrustAttack_RestoredBackup(t *testing.T) {
	storeDir := t.TempDir()
	e := &trustEnv{}
	serveDir, stateDir := t.TempDir(), t.TempDir()
	// start runs the NATS server on storeDir and serve on it.
	start := func() (*apptest.Server, func()) {
		t.Helper()
		e.srv = natstest.RunServerAt(t, storeDir)
		var err error
		if e.js, err = jetstream.New(natstest.Connect(t, e.srv)); err != nil {
			t.Fatal(err)
		}
		ts, stop, err := startServeOn(t, e, serveDir)
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
		e.ts = ts
		return ts, stop
	}
	stopNATS := func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}

	ts, stopServe := start()
	var err error
	if e.ledger, err = auth.LoadOrCreateSigningKey(filepath.Join(serveDir, "ledger-ed25519.pem")); err != nil {
		t.Fatal(err)
	}
	e.ledgerPub = e.ledger.Public().(ed25519.PublicKey)
	ts.Register(t, "victim@example.com", apptest.Password)
	token := ts.Login(t, "victim@example.com", apptest.Password)
	leaked := ts.CreateKey(t, token, `{"name":"leaked"}`)
	e.writeCheckpoint(t)
	node := e.openValidator(t, validator.WithStateDir(stateDir))
	if !e.validOn(t, node, leaked) {
		t.Fatal("the key does not validate before its revocation")
	}
	node.Close()
	stopServe()
	stopNATS()
	backup := t.TempDir()
	if err := os.CopyFS(backup, os.DirFS(storeDir)); err != nil {
		t.Fatalf("the backup of the NATS server's disk: %v", err)
	}

	// Back up: the node starts with the checkpoint above as the newest,
	// then sees the revocation and a checkpoint after it.
	ts, stopServe = start()
	token = ts.Login(t, "victim@example.com", apptest.Password)
	node = e.openValidator(t, validator.WithStateDir(stateDir))
	apptest.WantStatus(t, ts.Do(t, "DELETE", "/api-keys/"+leaked.Key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	e.writeCheckpoint(t) // covers the revocation
	if e.validOn(t, node, leaked) {
		t.Fatal("the revoked key validates")
	}
	head := e.head(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ts.Projector().WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	node.Close()
	stopServe()
	stopNATS()

	// The disk comes back from the backup; the attacker pads the stream.
	if err := os.RemoveAll(storeDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(storeDir, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	e.srv = natstest.RunServerAt(t, storeDir)
	if e.js, err = jetstream.New(natstest.Connect(t, e.srv)); err != nil {
		t.Fatal(err)
	}
	if got := e.head(t); got >= head {
		t.Fatalf("the restored stream ends at %d, want before %d", got, head)
	}
	for e.head(t) <= head { // so the log no longer ends before what nodes applied
		if _, err := e.js.Publish(ctx, "keyledger.key.padding", []byte("{}")); err != nil {
			t.Fatalf("the attacker pads the stream: %v", err)
		}
	}

	// Restarted with its state directory, the node refuses the log.
	v, err := validator.Open(ctx, natstest.Connect(t, e.srv), nil, validator.WithStateDir(stateDir))
	if err == nil {
		defer v.Close()
		valid := e.validOn(t, v, leaked)
		t.Fatalf("restarted node: accepts the restored log (the revoked key validates: %v), want ErrInconsistent", valid)
	}
	if !errors.Is(err, knownlog.ErrInconsistent) || domain.KindOf(err) != domain.Unavailable {
		t.Errorf("restarted node: got %v, want ErrInconsistent (Unavailable)", err)
	}
	// So does serve, restarted with its data directory.
	if ts, _, err := startServeOn(t, e, serveDir); err == nil {
		t.Errorf("restarted serve: accepts the restored log (the revoked key answers %d), want ErrInconsistent", ts.Validate(t, leaked))
	} else if !errors.Is(err, knownlog.ErrInconsistent) {
		t.Errorf("restarted serve: got %v, want ErrInconsistent", err)
	}
}

// TestTrustAttack_CheckpointMismatchWhileRunning: a checkpoint signed with
// the ledger's key whose root is not that of the log serve applied (serve
// was fed a log the ledger did not checkpoint) makes serve refuse the log
// while running: commands answer 503, validation too, and it says why.
func TestTrustAttack_CheckpointMismatchWhileRunning(t *testing.T) {
	e := startTrustEnv(t)
	e.ts.Register(t, "victim@example.com", apptest.Password)
	token := e.ts.Login(t, "victim@example.com", apptest.Password)
	k := e.ts.CreateKey(t, token, `{"name":"one"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.WithSigningKey(e.ledger))
	if err != nil {
		t.Fatal(err)
	}
	bad := domain.Event{Type: domain.TypeLogCheckpoint, Schema: domain.CurrentSchema, Aggregate: domain.CheckpointAggregate,
		Version: 1, Time: time.Now().UTC(), Actor: "system",
		Data: domain.LogCheckpoint{Size: e.head(t), Root: domain.Hash{0: 0xba, 31: 0xd0}}}
	if _, err := store.Append(ctx, eventstore.Pending{Event: bad}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, func() bool {
		return e.ts.Do(t, "POST", "/api-keys", `{"name":"after"}`, "Authorization", "Bearer "+token).Status == http.StatusServiceUnavailable
	}, "serve answers commands with 503")
	if got := e.ts.Validate(t, k); got != http.StatusServiceUnavailable {
		t.Errorf("serve's validation: got %d, want 503", got)
	}
	natstest.Eventually(t, 30*time.Second, func() bool {
		logs := e.ts.Logs.String()
		return strings.Contains(logs, "refusing the event log") && strings.Contains(logs, "do not match a checkpoint")
	}, "serve logs a refusal naming the checkpoint")
}
