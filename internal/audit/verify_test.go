package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// history is a log written by a real ledger, with the stream sequences of
// the events the tests tamper with. Its layout:
//
//	 1-6   three users register (email.reserved, user.registered each)
//	 7-10  k1, k2 (u1), k3 (u2), k4 (u3) created
//	11     k1 secret regenerated
//	12     k1 revoked
//	13     checkpoint 1 (size 12)
//	14     k5 (u2) created
//	15-16  k3 secret regenerated twice
//	17     k2 revoked (its last event)
//	18     k6 (u3) created (its only event)
//	19     checkpoint 2 (size 18)
//	20     k7 (u1) created
//	21     k4 secret regenerated
type history struct {
	nc    *nats.Conn
	store *eventstore.Store // the ledger's own, writable
	users []domain.User
	keys  map[string]string // "k1" -> api key
	seq   map[string]uint64 // "k1.revoked" -> stream sequence
	cps   []domain.Event    // the checkpoints as stored
	head  uint64
}

// aggregates in a history: 3 users, 3 email reservations, 7 keys and the
// checkpoints.
const historyAggregates = 3 + 3 + 7 + 1 + 1 // users, emails, keys, checkpoints, trust

func newHistory(t *testing.T) *history {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	l := ledgertest.New(t, nc, eventstore.WithMemoryStorage())
	ctx := ledgertest.Context(t)
	h := &history{nc: nc, store: l.Store, keys: map[string]string{}, seq: map[string]uint64{}}
	w, err := checkpoint.Start(ctx, l.Store, nil, time.Hour)
	if err != nil {
		t.Fatalf("checkpoint.Start: %v", err)
	}
	defer w.Close()

	for range 3 {
		h.users = append(h.users, l.Register(t))
	}
	create := func(name string, owner int) {
		k, _ := l.CreateKey(t, h.users[owner].ID)
		h.keys[name] = k.APIKey
		h.seq[name+".created"] = l.Head(t)
	}
	regenerate := func(name string, owner int) {
		if _, err := l.Service.RegenerateSecret(ctx, ledger.RegenerateSecret{UserID: h.users[owner].ID, APIKey: h.keys[name]}); err != nil {
			t.Fatalf("RegenerateSecret(%s): %v", name, err)
		}
		h.seq[name+".regenerated"] = l.Head(t)
	}
	revoke := func(name string, owner int) {
		h.seq[name+".revoked"] = l.Revoke(t, h.users[owner].ID, h.keys[name])
	}
	checkpointNow := func() {
		head := l.Head(t)
		if err := w.WaitFor(ctx, head); err != nil {
			t.Fatalf("Writer.WaitFor(%d): %v", head, err)
		}
		if _, err := w.WriteNow(ctx); err != nil {
			t.Fatalf("WriteNow: %v", err)
		}
	}

	create("k1", 0)
	create("k2", 0)
	create("k3", 1)
	create("k4", 2)
	regenerate("k1", 0)
	revoke("k1", 0)
	checkpointNow()
	create("k5", 1)
	regenerate("k3", 1)
	regenerate("k3", 1)
	revoke("k2", 0)
	create("k6", 2)
	checkpointNow()
	create("k7", 0)
	regenerate("k4", 2)

	h.head = l.Head(t)
	if h.cps, err = l.Store.Checkpoints(ctx); err != nil {
		t.Fatalf("Checkpoints: %v", err)
	}
	// The layout the tests rely on.
	if h.head != 22 || len(h.cps) != 2 || h.cps[0].Sequence != 14 || h.cps[1].Sequence != 20 ||
		h.seq["k1.regenerated"] != 12 || h.seq["k2.revoked"] != 18 || h.seq["k6.created"] != 19 {
		t.Fatalf("unexpected history: head %d, checkpoints %v, sequences %v", h.head, h.cps, h.seq)
	}
	// Nothing follows the log from here on but the tests.
	l.Projector.Stop()
	return h
}

func (h *history) size(i int) uint64 { return h.cps[i].Data.(domain.LogCheckpoint).Size }

func (h *history) expectation(i int) *audit.Expectation {
	c := h.cps[i].Data.(domain.LogCheckpoint)
	return &audit.Expectation{Size: c.Size, Root: c.Root}
}

func (h *history) subject(key string) string {
	return h.store.Subject(domain.CategoryKey, h.keys[key])
}

// verify runs audit.Verify through a fresh read-only store, as an auditor
// would (and as it must after a rewrite: old handles name a deleted
// stream).
func verify(t *testing.T, nc *nats.Conn, expect *audit.Expectation, opts ...eventstore.Option) audit.Report {
	t.Helper()
	ctx := ledgertest.Context(t)
	store, err := eventstore.New(ctx, nc, append(opts, eventstore.ReadOnly())...)
	if err != nil {
		t.Fatalf("eventstore.New(ReadOnly): %v", err)
	}
	r, err := audit.Verify(ctx, store, expect, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// want is a problem a report must list: at seq, of aggregate (if set),
// with a What that contains every one of what.
type want struct {
	seq       uint64
	aggregate string
	what      []string
}

// checkProblems checks that r lists exactly the problems wanted, in order.
func checkProblems(t *testing.T, r audit.Report, wants ...want) {
	t.Helper()
	var got strings.Builder
	for _, p := range r.Problems {
		fmt.Fprintf(&got, "\n\t%s", p)
	}
	if len(r.Problems) != len(wants) {
		t.Fatalf("got %d problems, want %d:%s", len(r.Problems), len(wants), got.String())
	}
	for i, w := range wants {
		p := r.Problems[i]
		ok := p.Seq == w.seq && (w.aggregate == "" || p.Aggregate == w.aggregate)
		for _, s := range w.what {
			ok = ok && strings.Contains(p.What, s)
		}
		if !ok {
			t.Errorf("problem %d: got %q, want sequence %d (%s) saying %q; all:%s", i, p, w.seq, w.aggregate, w.what, got.String())
		}
	}
	if r.OK() != (len(wants) == 0) {
		t.Errorf("OK() = %v with %d problems", r.OK(), len(r.Problems))
	}
}

func stream(t *testing.T, nc *nats.Conn) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ledgertest.Context(t), eventstore.DefaultStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	return js, s
}

func getMsg(t *testing.T, nc *nats.Conn, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	_, s := stream(t, nc)
	m, err := s.GetMsg(ledgertest.Context(t), seq)
	if err != nil {
		t.Fatalf("GetMsg(%d): %v", seq, err)
	}
	return m
}

// publish stores a message straight in the stream, as anyone with publish
// rights could, and returns its sequence. Headers JetStream acts on are
// dropped (see republishable).
func publish(t *testing.T, nc *nats.Conn, subject string, data []byte, header nats.Header) uint64 {
	t.Helper()
	js, _ := stream(t, nc)
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range header {
		if republishable(k) {
			m.Header[k] = v
		}
	}
	ack, err := js.PublishMsg(ledgertest.Context(t), m)
	if err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
	return ack.Sequence
}

// republishable reports whether a stored header can be published again:
// not the expectations, message id and batch headers a publish acts on,
// nor those a direct get adds to describe the stored message.
func republishable(k string) bool {
	switch {
	case strings.HasPrefix(k, "Nats-Expected-"), strings.HasPrefix(k, "Nats-Batch-"), k == jetstream.MsgIDHeader:
		return false
	case k == jetstream.StreamHeader, k == jetstream.SequenceHeader, k == jetstream.TimeStampHeaer,
		k == jetstream.SubjectHeader, k == "Nats-Last-Sequence", k == "Nats-Num-Pending":
		return false
	}
	return true
}

// rewrite does what an attacker with JetStream admin rights can do despite
// deny_delete and deny_purge, which cannot be turned off: it reads every
// stored message, deletes the stream, recreates it with the same
// configuration, and republishes in order the messages keep accepts, each
// first changed by edit (if not nil). The rewritten messages get new
// sequences: 1 to the number kept.
func rewrite(t *testing.T, nc *nats.Conn, keep func(m *jetstream.RawStreamMsg) bool, edit func(m *jetstream.RawStreamMsg)) {
	t.Helper()
	rewriteStream(t, nc, nil, keep, edit)
}

// rewriteStream is rewrite with the new stream's configuration changed by
// config (if not nil), through natstest.RewriteStream.
func rewriteStream(t *testing.T, nc *nats.Conn, config func(*jetstream.StreamConfig),
	keep func(m *jetstream.RawStreamMsg) bool, edit func(m *jetstream.RawStreamMsg)) {
	t.Helper()
	var configure []func(*jetstream.StreamConfig)
	if config != nil {
		configure = append(configure, config)
	}
	natstest.RewriteStream(t, nc, eventstore.DefaultStream, func(m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg {
		if !keep(m) {
			return nil
		}
		if edit != nil {
			edit(m)
		}
		return m
	}, configure...)
}

// except keeps every message but those at seqs.
func except(seqs ...uint64) func(m *jetstream.RawStreamMsg) bool {
	return func(m *jetstream.RawStreamMsg) bool {
		for _, s := range seqs {
			if m.Sequence == s {
				return false
			}
		}
		return true
	}
}

func TestVerify_Untouched(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	store, err := eventstore.New(ledgertest.Context(t), h.nc, eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	var lastProgress [2]uint64
	r, err := audit.Verify(ledgertest.Context(t), store, nil, func(seq, last uint64) { lastProgress = [2]uint64{seq, last} })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	checkProblems(t, r)
	if r.Messages != h.head || r.LastSeq != h.head {
		t.Errorf("Messages %d, LastSeq %d, want %d", r.Messages, r.LastSeq, h.head)
	}
	if r.Checkpoints != 2 {
		t.Errorf("Checkpoints = %d, want 2", r.Checkpoints)
	}
	if r.Verified != h.size(1) {
		t.Errorf("Verified = %d, want the second checkpoint's size %d", r.Verified, h.size(1))
	}
	if r.Aggregates != historyAggregates {
		t.Errorf("Aggregates = %d, want %d", r.Aggregates, historyAggregates)
	}
	if lastProgress != [2]uint64{h.head, h.head} {
		t.Errorf("last progress %v, want [%d %d]", lastProgress, h.head, h.head)
	}
}

func TestVerify_Expectation(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	for i := range h.cps {
		t.Run(fmt.Sprintf("Checkpoint%d", i+1), func(t *testing.T) {
			r := verify(t, h.nc, h.expectation(i))
			checkProblems(t, r)
			if r.Verified != h.size(1) {
				t.Errorf("Verified = %d, want %d", r.Verified, h.size(1))
			}
		})
	}
	t.Run("WrongRoot", func(t *testing.T) {
		e := h.expectation(0)
		e.Root[0] ^= 1
		checkProblems(t, verify(t, h.nc, e), want{seq: e.Size, what: []string{"expected root", "rewritten"}})
	})
	t.Run("WholeLog", func(t *testing.T) {
		// The root of the whole log, computed apart from Verify and the
		// writer, is what an auditor keeps after a clean run.
		tree := checkpoint.NewTree()
		for seq := uint64(1); seq <= h.head; seq++ {
			m := getMsg(t, h.nc, seq)
			tree.Append(eventstore.LeafHash(m.Subject, m.Data))
		}
		checkProblems(t, verify(t, h.nc, &audit.Expectation{Size: h.head, Root: tree.Root()}))
	})
}

func TestVerify_Tampering(t *testing.T) {
	t.Parallel()
	const (
		cp1Seq, cp2Seq = 14, 20 // after the genesis at 1
	)

	t.Run("ForgedEvent", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// An unsigned revocation of u3's key, in the ledger's own format.
		data, err := domain.EncodeEvent(domain.Event{ID: "01JFORGED0000000000000000", Type: domain.TypeKeyRevoked,
			Schema: domain.CurrentSchema, Aggregate: h.keys["k4"], Version: 3, Time: time.Now(),
			Actor: h.users[2].ID, Data: domain.KeyRevoked{}})
		if err != nil {
			t.Fatal(err)
		}
		seq := publish(t, h.nc, h.subject("k4"), data, nil)
		r := verify(t, h.nc, nil)
		checkProblems(t, r, want{seq: seq, what: []string{"not written by the ledger", "missing or malformed signature"}})
		if p := r.Problems[0]; p.Subject != h.subject("k4") {
			t.Errorf("Subject = %q, want %q", p.Subject, h.subject("k4"))
		}
		if r.Verified != h.size(1) || r.Messages != h.head+1 {
			t.Errorf("Verified %d, Messages %d, want %d, %d", r.Verified, r.Messages, h.size(1), h.head+1)
		}
	})

	t.Run("AlteredPayload", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// u3's key handed to u1, the original signature kept.
		m := getMsg(t, h.nc, h.seq["k4.created"])
		altered := bytes.Replace(m.Data, []byte(h.users[2].ID), []byte(h.users[0].ID), 1)
		if bytes.Equal(altered, m.Data) {
			t.Fatalf("owner %s not in %s", h.users[2].ID, m.Data)
		}
		seq := publish(t, h.nc, m.Subject, altered, m.Header)
		checkProblems(t, verify(t, h.nc, nil),
			want{seq: seq, what: []string{"not written by the ledger", "bad signature"}})
	})

	t.Run("MovedToAnotherKey", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// k1's genuine revocation, signature and all, stored on k4's
		// subject: the signature covers the subject.
		m := getMsg(t, h.nc, h.seq["k1.revoked"])
		seq := publish(t, h.nc, h.subject("k4"), m.Data, m.Header)
		checkProblems(t, verify(t, h.nc, nil), want{seq: seq, what: []string{"not written by the ledger", "bad signature"}})
	})

	t.Run("AlteredInPlace", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		created, regenerated := h.seq["k3.created"], uint64(16) // k3's first regeneration
		rewrite(t, h.nc, except(), func(m *jetstream.RawStreamMsg) {
			if m.Sequence == created {
				altered := bytes.Replace(m.Data, []byte(`"test key"`), []byte(`"test kez"`), 1)
				if bytes.Equal(altered, m.Data) {
					t.Errorf("key name not in %s", m.Data)
				}
				m.Data = altered
			}
		})
		r := verify(t, h.nc, nil)
		checkProblems(t, r,
			want{seq: created, what: []string{"not written by the ledger", "bad signature"}},
			want{seq: cp1Seq, aggregate: "checkpoint", what: []string{"does not match the signed root"}},
			want{seq: regenerated, aggregate: h.keys["k3"], what: []string{"version 2 after version 0"}},
			want{seq: cp2Seq, aggregate: "checkpoint", what: []string{"does not match the signed root"}},
		)
		if r.Verified != 0 {
			t.Errorf("Verified = %d, want 0", r.Verified)
		}
	})

	t.Run("Replay", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		m := getMsg(t, h.nc, h.seq["k1.created"])
		seq := publish(t, h.nc, m.Subject, m.Data, m.Header)
		checkProblems(t, verify(t, h.nc, nil),
			want{seq: seq, aggregate: h.keys["k1"], what: []string{"key.created has version 1 after version 3", "missing or out of order"}})
	})

	t.Run("DroppedMiddleEvent", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// k1: created, regenerated, revoked; the regeneration goes, and
		// everything after it moves up one.
		rewrite(t, h.nc, except(h.seq["k1.regenerated"]), nil)
		r := verify(t, h.nc, nil)
		checkProblems(t, r,
			want{seq: h.seq["k1.revoked"] - 1, aggregate: h.keys["k1"], what: []string{"key.revoked has version 3 after version 1"}},
			want{seq: cp1Seq - 1, aggregate: "checkpoint", what: []string{"up to sequence 13 does not match the signed root"}},
			want{seq: cp2Seq - 1, aggregate: "checkpoint", what: []string{"up to sequence 19 does not match the signed root"}},
		)
		if r.Messages != h.head-1 || r.Verified != 0 {
			t.Errorf("Messages %d, Verified %d, want %d, 0", r.Messages, r.Verified, h.head-1)
		}
	})

	t.Run("DroppedLastEvent", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// k2's revocation was its last event: no chain notices it going,
		// the checkpoint after it does.
		rewrite(t, h.nc, except(h.seq["k2.revoked"]), nil)
		r := verify(t, h.nc, nil)
		checkProblems(t, r,
			want{seq: cp2Seq - 1, aggregate: "checkpoint", what: []string{"up to sequence 19 does not match the signed root"}})
		if r.Verified != h.size(0) {
			t.Errorf("Verified = %d, want the first checkpoint's size %d", r.Verified, h.size(0))
		}
	})

	t.Run("DroppedLastEventsBeforeCheckpoint", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// Two last events of their keys go (k2's revocation, k6's
		// creation), and what followed the second checkpoint: the
		// checkpoint, now at 18, still commits to a log of 19 messages.
		rewrite(t, h.nc, func(m *jetstream.RawStreamMsg) bool {
			return except(h.seq["k2.revoked"], h.seq["k6.created"])(m) && m.Sequence <= cp2Seq
		}, nil)
		r := verify(t, h.nc, nil)
		if r.OK() || len(r.Problems) > 2 {
			t.Errorf("got problems %v, want one or two naming the second checkpoint (at %d), signed for size %d "+
				"while the log ends at %d (Verified %d, Checkpoints %d)", r.Problems, cp2Seq-2, h.size(1), r.LastSeq, r.Verified, r.Checkpoints)
		}
		for _, p := range r.Problems {
			if p.Seq != cp2Seq-2 && p.Seq != h.size(1) {
				t.Errorf("problem %q names neither the checkpoint (%d) nor its size (%d)", p, cp2Seq-2, h.size(1))
			}
		}
	})

	t.Run("TruncatedHistory", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// k2's revocation goes, and with it every checkpoint after it:
		// the log that is left is consistent in itself.
		rewrite(t, h.nc, except(h.seq["k2.revoked"], cp2Seq), nil)
		r := verify(t, h.nc, nil)
		checkProblems(t, r)
		if r.Checkpoints != 1 || r.Verified != h.size(0) || r.Messages != h.head-2 {
			t.Errorf("Checkpoints %d, Verified %d, Messages %d, want 1, %d, %d", r.Checkpoints, r.Verified, r.Messages, h.size(0), h.head-2)
		}
		// An auditor who kept the second checkpoint sees it.
		checkProblems(t, verify(t, h.nc, h.expectation(1)),
			want{seq: h.size(1), what: []string{"does not have the expected root", "rewritten"}})
		// The first still holds.
		checkProblems(t, verify(t, h.nc, h.expectation(0)))
	})

	t.Run("TruncatedTail", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		const kept = cp1Seq + 1
		rewrite(t, h.nc, func(m *jetstream.RawStreamMsg) bool { return m.Sequence <= kept }, nil)
		r := verify(t, h.nc, nil)
		checkProblems(t, r)
		if r.Messages != kept || r.Checkpoints != 1 || r.Verified != h.size(0) {
			t.Errorf("Messages %d, Checkpoints %d, Verified %d, want %d, 1, %d", r.Messages, r.Checkpoints, r.Verified, kept, h.size(0))
		}
		checkProblems(t, verify(t, h.nc, h.expectation(1)),
			want{seq: h.size(1), what: []string{fmt.Sprintf("ends at %d", kept), "truncated"}})
		checkProblems(t, verify(t, h.nc, h.expectation(0)))
	})

	t.Run("DroppedHead", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// The first two users' registrations go; the stream starts at 5
		// and the rest keep their sequences.
		const first = 5
		rewriteStream(t, h.nc, func(c *jetstream.StreamConfig) { c.FirstSeq = first },
			func(m *jetstream.RawStreamMsg) bool { return m.Sequence >= first }, nil)
		// The genesis went too: only an auditor who pins the ledger's key
		// reads such a log at all.
		// It waits for a genesis until its context ends, then refuses.
		waitCtx, waitCancel := context.WithTimeout(context.Background(), time.Second)
		defer waitCancel()
		if _, err := eventstore.New(waitCtx, h.nc, eventstore.ReadOnly()); err == nil || !strings.Contains(err.Error(), "no genesis") {
			t.Fatalf("unpinned reader of a log without its genesis: got %v, want a refusal", err)
		}
		r := verifyPinned(t, h.nc, nil)
		checkProblems(t, r,
			want{seq: 1, what: []string{fmt.Sprintf("sequences 1 to %d are missing", first-1)}},
			want{seq: cp1Seq, aggregate: "checkpoint", what: []string{"has gaps"}},
			want{seq: cp2Seq, aggregate: "checkpoint", what: []string{"has gaps"}},
		)
		if r.Verified != 0 || r.Messages != h.head-first+1 {
			t.Errorf("Verified %d, Messages %d, want 0, %d", r.Verified, r.Messages, h.head-first+1)
		}
	})

	t.Run("DeletedMessages", func(t *testing.T) {
		t.Parallel()
		h := newHistory(t)
		// A stream recreated without deny_delete lets messages go
		// without renumbering the rest.
		rewriteStream(t, h.nc, func(c *jetstream.StreamConfig) { c.DenyDelete, c.DenyPurge = false, false }, except(), nil)
		_, s := stream(t, h.nc)
		for _, seq := range []uint64{h.seq["k1.regenerated"], h.head} {
			if err := s.DeleteMsg(ledgertest.Context(t), seq); err != nil {
				t.Fatalf("DeleteMsg(%d): %v", seq, err)
			}
		}
		regenerated := h.seq["k1.regenerated"]
		checkProblems(t, verify(t, h.nc, nil),
			want{seq: 0, what: []string{"deny_delete/deny_purge are off"}},
			want{seq: regenerated, what: []string{fmt.Sprintf("sequences %d to %d are missing", regenerated, regenerated)}},
			want{seq: regenerated + 1, aggregate: h.keys["k1"], what: []string{"version 3 after version 1"}},
			want{seq: cp1Seq, aggregate: "checkpoint", what: []string{"has gaps"}},
			want{seq: cp2Seq, aggregate: "checkpoint", what: []string{"has gaps"}},
			want{seq: h.head, what: []string{"end of the log was deleted"}},
		)
	})
}

// verifyPinned is verify by an auditor who pins the test ledger's key.
func verifyPinned(t *testing.T, nc *nats.Conn, expect *audit.Expectation) audit.Report {
	t.Helper()
	return verify(t, nc, expect, eventstore.WithTrustedKeys(testkeys.LedgerPublic()))
}

// appendKeys appends n key.created events from workers goroutines, in
// atomic batches, and returns the head of the log.
func appendKeys(tb testing.TB, store *eventstore.Store, n, workers int) uint64 {
	tb.Helper()
	const batch = 100
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jobs := make(chan int)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			var err error
			for size := range jobs {
				if err != nil {
					continue
				}
				pending := make([]eventstore.Pending, size)
				for i := range pending {
					e, cerr := newKeyCreated()
					if cerr != nil {
						err = cerr
						break
					}
					pending[i] = eventstore.Pending{Event: e}
				}
				if err == nil {
					_, err = store.Append(ctx, pending...)
				}
			}
			errs <- err
		}()
	}
	for left := n; left > 0; left -= batch {
		jobs <- min(left, batch)
	}
	close(jobs)
	for range workers {
		if err := <-errs; err != nil {
			tb.Fatalf("Append: %v", err)
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return head
}

// bigLog writes n key.created events to a new log, and a checkpoint of
// them if asked, and returns a read-only store on it and its head.
func bigLog(tb testing.TB, n int, withCheckpoint bool, opts ...eventstore.Option) (*eventstore.Store, uint64) {
	tb.Helper()
	nc := natstest.Connect(tb, natstest.RunServer(tb))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	store, err := eventstore.New(ctx, nc, append(opts, eventstore.WithSigningKey(testkeys.Ledger()))...)
	if err != nil {
		tb.Fatalf("eventstore.New: %v", err)
	}
	head := appendKeys(tb, store, n, 8)
	if head != uint64(n)+1 { // and the genesis
		tb.Fatalf("head %d after %d appends", head, n)
	}
	if withCheckpoint {
		w, err := checkpoint.Start(ctx, store, nil, time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		defer w.Close()
		if err := w.WaitFor(ctx, head); err != nil {
			tb.Fatal(err)
		}
		if _, err := w.WriteNow(ctx); err != nil {
			tb.Fatalf("WriteNow: %v", err)
		}
	}
	reader, err := eventstore.New(ctx, nc, eventstore.ReadOnly())
	if err != nil {
		tb.Fatal(err)
	}
	return reader, head
}

// TestVerify_Speed verifies a log of 5k events and reports the rate
// (under -race, a fraction of the real one: see BenchmarkVerify).
func TestVerify_Speed(t *testing.T) {
	t.Parallel()
	const n = 5000
	start := time.Now()
	store, head := bigLog(t, n, false, eventstore.WithMemoryStorage())
	built := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := audit.Verify(ctx, store, nil, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	checkProblems(t, r)
	if r.Messages != head || r.Aggregates != n+1 { // the keys and the trust events
		t.Errorf("Messages %d, Aggregates %d, want %d, %d", r.Messages, r.Aggregates, head, n+1)
	}
	t.Logf("built %d events in %.2fs; verified them in %.2fs: %.0f events/s",
		head, built.Seconds(), r.Duration, float64(r.Messages)/r.Duration)
}

// BenchmarkVerify verifies a log of 100k events; the log is built once,
// before the timer starts.
func BenchmarkVerify(b *testing.B) {
	const n = 100000
	store, head := bigLog(b, n, true)
	ctx := context.Background()
	var msgs uint64
	for b.Loop() {
		r, err := audit.Verify(ctx, store, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if !r.OK() || r.Verified != head || r.Messages != head+1 {
			b.Fatalf("problems %v, verified %d", r.Problems, r.Verified)
		}
		msgs += r.Messages
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "events/s")
}

func newKeyCreated() (domain.Event, error) {
	secret, err := domain.NewSecret(rand.Reader)
	if err != nil {
		return domain.Event{}, err
	}
	events, err := (&domain.Key{}).Create(domain.CreateKey{
		APIKey:     domain.APIKeyPrefix + ulid.Make().String(),
		UserID:     domain.UserIDPrefix + ulid.Make().String(),
		Name:       "bench",
		SecretHash: secret.Hash(),
		PublicKey:  domain.PublicKey(secret.Hash()),
	}, time.Now())
	if err != nil {
		return domain.Event{}, err
	}
	return events[0], nil
}

// BenchmarkReplay measures audit.Replay of a 100k-event log, every event
// emitted (each one's signature checked, then encoded for output).
func BenchmarkReplay(b *testing.B) {
	const n = 100000
	store, _ := bigLog(b, n, true)
	ctx := context.Background()
	var events int
	for b.Loop() {
		err := audit.Replay(ctx, store, audit.Filter{}, false, func(audit.Record) error {
			events++
			return nil
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
	}
	if events < n {
		b.Fatalf("replayed %d events, want at least %d", events, n)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
