package natstest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RewriteStream does what an attacker with JetStream admin rights can do
// to a stream despite deny_delete and deny_purge: it reads every stored
// message, deletes the stream, creates it again (its configuration first
// changed by configure, if given) and republishes the messages in order,
// each as edit returns it (nil: left out). Headers are kept as stored (the
// ledger's signatures among them) but for those NATS acts on when
// publishing (Nats-*). The republished messages get new sequences.
func RewriteStream(t testing.TB, nc *nats.Conn, stream string, edit func(m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg,
	configure ...func(*jetstream.StreamConfig)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info := s.CachedInfo()
	var msgs []*jetstream.RawStreamMsg
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		msgs = append(msgs, m)
	}
	if err := js.DeleteStream(ctx, info.Config.Name); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	for _, c := range configure {
		c(&info.Config)
	}
	// The server may still be removing the deleted stream's files: a
	// create right after can fail with "error creating store"; retry.
	var createErr error
	eventually(t, 30*time.Second, func() bool {
		_, createErr = js.CreateStream(ctx, info.Config)
		return createErr == nil
	}, func() string { return "stream created again: " + errString(createErr) })
	for _, m := range msgs {
		if m = edit(m); m == nil {
			continue
		}
		out := nats.NewMsg(m.Subject)
		out.Data = m.Data
		for k, v := range m.Header {
			if !strings.HasPrefix(k, "Nats-") {
				out.Header[k] = v
			}
		}
		if _, err := js.PublishMsg(ctx, out); err != nil {
			t.Fatalf("republish %d: %v", m.Sequence, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
