package validator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/knownlog"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// scrape returns the value of the metric name on v.
func scrapeValue(t testing.TB, v *validator.Validator, name string) float64 {
	t.Helper()
	return metricValue(t, scrape(t, v), name)
}

// writeCheckpoint has the ledger checkpoint the whole log now.
func writeCheckpoint(t testing.TB, e *ledgerEnv) domain.Event {
	t.Helper()
	ctx := ledgertest.Context(t)
	w, err := checkpoint.Start(ctx, e.l.Store, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WaitFor(ctx, e.l.Head(t)); err != nil {
		t.Fatal(err)
	}
	cp, err := w.WriteNow(ctx)
	if err != nil {
		t.Fatalf("WriteNow: %v", err)
	}
	return cp
}

// TestValidator_CheckpointsWhileRunning: a running node checks each
// checkpoint the ledger signs against the events it applied and remembers
// the newest match, in its metrics and its state directory. A checkpoint
// signed with the ledger's key whose root is not that of the events the
// node applied - the node was fed a log the ledger did not sign - makes
// it refuse the log for good: 503, a log line, a metric.
func TestValidator_CheckpointsWhileRunning(t *testing.T) {
	t.Parallel()
	e := startLedger(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	dir := t.TempDir()
	v, logs := openValidator(t, natstest.Connect(t, e.srv), validator.WithStateDir(dir))
	awaitReady(t, v)
	wantAccepted(t, v, k, secret)

	good := writeCheckpoint(t, e)
	size := good.Data.(domain.LogCheckpoint).Size
	natstest.Eventually(t, awaitTimeout, func() bool {
		return scrapeValue(t, v, "keyledger_validator_checkpoint_size") == float64(size)
	}, "the node remembers the checkpoint")
	f, err := knownlog.Open(dir, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok, err := f.Load()
	if err != nil || !ok || rec.Checkpoint == nil || rec.Checkpoint.Size != size || rec.Checkpoint.Seq != good.Sequence {
		t.Fatalf("state: got %+v, %v, %v, want the checkpoint of size %d at %d", rec.Checkpoint, ok, err, size, good.Sequence)
	}
	if got := scrapeValue(t, v, "keyledger_validator_checkpoint_mismatch"); got != 0 {
		t.Fatalf("checkpoint_mismatch: got %v, want 0", got)
	}

	// A checkpoint signed with the ledger's key over another log.
	k2, secret2 := e.l.CreateKey(t, e.user.ID)
	bad := good
	bad.ID, bad.Version, bad.Prev, bad.Hash, bad.Sequence = "", good.Version+1, good.Hash, domain.Hash{}, 0
	bad.Data = domain.LogCheckpoint{Size: e.l.Head(t), Root: domain.Hash{0: 0xba, 31: 0xd0}}
	if _, err := e.l.Store.Append(ledgertest.Context(t), eventstore.Pending{Event: bad, ExpectedSeq: good.Sequence}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-v.Refusing():
	case <-time.After(awaitTimeout):
		t.Fatal("the node does not refuse a log that does not match a signed checkpoint")
	}
	for _, key := range []struct {
		k domain.Key
		s domain.Secret
	}{{k, secret}, {k2, secret2}} {
		if _, err := v.Validate(context.Background(), key.k.APIKey, key.s.Reveal()); !errors.Is(err, validator.ErrRollback) || domain.KindOf(err) != domain.Unavailable {
			t.Errorf("Validate after the mismatch: got %v, want ErrRollback (503)", err)
		}
	}
	if !strings.Contains(logs.String(), "refusing the event log") || !strings.Contains(logs.String(), "do not match a checkpoint") {
		t.Errorf("no loud log line about the mismatch:\n%s", logs.String())
	}
	for name, want := range map[string]float64{"keyledger_validator_checkpoint_mismatch": 1, "keyledger_validator_log_refused": 1,
		"keyledger_validator_checkpoint_size": float64(size)} {
		if got := scrapeValue(t, v, name); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	v.Close()
	if rec, _, _ := f.Load(); rec.Checkpoint == nil || rec.Checkpoint.Seq != good.Sequence {
		t.Errorf("state after the mismatch: got %+v, want still the checkpoint at %d", rec.Checkpoint, good.Sequence)
	}
}
