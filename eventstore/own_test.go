package eventstore_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestStore_OwnAppendsStillRefuseForgeries: the ledger's own subscription
// takes the events it appended itself without verifying their signatures
// again, and still refuses, as forged, every message built from them by a
// hostile NATS client: the ledger's signature over altered bytes, its
// bytes on another aggregate's subject, its bytes and key id under a
// signature by another key, and its bytes under a garbled signature.
func TestStore_OwnAppendsStillRefuseForgeries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	key := testkeys.Ledger()
	writer, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(key))
	if err != nil {
		t.Fatal(err)
	}
	wait := collect(t, writer) // the writer's own subscription, as the ledger's projector
	js, _ := jetstream.New(natstest.Connect(t, srv))
	stream, err := js.Stream(ctx, writer.StreamName())
	if err != nil {
		t.Fatal(err)
	}

	seqs, err := writer.Append(ctx, eventstore.Pending{Event: keyEvent(apiKey, 1)})
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := stream.GetMsg(ctx, seqs[0])
	if err != nil {
		t.Fatal(err)
	}
	publish := func(subject string, header nats.Header, data []byte) {
		t.Helper()
		m := nats.NewMsg(subject)
		for k, v := range header {
			if k == eventstore.HeaderSigner || k == eventstore.HeaderSignature || k == eventstore.HeaderHash {
				m.Header[k] = v
			}
		}
		m.Data = data
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// The ledger's signature over a payload with one byte changed.
	altered := append([]byte(nil), genuine.Data...)
	for i, b := range altered {
		if b == '1' {
			altered[i] = '2'
			break
		}
	}
	publish(genuine.Subject, genuine.Header, altered)
	// The ledger's bytes and signature on another aggregate's subject.
	other := "ak_01JH6Z3Q8X4N6V2R9T5M7K3B9Z"
	publish(writer.Subject(domain.CategoryKey, other), genuine.Header, genuine.Data)
	// The ledger's bytes and key id, signed by another key.
	stranger := testkeys.Key("stranger")
	h := nats.Header{}
	for k, v := range genuine.Header {
		h[k] = append([]string(nil), v...)
	}
	h.Set(eventstore.HeaderSignature, base64.RawURLEncoding.EncodeToString(
		ed25519.Sign(stranger, append([]byte("keyledger/v1/event\n"+genuine.Subject+"\n"), genuine.Data...))))
	publish(genuine.Subject, h, genuine.Data)
	// The ledger's bytes under a garbled signature.
	sig, _ := base64.RawURLEncoding.DecodeString(genuine.Header.Get(eventstore.HeaderSignature))
	sig[0] ^= 1
	h.Set(eventstore.HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
	publish(genuine.Subject, h, genuine.Data)
	// And the ledger's next event, its own again.
	seqs, err = writer.Append(ctx, eventstore.Pending{Event: keyEvent("ak_01JH6Z3Q8X4N6V2R9T5M7K3B8Y", 1)})
	if err != nil {
		t.Fatal(err)
	}

	events, errs := wait(int(seqs[0]))
	byseq := map[uint64]error{}
	for i, e := range events {
		byseq[e.Sequence] = errs[i]
	}
	if err := byseq[genuine.Sequence]; err != nil {
		t.Fatalf("the ledger's own event at %d: %v", genuine.Sequence, err)
	}
	if err := byseq[seqs[0]]; err != nil {
		t.Fatalf("the ledger's own event at %d: %v", seqs[0], err)
	}
	for seq := genuine.Sequence + 1; seq < seqs[0]; seq++ {
		if err, ok := byseq[seq]; !ok || !errors.Is(err, eventstore.ErrForged) {
			t.Errorf("message %d built from the ledger's event: err %v, want ErrForged", seq, err)
		}
	}
}
