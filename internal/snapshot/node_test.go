package snapshot_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/snapshot"
	"github.com/keyledger/keyledger/internal/testkeys"
	"github.com/keyledger/keyledger/validator"
)

const awaitTimeout = 20 * time.Second

// env is a ledger with checkpoints and a snapshot writer on a real
// nats-server.
type env struct {
	srv    *server.Server
	l      *ledgertest.Ledger
	user   domain.User
	bucket *snapshot.Store
	writer *snapshot.Writer
}

func startEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	l := ledgertest.New(t, nc)
	ctx := ledgertest.Context(t)
	cw, err := checkpoint.Start(ctx, l.Store, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cw.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.SetUp(ctx, js, eventstore.DefaultStream); err != nil {
		t.Fatal(err)
	}
	bucket, err := snapshot.Open(ctx, js, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	w, err := snapshot.StartWriter(snapshot.WriterConfig{Log: l.Store, Projector: l.Projector, Lookup: l.Lookup,
		Checkpoints: cw, Store: bucket, Key: testkeys.Ledger(), Interval: time.Hour, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return &env{srv: srv, l: l, user: l.Register(t), bucket: bucket, writer: w}
}

// logBuffer collects log lines; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// openNode opens a validation node on e's log and waits until it is
// ready; it returns the node, how it started (the outcome label of
// keyledger_validator_snapshot_start) and its log.
func openNode(t *testing.T, e *env, opts ...validator.Option) (*validator.Validator, string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	v, err := validator.Open(ledgertest.Context(t), natstest.Connect(t, e.srv), slog.New(slog.NewTextHandler(logs, nil)), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(v.Close)
	natstest.Eventually(t, awaitTimeout, func() bool { return v.Status().Ready }, "node ready")
	families, err := v.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "keyledger_validator_snapshot_start" {
			for _, l := range f.GetMetric()[0].GetLabel() {
				if l.GetName() == "outcome" {
					return v, l.GetValue(), logs
				}
			}
		}
	}
	t.Fatal("no keyledger_validator_snapshot_start metric")
	return nil, "", nil
}

func wantValid(t *testing.T, v *validator.Validator, k domain.Key, secret domain.Secret, want bool, what string) {
	t.Helper()
	_, err := v.Validate(context.Background(), k.APIKey, secret.Reveal())
	switch {
	case want && err != nil:
		t.Errorf("%s: got %v, want the key accepted", what, err)
	case !want && !errors.Is(err, validator.ErrUnauthorized):
		t.Errorf("%s: got %v, want ErrUnauthorized", what, err)
	}
}

// TestSnapshot_StaleDoesNotUnrevoke: a node starts from a snapshot taken
// before a key was revoked and another created; the tail after the
// snapshot is applied before the node is ready, so the revoked key is
// refused from the first answer and the new one accepted.
func TestSnapshot_StaleDoesNotUnrevoke(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	before, beforeSecret := e.l.CreateKey(t, e.user.ID)
	kept, keptSecret := e.l.CreateKey(t, e.user.ID)
	info, err := e.writer.WriteNow(ledgertest.Context(t))
	if err != nil {
		t.Fatalf("WriteNow: %v", err)
	}
	revokedAt := e.l.Revoke(t, e.user.ID, before.APIKey)
	after, afterSecret := e.l.CreateKey(t, e.user.ID)
	if revokedAt <= info.Seq {
		t.Fatalf("revocation at %d, snapshot at %d: want the snapshot older", revokedAt, info.Seq)
	}
	for _, opts := range [][]validator.Option{nil, {validator.WithStateDir(t.TempDir())}} {
		v, outcome, logs := openNode(t, e, opts...)
		if outcome != snapshot.OutcomeLoaded {
			t.Fatalf("started %q, want from the snapshot; log:\n%s", outcome, logs)
		}
		if !strings.Contains(logs.String(), "starting from a snapshot") {
			t.Errorf("no log line of the start from a snapshot:\n%s", logs)
		}
		wantValid(t, v, before, beforeSecret, false, "key revoked after the snapshot")
		wantValid(t, v, kept, keptSecret, true, "key in the snapshot")
		wantValid(t, v, after, afterSecret, true, "key created after the snapshot")
		if got, want := v.Status().Keys, 3; got != want {
			t.Errorf("keys: got %d, want %d", got, want)
		}
	}
	// And once running, the node goes on following the log.
	v, _, _ := openNode(t, e)
	e.l.Revoke(t, e.user.ID, kept.APIKey)
	natstest.Eventually(t, awaitTimeout, func() bool {
		_, err := v.Validate(context.Background(), kept.APIKey, keptSecret.Reveal())
		return errors.Is(err, validator.ErrUnauthorized)
	}, "revocation after the start in force")
}

// TestSnapshot_Refused: a snapshot that does not verify against the log is
// not used - signed by a key the log does not trust, tampered with, of
// another log, beyond the end of the log, inconsistent with the checkpoint
// it names, of an unknown version; the node says why (log line, metric)
// and builds its lookup from the whole log instead, which is right.
func TestSnapshot_Refused(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	ctx := ledgertest.Context(t)
	revoked, revokedSecret := e.l.CreateKey(t, e.user.ID)
	kept, keptSecret := e.l.CreateKey(t, e.user.ID)
	good, err := e.writer.WriteNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.l.Revoke(t, e.user.ID, revoked.APIKey)
	data, err := e.bucket.Get(ctx, good.Name, snapshot.DefaultMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := snapshot.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	resign := func(edit func(*snapshot.Snapshot)) []byte {
		s := decoded
		s.Tree.Hashes = append([]domain.Hash(nil), s.Tree.Hashes...)
		s.Lookup = append([]byte(nil), s.Lookup...)
		edit(&s)
		return snapshot.Encode(s, testkeys.Ledger())
	}
	cases := []struct {
		name string
		data []byte
		want string // in the log line
	}{
		{"UnauthorizedSigner", func() []byte {
			return snapshot.Encode(decoded, testkeys.Key("intruder"))
		}(), "not signed by a ledger key trusted"},
		{"Tampered", func() []byte {
			b := append([]byte(nil), data...)
			b[len(b)/2] ^= 1 // inside the lookup: a key's bytes
			return b
		}(), "bad signature"},
		{"AnotherStream", resign(func(s *snapshot.Snapshot) { s.Created = s.Created.Add(time.Second) }), "another log"},
		{"BeyondTheLog", resign(func(s *snapshot.Snapshot) {
			s.Leaves = append(s.Leaves, make([]domain.Hash, 1000)...)
			s.Seq += 1000
		}), "beyond the end of the log"},
		{"NotTheCheckpointsTree", resign(func(s *snapshot.Snapshot) { s.Tree.Hashes[0][0] ^= 1 }), "inconsistent with the log's checkpoint"},
		{"ClaimsAnotherCheckpoint", resign(func(s *snapshot.Snapshot) { s.Checkpoint.Root[0] ^= 1 }),
			"inconsistent with the log's checkpoint"},
		{"UnknownVersion", func() []byte {
			b := append([]byte(nil), data...)
			b[7] = 3
			return b
		}(), "unknown format version"},
	}
	name := good.Seq
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The bad snapshot is the only one in the bucket.
			name += 10000
			if _, err := e.bucket.Put(ctx, snapshot.KindLookup, name, c.data); err != nil {
				t.Fatal(err)
			}
			if _, err := e.bucket.Prune(ctx, snapshot.KindLookup, 1); err != nil {
				t.Fatal(err)
			}
			v, outcome, logs := openNode(t, e)
			if outcome != snapshot.OutcomeRefused {
				t.Fatalf("started %q, want refused; log:\n%s", outcome, logs)
			}
			if !strings.Contains(logs.String(), "snapshot refused") || !strings.Contains(logs.String(), c.want) {
				t.Errorf("log: want a refusal saying %q, got\n%s", c.want, logs)
			}
			if !strings.Contains(logs.String(), "starting without a snapshot") {
				t.Errorf("log: want the fall back to the whole log, got\n%s", logs)
			}
			wantValid(t, v, revoked, revokedSecret, false, "revoked key")
			wantValid(t, v, kept, keptSecret, true, "kept key")
		})
	}
}

// TestSnapshot_NoneOrOff: without a bucket, with an empty one, or with
// snapshots turned off, a node reads the whole log and says so.
func TestSnapshot_NoneOrOff(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	k, secret := e.l.CreateKey(t, e.user.ID)
	v, outcome, _ := openNode(t, e)
	if outcome != snapshot.OutcomeNone {
		t.Errorf("empty bucket: started %q, want %q", outcome, snapshot.OutcomeNone)
	}
	wantValid(t, v, k, secret, true, "empty bucket")
	if _, err := e.writer.WriteNow(ledgertest.Context(t)); err != nil {
		t.Fatal(err)
	}
	v, outcome, _ = openNode(t, e, validator.WithoutSnapshot())
	if outcome != "not_tried" {
		t.Errorf("WithoutSnapshot: started %q, want not_tried", outcome)
	}
	wantValid(t, v, k, secret, true, "WithoutSnapshot")
	if _, err := e.writer.WriteNow(ledgertest.Context(t)); !errors.Is(err, snapshot.ErrNothingNew) {
		t.Errorf("WriteNow on an unchanged log: got %v, want ErrNothingNew", err)
	}

	srv := natstest.RunServer(t)
	l := ledgertest.New(t, natstest.Connect(t, srv))
	k, secret = l.CreateKey(t, l.Register(t).ID)
	v, outcome, _ = openNode(t, &env{srv: srv, l: l})
	if outcome != snapshot.OutcomeNoBucket {
		t.Errorf("no bucket: started %q, want %q", outcome, snapshot.OutcomeNoBucket)
	}
	wantValid(t, v, k, secret, true, "no bucket")
}

// TestSnapshot_Keep: the writer keeps the newest snapshots only.
func TestSnapshot_Keep(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	ctx := ledgertest.Context(t)
	var last snapshot.Info
	for range 3 {
		e.l.CreateKey(t, e.user.ID)
		var err error
		if last, err = e.writer.WriteNow(ctx); err != nil {
			t.Fatal(err)
		}
	}
	list, err := e.bucket.List(ctx, snapshot.KindLookup)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != last.Name {
		t.Errorf("bucket: got %+v, want only %s", list, last.Name)
	}
	if _, err := e.bucket.Get(ctx, last.Name, 10); !errors.Is(err, snapshot.ErrTooLarge) {
		t.Errorf("Get over the size limit: got %v, want ErrTooLarge", err)
	}
}

var _ io.Writer = (*logBuffer)(nil)
