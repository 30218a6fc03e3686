package datakeys_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/datakeys"
	"github.com/keyledger/keyledger/internal/natstest"
)

const alice = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStore_CreateGetDestroy(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	nc := natstest.Connect(t, natstest.RunServer(t))
	s, err := datakeys.Open(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Create(ctx, alice)
	if err != nil || len(k) != domain.DataKeySize {
		t.Fatalf("Create: got %d bytes, %v, want %d", len(k), err, domain.DataKeySize)
	}
	again, err := s.Create(ctx, alice)
	if err != nil || !bytes.Equal(again, k) {
		t.Fatalf("Create again (a retry): got %x, %v, want the same key %x", again, err, k)
	}
	// Another instance reads the same key from the bucket.
	fresh, err := datakeys.Open(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fresh.Get(ctx, alice); err != nil || !bytes.Equal(got, k) {
		t.Fatalf("Get from another instance: got %x, %v, want %x", got, err, k)
	}
	if err := s.Destroy(ctx, alice); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	fresh.Forget(alice)
	for name, st := range map[string]*datakeys.Store{"this": s, "another": fresh} {
		if got, err := st.Get(ctx, alice); !errors.Is(err, datakeys.ErrNoDataKey) || domain.KindOf(err) != domain.NotFound {
			t.Errorf("Get after Destroy on %s instance: got %x, %v, want %v", name, got, err, datakeys.ErrNoDataKey)
		}
	}
	if err := s.Destroy(ctx, alice); err != nil {
		t.Errorf("Destroy of a destroyed key: got %v, want nil", err)
	}
	// No message of the key remains in the bucket's stream.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "KV_"+datakeys.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.GetLastMsgForSubject(ctx, "$KV."+datakeys.DefaultBucket+"."+alice); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("the bucket after Destroy: got %v, %v, want no message", m, err)
	}
	if _, err := s.Create(ctx, "alice@example.com"); domain.KindOf(err) != domain.Invalid {
		t.Errorf("Create with an email as the id: got %v, want invalid", err)
	}
}

// TestStore_EmailKeyAgreed: instances starting at once agree on one email
// hash key, and it stays the same afterwards.
func TestStore_EmailKeyAgreed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := natstest.RunServer(t)
	if err := datakeys.SetUp(ctx, natstest.Connect(t, srv)); err != nil {
		t.Fatal(err)
	}
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := datakeys.Open(ctx, natstest.Connect(t, srv))
			if err != nil {
				errs[i] = err
				return
			}
			keys[i], errs[i] = s.EmailKey(ctx)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || len(keys[i]) != domain.DataKeySize || !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("instance %d: got %x, %v, want %x like instance 0", i, keys[i], errs[i], keys[0])
		}
	}
}

// TestStore_RefusesABucketThatKeeps: a bucket that would keep old values
// (history above 1) or forbids deleting one cannot erase: Open refuses it.
func TestStore_RefusesABucketThatKeeps(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]jetstream.KeyValueConfig{
		"History":    {Bucket: datakeys.DefaultBucket, History: 5},
		"DenyDelete": {Bucket: datakeys.DefaultBucket, History: 1}, // a default bucket denies deletes
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			nc := natstest.Connect(t, natstest.RunServer(t))
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.CreateKeyValue(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			if _, err := datakeys.Open(ctx, nc); err == nil {
				t.Fatal("Open: got nil, want the bucket refused")
			}
		})
	}
}
