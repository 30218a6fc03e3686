package adminnonce_test

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/adminnonce"
	"github.com/keyledger/keyledger/internal/natstest"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func open(t *testing.T, nc *nats.Conn, opts ...adminnonce.Option) *adminnonce.Store {
	t.Helper()
	s, err := adminnonce.New(testContext(t), nc, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// TestStore_Record: a nonce is accepted once, by any Store of the bucket;
// the same nonce of another key is another nonce.
func TestStore_Record(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := testContext(t)
	a, b := open(t, natstest.Connect(t, srv)), open(t, natstest.Connect(t, srv))
	if err := a.Record(ctx, "adm_1", "nonce-0123456789abcdef"); err != nil {
		t.Fatalf("first record: %v", err)
	}
	for name, s := range map[string]*adminnonce.Store{"same store": a, "other store": b} {
		if err := s.Record(ctx, "adm_1", "nonce-0123456789abcdef"); !errors.Is(err, adminnonce.ErrReplayed) || domain.KindOf(err) != domain.Unauthorized {
			t.Errorf("%s, again: got %v, want ErrReplayed (unauthorized)", name, err)
		}
	}
	if err := b.Record(ctx, "adm_2", "nonce-0123456789abcdef"); err != nil {
		t.Errorf("another key's same nonce: %v", err)
	}
}

// TestStore_Race: of many concurrent records of one nonce on two Stores,
// exactly one succeeds.
func TestStore_Race(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := testContext(t)
	stores := []*adminnonce.Store{open(t, natstest.Connect(t, srv)), open(t, natstest.Connect(t, srv))}
	for round := range 5 {
		nonce := "race-nonce-" + string(rune('a'+round)) + "-0123456789"
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() { errs <- stores[i%2].Record(ctx, "adm_1", nonce) })
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, adminnonce.ErrReplayed):
				t.Errorf("round %d: got %v, want nil or ErrReplayed", round, err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d records succeeded, want exactly 1", round, ok)
		}
	}
}

// TestStore_Replicated: on a three-node cluster (R3, where a failed
// expectation has its own error code) a nonce is still accepted once,
// also when recorded through different nodes at once.
func TestStore_Replicated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node NATS cluster")
	}
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	ctx := testContext(t)
	var stores []*adminnonce.Store
	for i := range 3 {
		nc, err := nats.Connect(c.URL(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		// The first New creates the bucket; a forming cluster may need a
		// few attempts, which New makes until ctx ends.
		stores = append(stores, open(t, nc, adminnonce.WithReplicas(3)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for i := range 9 {
		wg.Go(func() { errs <- stores[i%3].Record(ctx, "adm_1", "r3-nonce-0123456789") })
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, adminnonce.ErrReplayed):
			t.Errorf("got %v, want nil or ErrReplayed", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d records succeeded, want exactly 1", ok)
	}
}

// TestStore_WritersCannotForget: whoever may write the bucket (the
// ledger's credentials) cannot make it forget a nonce: a delete marker or
// an overwrite keeps it refused (KeyValue.Create would write over the
// marker), and purges, roll-ups and message deletes are refused.
func TestStore_WritersCannotForget(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := testContext(t)
	nc := natstest.Connect(t, srv)
	s := open(t, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, adminnonce.DefaultBucket)
	if err != nil {
		t.Fatalf("bind the bucket as a KV: %v", err)
	}
	for i, forget := range []func(key string) error{
		func(key string) error { return kv.Delete(ctx, key) },
		func(key string) error { _, err := kv.Put(ctx, key, []byte("x")); return err },
		func(key string) error { return kv.Purge(ctx, key) },
		func(key string) error {
			st, err := js.Stream(ctx, "KV_"+adminnonce.DefaultBucket)
			if err != nil {
				return err
			}
			return st.Purge(ctx)
		},
		func(key string) error {
			st, err := js.Stream(ctx, "KV_"+adminnonce.DefaultBucket)
			if err != nil {
				return err
			}
			m, err := st.GetLastMsgForSubject(ctx, "$KV."+adminnonce.DefaultBucket+"."+key)
			if err != nil {
				return err
			}
			return st.DeleteMsg(ctx, m.Sequence)
		},
	} {
		nonce := "forget-" + string(rune('a'+i)) + "-0123456789abcdef"
		if err := s.Record(ctx, "adm_1", nonce); err != nil {
			t.Fatal(err)
		}
		_ = forget(adminnonce.Key("adm_1", nonce)) // refused or not: what counts is next
		if err := s.Record(ctx, "adm_1", nonce); !errors.Is(err, adminnonce.ErrReplayed) {
			t.Errorf("attempt %d to forget the nonce: record again got %v, want ErrReplayed", i, err)
		}
	}
}

// TestStore_SurvivesNATSRestart: nonces are on disk.
func TestStore_SurvivesNATSRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := natstest.RunServerAt(t, dir)
	ctx := testContext(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if err := open(t, nc).Record(ctx, "adm_1", "kept-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	srv = natstest.RunServerAt(t, dir)
	s := open(t, natstest.Connect(t, srv))
	if err := s.Record(ctx, "adm_1", "kept-0123456789abcdef"); !errors.Is(err, adminnonce.ErrReplayed) {
		t.Errorf("after a restart: got %v, want ErrReplayed", err)
	}
}

// TestStore_Config: the bucket as serve makes it: on disk, denying purge,
// deletes and roll-ups, history 1, TTL, size and message caps, and
// refusing new nonces when full rather than dropping old ones.
func TestStore_Config(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := testContext(t)
	nc := natstest.Connect(t, srv)
	open(t, nc, adminnonce.WithBucket("S_ADMIN_NONCES"), adminnonce.WithTTL(time.Hour), adminnonce.WithMaxBytes(4096))
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "KV_S_ADMIN_NONCES")
	if err != nil {
		t.Fatal(err)
	}
	c := st.CachedInfo().Config
	if c.Storage != jetstream.FileStorage || !c.DenyPurge || !c.DenyDelete || c.AllowRollup || c.AllowMsgTTL ||
		c.MaxMsgsPerSubject != 1 || c.MaxAge != time.Hour || c.MaxBytes != 4096 || c.MaxMsgSize <= 0 || c.Discard != jetstream.DiscardNew {
		t.Errorf("bucket config: %+v", c)
	}
	// An existing bucket changed behind serve's back is put right
	// (JetStream itself refuses to lift deny purge).
	c.MaxAge = 30 * time.Minute
	if _, err := js.UpdateStream(ctx, c); err != nil {
		t.Fatal(err)
	}
	open(t, nc, adminnonce.WithBucket("S_ADMIN_NONCES"), adminnonce.WithTTL(time.Hour), adminnonce.WithMaxBytes(4096))
	st, _ = js.Stream(ctx, "KV_S_ADMIN_NONCES")
	if c := st.CachedInfo().Config; c.MaxAge != time.Hour {
		t.Errorf("bucket not put right: max age %v, want 1h", c.MaxAge)
	}
}

// TestStore_Full: a full bucket refuses new nonces (Unavailable), never
// forgets old ones.
func TestStore_Full(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	ctx := testContext(t)
	s := open(t, natstest.Connect(t, srv), adminnonce.WithMaxBytes(2048))
	first := "full-first-0123456789"
	if err := s.Record(ctx, "adm_1", first); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = s.Record(ctx, "adm_1", "full-"+hex.EncodeToString([]byte{byte(i >> 8), byte(i)})+"-0123456789")
	}
	if domain.KindOf(err) != domain.Unavailable {
		t.Fatalf("filling the bucket: got %v, want Unavailable once full", err)
	}
	if err := s.Record(ctx, "adm_1", first); !errors.Is(err, adminnonce.ErrReplayed) {
		t.Errorf("the first nonce once full: got %v, want ErrReplayed", err)
	}
}

// TestStore_Unavailable: without NATS a record fails closed.
func TestStore_Unavailable(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, nc)
	nc.Close()
	if err := s.Record(testContext(t), "adm_1", "gone-0123456789abcdef"); domain.KindOf(err) != domain.Unavailable {
		t.Errorf("got %v, want Unavailable", err)
	}
}

// TestNew_Invalid: options out of range are refused.
func TestNew_Invalid(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	for name, opt := range map[string]adminnonce.Option{
		"bucket with a dot": adminnonce.WithBucket("A.B"),
		"bucket wildcard":   adminnonce.WithBucket("A*"),
		"replicas":          adminnonce.WithReplicas(6),
		"ttl":               adminnonce.WithTTL(-time.Second),
	} {
		if _, err := adminnonce.New(testContext(t), nc, opt); domain.KindOf(err) != domain.Invalid {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}

// FuzzKey: whatever a caller puts in a key id and a nonce, the key is one
// subject token of 64 lower-case hex digits, and moving bytes between the
// two fields changes it.
func FuzzKey(f *testing.F) {
	f.Add("adm_1", "nonce")
	f.Add("adm_1.>", "*")
	f.Add("", "")
	f.Add("a b", "\x00\n")
	f.Fuzz(func(t *testing.T, keyID, nonce string) {
		k := adminnonce.Key(keyID, nonce)
		if len(k) != 64 {
			t.Fatalf("key %q: %d characters, want 64", k, len(k))
		}
		for _, c := range k {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				t.Fatalf("key %q: not lower-case hex", k)
			}
		}
		if keyID != "" && adminnonce.Key(keyID[1:], keyID[:1]+nonce) == k {
			t.Fatalf("(%q, %q) and a split elsewhere share a key", keyID, nonce)
		}
	})
}
