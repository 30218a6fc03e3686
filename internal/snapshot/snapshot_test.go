package snapshot_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/snapshot"
	"github.com/keyledger/keyledger/internal/testkeys"
	"github.com/keyledger/keyledger/projections"
)

var update = flag.Bool("update", false, "write the frozen samples in testdata again")

// sampleV1 is the frozen sample of format version 1: a lookup of two
// keys, one revoked, bound to a checkpoint of size 3 at sequence 4, at
// sequence 6.
const sampleV1 = "testdata/snapshot-v1.bin"

const (
	sampleKey     = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
	sampleRevoked = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1D"
	sampleOwner   = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"
)

var sampleTime = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// sampleV2 is the frozen sample of format version 2: sampleV1's lookup
// and serve's read models holding the same keys.
const sampleV2 = "testdata/snapshot-v2.bin"

func sampleSnapshot(t *testing.T) []byte { return sampleOf(t, false) }

// sampleOf is the sample of version 1, or of version 2 with models.
func sampleOf(t *testing.T, withModels bool) []byte {
	l := projections.NewLookup(0)
	models := projections.NewModels()
	apply := func(agg string, v uint64, d domain.EventData) {
		e := domain.Event{Type: d.EventType(), Schema: domain.SchemaFor(d), Aggregate: agg, Version: v, Time: sampleTime,
			Actor: sampleOwner, Data: d, Sequence: v + 4}
		for _, m := range append(models.List(), l) {
			if err := m.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(sampleKey, 1, domain.KeyCreated{UserID: sampleOwner, Name: "sample", SecretHash: domain.Hash{1, 2, 3},
		Scopes: []string{"read"}})
	apply(sampleRevoked, 1, domain.KeyCreated{UserID: sampleOwner, SecretHash: domain.Hash{4, 5, 6}})
	apply(sampleRevoked, 2, domain.KeyRevoked{})
	tree, err := (eventstore.MerkleState{}).Extend([]domain.Hash{{1}, {2}, {3}})
	if err != nil {
		t.Fatal(err)
	}
	root, err := tree.Root()
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot.Snapshot{Stream: "KEYLEDGER", Created: sampleTime.Add(-time.Hour), TrustRoot: "sha256:" + string(bytes.Repeat([]byte("ab"), 32)),
		Seq: 6, TakenAt: sampleTime, Keys: 2, Checkpoint: snapshot.Checkpoint{Seq: 4, Size: 3, Root: root}, Tree: tree,
		Leaves: []domain.Hash{{4}, {5}, {6}}, Lookup: l.AppendSnapshot(nil)}
	if withModels {
		s.Models = models.AppendSnapshot(nil)
	}
	return snapshot.Encode(s, testkeys.Ledger())
}

// TestDecode_Version2 decodes the frozen sample of version 2, forever:
// serve reads the snapshots of its read models older ledgers wrote.
func TestDecode_Version2(t *testing.T) {
	if *update {
		if err := os.WriteFile(sampleV2, sampleOf(t, true), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(sampleV2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if s.Seq != 6 || s.Keys != 2 || s.Models == nil || s.Signer != eventstore.KeyID(testkeys.LedgerPublic()) {
		t.Errorf("decoded: %+v", s)
	}
	if l, err := projections.ReadSnapshot(s.Lookup); err != nil || l.Len() != 2 {
		t.Fatalf("lookup: %v", err)
	}
	m, err := projections.ReadModelsSnapshot(s.Models)
	if err != nil {
		t.Fatalf("ReadModelsSnapshot: %v", err)
	}
	k, seq, ok := m.Keys.Get(sampleKey)
	if !ok || k.Name != "sample" || k.UserID != sampleOwner || k.Scopes != "read" || k.Revoked() || seq != 5 {
		t.Errorf("sample key: got %+v at %d, %v", k, seq, ok)
	}
	if k, seq, ok := m.Keys.Get(sampleRevoked); !ok || !k.Revoked() || k.Version != 2 || seq != 6 {
		t.Errorf("revoked key: got %+v at %d, %v", k, seq, ok)
	}
	keys, _, err := m.Keys.ListByUser(sampleOwner, 10, "")
	if err != nil || len(keys) != 2 || keys[0].APIKey != sampleRevoked || keys[1].APIKey != sampleKey {
		t.Errorf("listing, newest first: got %+v, %v", keys, err)
	}
	if !bytes.Equal(sampleOf(t, true), data) {
		t.Error("Encode no longer writes the version 2 sample: a format change needs a new version and a sample of it")
	}
}

// TestDecode_Version1 decodes the frozen sample of version 1, forever:
// nodes must read the snapshots older ledgers wrote (or refuse them by
// version, never misread them).
func TestDecode_Version1(t *testing.T) {
	if *update {
		if err := os.WriteFile(sampleV1, sampleSnapshot(t), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(sampleV1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if s.Stream != "KEYLEDGER" || s.Seq != 6 || s.Keys != 2 || !s.TakenAt.Equal(sampleTime) ||
		s.Checkpoint.Seq != 4 || s.Checkpoint.Size != 3 || len(s.Leaves) != 3 ||
		s.Signer != eventstore.KeyID(testkeys.LedgerPublic()) {
		t.Errorf("decoded: %+v", s)
	}
	if root, err := s.Tree.Root(); err != nil || root != s.Checkpoint.Root {
		t.Errorf("tree root: %v, %v; want the checkpoint's %v", root, err, s.Checkpoint.Root)
	}
	// The signature covers the SHA-256 of the bytes as written, after the
	// context.
	sig := data[len(data)-ed25519.SignatureSize:]
	sum := sha256.Sum256(data[:len(data)-ed25519.SignatureSize])
	if !ed25519.Verify(testkeys.LedgerPublic(), append([]byte("keyledger snapshot\n"), sum[:]...), sig) {
		t.Error("the sample's signature does not verify")
	}
	l, err := projections.ReadSnapshot(s.Lookup)
	if err != nil {
		t.Fatalf("ReadSnapshot: %v", err)
	}
	if l.Len() != 2 {
		t.Errorf("keys: got %d, want 2", l.Len())
	}
	if res := l.CheckParsed(mustID(t, sampleRevoked), domain.Hash{4, 5, 6}, sampleTime); res.OK || res.Reason != domain.ReasonRevoked {
		t.Errorf("revoked key: got %+v, want refused as revoked", res)
	}
	if res := l.CheckParsed(mustID(t, sampleKey), domain.Hash{1, 2, 3}, sampleTime); !res.OK || res.UserID != sampleOwner ||
		res.Name != "sample" || res.Scopes != "read" {
		t.Errorf("sample key: got %+v, want accepted with its owner, name and scope", res)
	}
	// What Encode writes today is version 1 still: the same bytes.
	if !bytes.Equal(sampleSnapshot(t), data) {
		t.Error("Encode no longer writes the version 1 sample: a format change needs a new version and a sample of it")
	}
}

func mustID(t *testing.T, apiKey string) [16]byte {
	id, ok := domain.ParseAPIKeyID(apiKey)
	if !ok {
		t.Fatalf("bad key %s", apiKey)
	}
	return id
}

// FuzzDecode: a snapshot is untrusted input until verified. Decode and
// the lookup's reader must never panic nor allocate beyond a small
// multiple of the input, whatever the bytes.
func FuzzDecode(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "snapshot-v1.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	v2, err := os.ReadFile(filepath.Join("testdata", "snapshot-v2.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v2)
	f.Add(v2[:len(v2)*3/4])
	f.Add([]byte("KLSNAP\x00\x01"))
	huge := append([]byte("KLSNAP\x00\x01"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
	f.Add(append(huge, make([]byte, 64)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := snapshot.Decode(b)
		if err != nil {
			if !errors.Is(err, snapshot.ErrMalformed) && !errors.Is(err, snapshot.ErrUnknownVersion) {
				t.Fatalf("Decode: %v, want ErrMalformed or ErrUnknownVersion", err)
			}
			return
		}
		if _, err := s.Tree.Root(); err != nil {
			t.Fatalf("decoded a tree that does not fit: %v", err)
		}
		l, err := projections.ReadSnapshot(s.Lookup)
		if err != nil {
			if !errors.Is(err, projections.ErrMalformedSnapshot) {
				t.Fatalf("ReadSnapshot: %v", err)
			}
			return
		}
		_ = l.AppendSnapshot(nil)
		if s.Models != nil {
			if m, err := projections.ReadModelsSnapshot(s.Models); err == nil {
				_ = m.AppendSnapshot(nil)
			} else if !errors.Is(err, projections.ErrMalformedSnapshot) {
				t.Fatalf("ReadModelsSnapshot: %v", err)
			}
		}
	})
}

// TestCollectLessOften: snapshots read at once in one process leave the
// collector's target as they found it, whatever order they end in, and
// never turn collection on where it was off.
func TestCollectLessOften(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	a := snapshot.CollectLessOften()
	b := snapshot.CollectLessOften()
	if got := debug.SetGCPercent(-2); got != 400 {
		t.Errorf("while reading: GOGC %d, want 400", got)
	}
	debug.SetGCPercent(400)
	a()
	b()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after reading: GOGC %d, want 100 back", got)
	}
	debug.SetGCPercent(-1)
	c := snapshot.CollectLessOften()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("collection off: GOGC %d while reading, want it left off", got)
	}
	c()
	if got := debug.SetGCPercent(100); got != -1 {
		t.Errorf("collection off: GOGC %d after reading, want it left off", got)
	}
}
