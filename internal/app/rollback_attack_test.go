package app_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/knownlog"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// rebuild does what `nats stream rm` + `nats stream add` + re-publishing
// does: it deletes the stream, creates it again with the same
// configuration and re-publishes the ledger's own signed messages, headers
// and data as stored, except those keep refuses.
func (e *trustEnv) rebuild(t *testing.T, keep func(subject string, data []byte) bool) {
	t.Helper()
	natstest.RewriteStream(t, natstest.Connect(t, e.srv), eventstore.DefaultStream,
		func(m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg {
			if !keep(m.Subject, m.Data) {
				return nil
			}
			return m
		})
}

// withoutRevocationsOrCheckpoints keeps every message but key.revoked
// events and checkpoints.
func withoutRevocationsOrCheckpoints(subject string, data []byte) bool {
	if strings.HasPrefix(subject, "keyledger.log.") {
		return false
	}
	e, err := domain.DecodeEvent(data)
	return err != nil || e.Type != domain.TypeKeyRevoked
}

func (e *trustEnv) trustRoot(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	root, _ := store.TrustRoot()
	if !strings.HasPrefix(root, eventstore.TrustRootPrefix) {
		t.Fatalf("trust root %q", root)
	}
	return root
}

func (e *trustEnv) writeCheckpoint(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.WithSigningKey(e.ledger))
	if err != nil {
		t.Fatal(err)
	}
	w, err := checkpoint.Start(ctx, store, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WaitFor(ctx, e.head(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteNow(ctx); err != nil {
		t.Fatalf("WriteNow: %v", err)
	}
}

// openValidatorErr opens a validation node and returns Open's error.
func (e *trustEnv) openValidatorErr(t *testing.T, opts ...validator.Option) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := validator.Open(ctx, natstest.Connect(t, e.srv), nil, opts...)
	if err == nil {
		v.Close()
	}
	return err
}

// auditCheck is what `audit verify` does with its state directory before
// it verifies: the log must extend the one it verified last time.
func (e *trustEnv) auditCheck(t *testing.T, f *knownlog.File, save bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.ReadOnly())
	if err != nil {
		return err
	}
	known, ok, err := f.Load()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := knownlog.Check(ctx, store, known, ok)
	if err == nil && save {
		info, ierr := store.Info(ctx)
		if ierr != nil {
			t.Fatal(ierr)
		}
		rec.Applied = info.LastSeq
		if err := f.Save(rec); err != nil {
			t.Fatal(err)
		}
	}
	return err
}

// TestTrustAttack_Rebuild: the attacker deletes the stream and rebuilds it
// from the ledger's own signed messages minus a revocation and the
// checkpoints. A running validator and serve fail closed, a validator
// restarted with its state directory refuses the log (pinned or not), and
// the auditor's remembered checkpoint catches it; then a forged genesis on
// a new stream is refused by pinned and by state-directory nodes.
func TestTrustAttack_Rebuild(t *testing.T) {
	e := startTrustEnv(t)
	e.ts.Register(t, "victim@example.com", apptest.Password)
	token := e.ts.Login(t, "victim@example.com", apptest.Password)
	leaked := e.ts.CreateKey(t, token, `{"name":"leaked"}`)
	e.ts.CreateKey(t, token, `{"name":"kept"}`)
	root := e.trustRoot(t)
	e.writeCheckpoint(t)

	running := e.openValidator(t)
	stateDir := t.TempDir()
	stateful := e.openValidator(t, validator.WithStateDir(stateDir), validator.WithTrustRoot(root))
	auditState, err := knownlog.Open(t.TempDir(), eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.auditCheck(t, auditState, true); err != nil {
		t.Fatalf("audit before the attack: %v", err)
	}

	apptest.WantStatus(t, e.ts.Do(t, "DELETE", "/api-keys/"+leaked.Key, "", "Authorization", "Bearer "+token), http.StatusNoContent)
	for name, v := range map[string]*validator.Validator{"running": running, "stateful": stateful} {
		if e.validOn(t, v, leaked) {
			t.Fatalf("validator %s: the revoked key validates before the attack", name)
		}
	}
	stateful.Close() // records how far it applied the log
	if err := e.auditCheck(t, auditState, true); err != nil {
		t.Fatalf("audit after the revocation: %v", err)
	}

	e.rebuild(t, withoutRevocationsOrCheckpoints)

	// The running validator notices the swap and fails closed.
	natstest.Eventually(t, 30*time.Second, func() bool { return running.Refused() != nil }, "running validator refuses the log")
	if _, err := running.Validate(context.Background(), leaked.Key, leaked.Secret); !errors.Is(err, validator.ErrRollback) || domain.KindOf(err) != domain.Unavailable {
		t.Errorf("running validator: the revoked key got %v, want ErrRollback (503)", err)
	}
	rec := httptestDo(t, running.Handler(), leaked)
	if rec != http.StatusServiceUnavailable {
		t.Errorf("running validator over HTTP: %d, want 503", rec)
	}
	// serve stops acknowledging commands.
	natstest.Eventually(t, 30*time.Second, func() bool {
		return e.ts.Do(t, "POST", "/api-keys", `{"name":"after"}`, "Authorization", "Bearer "+token).Status == http.StatusServiceUnavailable
	}, "serve answers commands with 503")
	if got := e.ts.Validate(t, leaked); got == http.StatusOK {
		t.Errorf("serve: the revoked key validates (%d)", got)
	}
	if !strings.Contains(e.ts.Logs.String(), "refusing the event log") {
		t.Error("serve logged no refusal")
	}

	// Restarted with its state directory, pinned or not, a node refuses.
	if err := e.openValidatorErr(t, validator.WithStateDir(stateDir)); !errors.Is(err, knownlog.ErrRecreated) {
		t.Errorf("restarted validator with its state directory: got %v, want ErrRecreated", err)
	}
	if err := e.openValidatorErr(t, validator.WithStateDir(stateDir), validator.WithTrustRoot(root)); !errors.Is(err, knownlog.ErrRecreated) {
		t.Errorf("restarted pinned validator: got %v, want ErrRecreated", err)
	}
	// The auditor, from its remembered checkpoint and nothing else.
	if err := e.auditCheck(t, auditState, false); !errors.Is(err, knownlog.ErrRecreated) {
		t.Errorf("audit with its state: got %v, want ErrRecreated", err)
	}

	t.Run("ForgedGenesis", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.js.DeleteStream(ctx, eventstore.DefaultStream); err != nil {
			t.Fatal(err)
		}
		if _, err := eventstore.New(ctx, natstest.Connect(t, e.srv), eventstore.WithSigningKey(e.attacker)); err != nil {
			t.Fatalf("the attacker's genesis: %v", err)
		}
		if err := e.openValidatorErr(t, validator.WithTrustRoot(root)); !errors.Is(err, eventstore.ErrTrustRootMismatch) {
			t.Errorf("pinned validator: got %v, want ErrTrustRootMismatch", err)
		}
		if err := e.openValidatorErr(t, validator.WithStateDir(stateDir)); !errors.Is(err, knownlog.ErrTrustRootChanged) {
			t.Errorf("validator with its state directory: got %v, want ErrTrustRootChanged", err)
		}
		if err := e.auditCheck(t, auditState, false); !errors.Is(err, knownlog.ErrTrustRootChanged) {
			t.Errorf("audit with its state: got %v, want ErrTrustRootChanged", err)
		}
	})
}

// httptestDo asks h to validate k and returns the status.
func httptestDo(t *testing.T, h http.Handler, k apptest.CreatedKey) int {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/validate", nil)
	req.Header.Set("Authorization", "ApiKey "+base64.StdEncoding.EncodeToString([]byte(k.Key+":"+k.Secret)))
	h.ServeHTTP(rec, req)
	return rec.Code
}

// TestTrustAttack_Seal: the attacker seals the stream. serve answers
// commands with 503 and says why; a validator reports it.
func TestTrustAttack_Seal(t *testing.T) {
	e := startTrustEnv(t)
	e.ts.Register(t, "victim@example.com", apptest.Password)
	token := e.ts.Login(t, "victim@example.com", apptest.Password)
	v := e.openValidator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := e.js.Stream(ctx, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.Sealed = true
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("the attacker seals the stream: %v", err)
	}
	natstest.Eventually(t, 30*time.Second, func() bool {
		return e.ts.Do(t, "POST", "/api-keys", `{"name":"after"}`, "Authorization", "Bearer "+token).Status == http.StatusServiceUnavailable
	}, "serve answers commands with 503")
	if !strings.Contains(e.ts.Logs.String(), "sealed") {
		t.Error("serve logged nothing about the seal")
	}
	natstest.Eventually(t, 30*time.Second, func() bool { return v.Status().Sealed }, "validator reports the seal")
}

// TestKnownLog_Restarts: nodes restarted with their state directories on
// the log they read, grown and checkpointed meanwhile, start as before.
func TestKnownLog_Restarts(t *testing.T) {
	e := startTrustEnv(t)
	e.ts.Register(t, "alice@example.com", apptest.Password)
	token := e.ts.Login(t, "alice@example.com", apptest.Password)
	k := e.ts.CreateKey(t, token, `{"name":"one"}`)
	dir := t.TempDir()
	root := e.trustRoot(t)
	auditState, err := knownlog.Open(t.TempDir(), eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		v := e.openValidator(t, validator.WithStateDir(dir), validator.WithTrustRoot(root))
		if !e.validOn(t, v, k) {
			t.Fatalf("start %d: the key does not validate", i)
		}
		v.Close()
		if err := e.auditCheck(t, auditState, true); err != nil {
			t.Fatalf("audit run %d: %v", i, err)
		}
		k = e.ts.CreateKey(t, token, `{"name":"more"}`)
		e.writeCheckpoint(t)
	}
	known, ok, err := auditState.Load()
	if err != nil || !ok || known.Checkpoint == nil || known.TrustRoot != root {
		t.Fatalf("audit state: %+v, %v, %v; want a checkpoint and trust root %s", known, ok, err, root)
	}
}
