package ledger_test

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
	"github.com/keyledger/keyledger/projections"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestService_NotInForce is the silent revocation failure: the read models
// no longer trust the key the ledger signs with (its key was retired while
// it kept running; before the trust chain, an attacker replaced the
// trusted keys), so they skip the ledger's own events. Every command must
// then fail as Internal and say why in the log; a revocation that answers
// success while the key stays valid is the attack.
func TestService_NotInForce(t *testing.T) {
	t.Parallel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	// The read models trust testkeys.Ledger() alone.
	l := ledgertest.New(t, nc, eventstore.WithMemoryStorage(), eventstore.WithTrustedKeys(testkeys.LedgerPublic()))
	alice := l.Register(t)
	key, secret := l.CreateKey(t, alice.ID)

	store := l.RetiredWriter(t, testkeys.Key("untrusted ledger"), eventstore.WithMemoryStorage())
	passwords, err := auth.NewPasswords(auth.Argon2Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	svc, err := ledger.New(ledger.Config{Log: store, Progress: l.Projector, Keys: l.Keys, Users: l.Users, DataKeys: l.DataKeys,
		Passwords: passwords, Throttle: auth.NewThrottle(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}

	wantNotInForce := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("got success, want an Internal error: the event is in force nowhere")
		}
		if got := domain.KindOf(err); got != domain.Internal {
			t.Fatalf("got %v (%v), want %v", got, err, domain.Internal)
		}
		if !strings.Contains(err.Error(), "was not applied by the read models") {
			t.Errorf("got %q, want it to say the event was not applied", err)
		}
		if got := domain.MessageOf(err); got != "internal error" {
			t.Errorf("client message: got %q, want %q", got, "internal error")
		}
	}

	t.Run("RevokeKey", func(t *testing.T) {
		err := svc.RevokeKey(ledgertest.Context(t), ledger.RevokeKey{UserID: alice.ID, APIKey: key.APIKey})
		wantNotInForce(t, err)
		if res := l.Lookup.Check(key.APIKey, secret, time.Now()); !res.OK {
			t.Errorf("Check after the failed revocation: got %q, want the key still valid (nothing was applied)", res.Reason)
		}
		seq := l.Head(t)
		if log := logs.String(); !strings.Contains(log, "event at sequence "+strconv.FormatUint(seq, 10)+" was not applied by the read models") ||
			!strings.Contains(log, "is not trusted at sequence") {
			t.Errorf("log: got %q, want a line naming sequence %d and the reason", log, seq)
		}
	})

	t.Run("CreateKey", func(t *testing.T) {
		_, _, err := svc.CreateKey(ledgertest.Context(t), ledger.CreateKey{UserID: alice.ID, Name: "never in force"})
		wantNotInForce(t, err)
	})

	t.Run("RegisterUser", func(t *testing.T) {
		_, err := svc.RegisterUser(ledgertest.Context(t), ledger.RegisterUser{Email: "mallory@example.com", Password: password})
		wantNotInForce(t, err)
	})

	t.Run("TrustedWriterStillSucceeds", func(t *testing.T) {
		k, _ := l.CreateKey(t, alice.ID)
		if err := l.Service.RevokeKey(ledgertest.Context(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
			t.Errorf("RevokeKey by the trusted ledger: got %v, want nil", err)
		}
	})
}

var _ ledger.Progress = (*projections.Projector)(nil)
