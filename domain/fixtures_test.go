package domain_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// Fixed inputs. The domain never reads the clock or a random source, so
// neither do its tests: every time and identifier below is a literal.
var (
	t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)

	// zoned is t0 seen from UTC+2, to check that what the domain records is
	// normalised to UTC.
	zoned = t0.In(time.FixedZone("UTC+2", 2*60*60))

	hashA = domain.Hash{0xaa, 0x01}
	hashB = domain.Hash{0xbb, 0x02}

	pubA = domain.PublicKey{0xa1, 0x01}
	pubB = domain.PublicKey{0xb1, 0x02}
)

const (
	apiKey      = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
	otherAPIKey = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1D"
	alice       = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"
	bob         = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1B"
)

func TestFixtures(t *testing.T) {
	t.Parallel()
	for _, k := range []string{apiKey, otherAPIKey} {
		if !domain.ValidAPIKey(k) {
			t.Errorf("ValidAPIKey(%q): got false, want true", k)
		}
	}
	for _, u := range []string{alice, bob} {
		if !domain.ValidUserID(u) {
			t.Errorf("ValidUserID(%q): got false, want true", u)
		}
	}
}

// keyCreated is the first event of apiKey, owned by alice.
func keyCreated(at time.Time, d domain.KeyCreated) domain.Event {
	if d.UserID == "" {
		d.UserID = alice
	}
	if d.PublicKey.IsZero() {
		d.PublicKey = pubA
	}
	return domain.Event{
		Type: domain.TypeKeyCreated, Schema: domain.KeyPolicySchema, Aggregate: apiKey,
		Version: 1, Time: at, Actor: d.UserID, Data: d,
	}
}

// keyRevoked is alice revoking apiKey.
func keyRevoked(version uint64, at time.Time) domain.Event {
	return domain.Event{
		Type: domain.TypeKeyRevoked, Schema: domain.CurrentSchema, Aggregate: apiKey,
		Version: version, Time: at, Actor: alice, Data: domain.KeyRevoked{},
	}
}

// keyRegenerated is alice giving apiKey the secret hashed to h, with public
// key pubB.
func keyRegenerated(version uint64, at time.Time, h domain.Hash) domain.Event {
	return domain.Event{
		Type: domain.TypeKeySecretRegenerated, Schema: domain.KeySecretSchema, Aggregate: apiKey,
		Version: version, Time: at, Actor: alice, Data: domain.KeySecretRegenerated{SecretHash: h, PublicKey: pubB},
	}
}

func timePtr(t time.Time) *time.Time { return &t }

// secretFrom returns the secret NewSecret makes from 32 copies of b.
func secretFrom(t testing.TB, b byte) domain.Secret {
	t.Helper()
	s, err := domain.NewSecret(bytes.NewReader(bytes.Repeat([]byte{b}, 32)))
	if err != nil {
		t.Fatalf("NewSecret: got %v, want nil", err)
	}
	return s
}

// assertEvents compares what a command recorded with what it should have.
// Time must be the same instant and in UTC; ID and Sequence are not the
// domain's to set.
func assertEvents(t *testing.T, got, want []domain.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type {
			t.Errorf("event %d Type: got %v, want %v", i, g.Type, w.Type)
		}
		if g.Schema != w.Schema {
			t.Errorf("event %d Schema: got %v, want %v", i, g.Schema, w.Schema)
		}
		if g.Aggregate != w.Aggregate {
			t.Errorf("event %d Aggregate: got %v, want %v", i, g.Aggregate, w.Aggregate)
		}
		if g.Version != w.Version {
			t.Errorf("event %d Version: got %v, want %v", i, g.Version, w.Version)
		}
		if !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
			t.Errorf("event %d Time: got %v, want %v", i, g.Time, w.Time.UTC())
		}
		if g.Actor != w.Actor {
			t.Errorf("event %d Actor: got %v, want %v", i, g.Actor, w.Actor)
		}
		if !dataEqual(g.Data, w.Data) {
			t.Errorf("event %d Data: got %s, want %s", i, showData(g.Data), showData(w.Data))
		}
	}
}

// dataEqual compares payloads; times compare as instants and must be UTC.
func dataEqual(a, b domain.EventData) bool {
	if ca, ok := a.(domain.LogCheckpoint); ok {
		cb, ok := b.(domain.LogCheckpoint)
		return ok && ca.Size == cb.Size && ca.Root == cb.Root && slices.Equal(ca.Foreign, cb.Foreign)
	}
	if ga, ok := a.(domain.LedgerGenesis); ok {
		gb, ok := b.(domain.LedgerGenesis)
		return ok && ga.Reason == gb.Reason && slices.Equal(ga.Keys, gb.Keys)
	}
	// Everything else compares by type and JSON encoding: times encode
	// with their zone, so a time that is not UTC differs from its UTC
	// twin, and pointers compare by what they point to.
	if fmt.Sprintf("%T", a) != fmt.Sprintf("%T", b) {
		return false
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// showData prints a payload with its type and without pointer addresses.
func showData(d domain.EventData) string {
	if d == nil {
		return "<nil>"
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Sprintf("%T(%v)", d, err)
	}
	return fmt.Sprintf("%T%s", d, b)
}
