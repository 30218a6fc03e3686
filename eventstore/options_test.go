package eventstore_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// TestNew_NoImplicitKey: a writable store without a signing key is
// refused, and nothing is created or trusted on its behalf.
func TestNew_NoImplicitKey(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc := natstest.Connect(t, natstest.RunServer(t))

	_, err := eventstore.New(ctx, nc)
	if !errors.Is(err, eventstore.ErrNoSigningKey) || domain.KindOf(err) != domain.Invalid {
		t.Fatalf("got %v, want ErrNoSigningKey (invalid)", err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(ctx, eventstore.DefaultStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("got %v, want no stream created by a refused store", err)
	}

	t.Run("ReadOnlyWithKey", func(t *testing.T) {
		_, err := eventstore.New(ctx, nc, eventstore.ReadOnly(), eventstore.WithSigningKey(testkeys.Ledger()))
		if domain.KindOf(err) != domain.Invalid {
			t.Fatalf("got %v, want invalid", err)
		}
	})

	t.Run("OnlyTheGivenKeyIsTrusted", func(t *testing.T) {
		w, err := eventstore.New(ctx, nc, eventstore.WithMemoryStorage(), eventstore.WithSigningKey(testkeys.Ledger()))
		if err != nil {
			t.Fatal(err)
		}
		r, err := eventstore.New(ctx, nc, eventstore.ReadOnly())
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string][]ed25519.PublicKey{"writer": w.TrustedKeys(), "reader": r.TrustedKeys()} {
			if len(got) != 1 || !got[0].Equal(testkeys.LedgerPublic()) {
				t.Errorf("%s trusts %d keys, want only the test ledger's", name, len(got))
			}
		}
		if !w.SigningKey().Equal(testkeys.LedgerPublic()) || r.SigningKey() != nil {
			t.Errorf("got signing keys %x and %x, want the test ledger's and none", w.SigningKey(), r.SigningKey())
		}
	})
}

// TestNew_BadOptions: an option with a value outside its range makes New
// fail with Invalid before it touches the server.
func TestNew_BadOptions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	key := eventstore.WithSigningKey(testkeys.Ledger())
	for name, opt := range map[string]eventstore.Option{
		"ReplicasNegative": eventstore.WithReplicas(-1),
		"ReplicasTooMany":  eventstore.WithReplicas(eventstore.MaxReplicas + 1),
		"StreamWithDot":    eventstore.WithStream("A.B"),
		"StreamWithSpace":  eventstore.WithStream("A B"),
		"PrefixWithDot":    eventstore.WithSubjectPrefix("a.b"),
		"TimeoutNegative":  eventstore.WithTimeout(-time.Second),
		"SigningKeyNil":    eventstore.WithSigningKey(nil),
		"SigningKeyShort":  eventstore.WithSigningKey(ed25519.PrivateKey{1, 2, 3}),
		"TrustedKeysNone":  eventstore.WithTrustedKeys(),
		"TrustedKeysShort": eventstore.WithTrustedKeys(ed25519.PublicKey{1}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := eventstore.New(ctx, nc, key, opt)
			if domain.KindOf(err) != domain.Invalid {
				t.Fatalf("got %v, want invalid", err)
			}
		})
	}
	js, _ := jetstream.New(nc)
	names := js.StreamNames(ctx)
	if got := drain(names.Name()); len(got) != 0 || names.Err() != nil {
		t.Fatalf("got streams %v (%v) after refused options, want none", got, names.Err())
	}
}

// TestNew_ZeroMeansDefault: options given their zero value keep the
// defaults, so callers may pass configuration fields through.
func TestNew_ZeroMeansDefault(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc := natstest.Connect(t, natstest.RunServer(t))
	s, err := eventstore.New(ctx, nc, eventstore.WithSigningKey(testkeys.Ledger()), eventstore.WithStream(""),
		eventstore.WithSubjectPrefix(""), eventstore.WithReplicas(0), eventstore.WithTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.StreamName(), eventstore.DefaultStream; got != want {
		t.Errorf("stream: got %q, want %q", got, want)
	}
	if got, want := s.Subject("key", "k"), eventstore.DefaultSubjectPrefix+".key.k"; got != want {
		t.Errorf("subject: got %q, want %q", got, want)
	}
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, eventstore.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().Config.Replicas; got != 1 {
		t.Errorf("replicas: got %d, want 1", got)
	}
}

func drain(ch <-chan string) []string {
	var out []string
	for s := range ch {
		out = append(out, s)
	}
	return out
}
