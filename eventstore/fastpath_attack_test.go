package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// testAPIKey returns the i-th of a set of valid API keys.
func testAPIKey(t testing.TB, i int) string {
	t.Helper()
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	k := "ak_01JH6Z3Q8X4N6V2R9T5M7K" + string(crockford[i/32%32]) + string(crockford[i%32]) + "00"
	if !domain.ValidAPIKey(k) {
		t.Fatalf("bad test key %s", k)
	}
	return k
}

// checkpointedLog is a log of key creations with a checkpoint written
// after each of the given numbers of keys, and a few keys after the last.
type checkpointedLog struct {
	nc          *nats.Conn
	checkpoints []domain.Event
	head        uint64
}

func newCheckpointedLog(t *testing.T, checkpointAfter ...int) *checkpointedLog {
	t.Helper()
	ctx := context.Background()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	store, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatal(err)
	}
	w, err := checkpoint.Start(ctx, store, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	l := &checkpointedLog{nc: nc}
	keys := 0
	for _, n := range append(checkpointAfter, checkpointAfter[len(checkpointAfter)-1]+3) {
		for ; keys < n; keys++ {
			seqs, err := store.Append(ctx, eventstore.Pending{Event: keyEvent(testAPIKey(t, keys), 1)})
			if err != nil {
				t.Fatal(err)
			}
			l.head = seqs[0]
		}
		if len(l.checkpoints) == len(checkpointAfter) {
			break // the keys after the last checkpoint
		}
		if err := w.WaitFor(ctx, l.head); err != nil {
			t.Fatal(err)
		}
		cp, err := w.WriteNow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l.checkpoints = append(l.checkpoints, cp)
		l.head = cp.Sequence
	}
	return l
}

// rewriteLog rewrites the log as an attacker with JetStream admin rights
// can (natstest.RewriteStream).
func rewriteLog(t *testing.T, nc *nats.Conn, edit func(m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg, configure ...func(*jetstream.StreamConfig)) {
	t.Helper()
	natstest.RewriteStream(t, nc, eventstore.DefaultStream, edit, configure...)
}

// attackerHash is the secret hash an attacker puts into a key.created.
var attackerHash = domain.Hash{0xAB, 0xAD}

// withSecretHash returns the event payload data with its secret_hash set
// to h, everything else as it was.
func withSecretHash(t *testing.T, data []byte, h domain.Hash) []byte {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal(env["data"], &payload); err != nil {
		t.Fatal(err)
	}
	payload["secret_hash"] = h
	env["data"], _ = json.Marshal(payload)
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// delivered is what a subscription handed its handler for one sequence.
type delivered struct {
	typ        string
	err        error
	secretHash domain.Hash
}

// readAll subscribes to the log from its start with opts and returns what
// was delivered for each sequence up to head, and what onErr heard.
func readAll(t *testing.T, nc *nats.Conn, head uint64, opts ...eventstore.SubscribeOption) (map[uint64]delivered, []error) {
	t.Helper()
	ctx := context.Background()
	reader, err := eventstore.New(ctx, nc, eventstore.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[uint64]delivered{}
	var last uint64
	var problems []error
	sub, err := reader.Subscribe(ctx, 0, func(e domain.Event, err error) {
		mu.Lock()
		defer mu.Unlock()
		if e.Sequence <= last {
			t.Errorf("seq %d delivered after %d", e.Sequence, last)
		}
		last = e.Sequence
		d := delivered{typ: e.Type, err: err}
		if c, ok := e.Data.(domain.KeyCreated); ok {
			d.secretHash = c.SecretHash
		}
		got[e.Sequence] = d
	}, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, err)
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	natstest.Eventually(t, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last >= head
	}, "every message delivered")
	mu.Lock()
	defer mu.Unlock()
	return got, append([]error(nil), problems...)
}

// TestSubscribeAttack_TamperedEventInCheckpointedRange: an attacker with
// JetStream admin rights rebuilds the stream with one key.created inside
// a checkpointed range changed to carry a secret hash of theirs (the
// ledger's signature header kept). A reader on the checkpoint fast path
// never delivers the changed event as valid, however the range is read:
// held back until its root is checked, too long to hold, or over the
// byte budget. It reports the mismatch, and every other event is
// delivered as usual. (With events delivered before their checkpoint's
// root is checked, the attacker's hash would be applied.)
func TestSubscribeAttack_TamperedEventInCheckpointedRange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts []eventstore.SubscribeOption
	}{
		{"held until the root is checked", nil},
		{"range longer than the buffer", []eventstore.SubscribeOption{eventstore.WithCheckpointBuffer(4, 0)}},
		{"buffer over its byte budget", []eventstore.SubscribeOption{eventstore.WithCheckpointBuffer(0, 2000)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := newCheckpointedLog(t, 8, 20, 30)
			// The middle range: after the first checkpoint, before the second's size.
			first := l.checkpoints[0].Sequence
			tampered := first + 5
			rewriteLog(t, l.nc, func(m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg {
				if m.Sequence == tampered {
					m.Data = withSecretHash(t, m.Data, attackerHash)
				}
				return m
			})
			got, problems := readAll(t, l.nc, l.head, c.opts...)
			for seq := uint64(1); seq <= l.head; seq++ {
				d, ok := got[seq]
				switch {
				case !ok:
					t.Errorf("seq %d not delivered", seq)
				case seq == tampered:
					if !errors.Is(d.err, eventstore.ErrForged) || d.secretHash == attackerHash {
						t.Errorf("tampered seq %d: got %s with err %v (attacker's hash: %v), want it refused as forged",
							seq, d.typ, d.err, d.secretHash == attackerHash)
					}
				case d.err != nil:
					t.Errorf("seq %d: got err %v, want none", seq, d.err)
				}
			}
			var mismatches int
			for _, err := range problems {
				if errors.Is(err, eventstore.ErrCheckpointMismatch) {
					mismatches++
				}
			}
			if mismatches != 1 {
				t.Errorf("got problems %v, want one checkpoint mismatch", problems)
			}
		})
	}
}

// TestSubscribeAttack_LogCutBeforeCheckpoint: the stream rebuilt without
// two messages just before a checkpoint, so the log ends before the
// checkpoint's size. A reader on the fast path does not wait for messages
// that never come: it reports the mismatch and delivers what is there,
// each message verified by its signature.
func TestSubscribeAttack_LogCutBeforeCheckpoint(t *testing.T) {
	t.Parallel()
	l := newCheckpointedLog(t, 12)
	cp := l.checkpoints[0]
	size := cp.Data.(domain.LogCheckpoint).Size
	rewriteLog(t, l.nc, func(m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg {
		if m.Sequence == size-1 || m.Sequence == size || m.Sequence > cp.Sequence {
			return nil
		}
		return m
	})
	head := cp.Sequence - 2
	got, problems := readAll(t, l.nc, head)
	for seq := uint64(1); seq <= head; seq++ {
		if d, ok := got[seq]; !ok || d.err != nil {
			t.Errorf("seq %d: got %+v (delivered %v), want delivered without error", seq, d, ok)
		}
	}
	if len(problems) != 1 || !errors.Is(problems[0], eventstore.ErrCheckpointMismatch) {
		t.Errorf("got problems %v, want one checkpoint mismatch", problems)
	}
}

// TestSubscribe_CheckpointRanges: a log with several checkpoints reads the
// same, with no problem reported, whether its ranges are held back,
// longer than the buffer, or over the byte budget.
func TestSubscribe_CheckpointRanges(t *testing.T) {
	t.Parallel()
	l := newCheckpointedLog(t, 3, 10, 11, 25)
	for _, opts := range [][]eventstore.SubscribeOption{
		nil,
		{eventstore.WithCheckpointBuffer(5, 0)},
		{eventstore.WithCheckpointBuffer(0, 3000)},
	} {
		got, problems := readAll(t, l.nc, l.head, opts...)
		if len(problems) != 0 {
			t.Errorf("got problems %v, want none", problems)
		}
		for seq := uint64(1); seq <= l.head; seq++ {
			if d, ok := got[seq]; !ok || d.err != nil || d.typ == "" {
				t.Errorf("seq %d: got %+v (delivered %v), want an event", seq, d, ok)
			}
		}
	}
}

// TestSubscribeAttack_MessageDeletedFromCheckpointedRange: an attacker
// with JetStream admin rights rebuilds the stream without deny_delete
// and deletes a message
// inside a checkpointed range. A reader on the fast path delivers every
// message still there, each verified by its signature (none held back
// and lost), and reports the mismatch.
func TestSubscribeAttack_MessageDeletedFromCheckpointedRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newCheckpointedLog(t, 6, 20)
	js, err := jetstream.New(l.nc)
	if err != nil {
		t.Fatal(err)
	}
	rewriteLog(t, l.nc, func(m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg { return m },
		func(c *jetstream.StreamConfig) { c.DenyDelete = false })
	stream, err := js.Stream(ctx, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	deleted := l.checkpoints[0].Sequence + 4
	if err := stream.DeleteMsg(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	got, problems := readAll(t, l.nc, l.head)
	for seq := uint64(1); seq <= l.head; seq++ {
		d, ok := got[seq]
		switch {
		case seq == deleted && ok:
			t.Errorf("deleted seq %d delivered: %+v", seq, d)
		case seq != deleted && (!ok || d.err != nil):
			t.Errorf("seq %d: got %+v (delivered %v), want delivered without error", seq, d, ok)
		}
	}
	if len(problems) != 1 || !errors.Is(problems[0], eventstore.ErrCheckpointMismatch) {
		t.Errorf("got problems %v, want one checkpoint mismatch", problems)
	}
}
