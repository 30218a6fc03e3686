package projections

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/keyledger/keyledger/domain"
)

// TestLookupEntrySize keeps the packed entry at 72 bytes: every byte is
// paid a million times on a validation node.
func TestLookupEntrySize(t *testing.T) {
	if got := unsafe.Sizeof(lookupEntry{}); got != 72 {
		t.Errorf("lookupEntry: got %d bytes, want 72", got)
	}
	for _, ms := range []int64{noTime, 1, 1793529015123, 1<<48 - 2} {
		if got := getMilli48(putMilli48(ms)); got != ms {
			t.Errorf("milli48(%d): got %d", ms, got)
		}
	}
	if got := getMilli48(putMilli48(-5)); got != 1 {
		t.Errorf("milli48(-5): got %d, want 1 (passed long ago)", got)
	}
	if got := getMilli48(putMilli48(1 << 50)); got != 1<<48-2 {
		t.Errorf("milli48(2^50): got %d, want the largest", got)
	}
}

// TestLookup_EditsDoNotGrowMemory: a key's owner can rename it and change
// its scopes as often as they like; the lookup on every validation node
// must not keep each old name and scope set for good.
func TestLookup_EditsDoNotGrowMemory(t *testing.T) {
	l := NewLookup(0)
	const apiKey = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
	const owner = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	apply := func(v uint64, d domain.EventData) {
		t.Helper()
		e := domain.Event{Type: d.EventType(), Schema: domain.SchemaFor(d), Aggregate: apiKey,
			Version: v, Time: at, Actor: owner, Data: d}
		if err := l.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	apply(1, domain.KeyCreated{UserID: owner, Name: "first", SecretHash: domain.Hash{1}, PublicKey: domain.PublicKey{1},
		Scopes: []string{"a"}})
	const edits = 20000
	// Names handed out share the arena's bytes: they must stay what they
	// were through renames and compactions.
	handedOut := map[string]string{}
	for i := range edits {
		v := uint64(2 + 2*i)
		apply(v, domain.KeyRenamed{Name: fmt.Sprintf("%0100d", i)})
		apply(v+1, domain.KeyScopesChanged{Scopes: []string{fmt.Sprintf("s%0120d", i)}})
		if i%997 == 0 {
			handedOut[fmt.Sprintf("%0100d", i)] = lookupKey(l, apiKey).res.Name
		}
	}
	for want, got := range handedOut {
		if got != want {
			t.Errorf("a name handed out changed: got %q, want %q", got, want)
		}
	}
	if len(l.scopeIndex) > 2 || len(l.scopeSets) > 3 {
		t.Errorf("after %d scope changes: %d sets interned, %d slots, want the one in use (and the empty set)",
			edits, len(l.scopeIndex), len(l.scopeSets))
	}
	if len(l.names) > minNamesGarbage+1000 {
		t.Errorf("after %d renames: names arena of %d bytes, want it compacted", edits, len(l.names))
	}
	f := lookupKey(l, apiKey)
	if got, want := nameAt(l.names, f.entry.name), fmt.Sprintf("%0100d", edits-1); got != want || f.res.Name != want {
		t.Errorf("name: got %q (handed out: %q), want %q", got, f.res.Name, want)
	}
	if got, want := string(f.res.Scopes), fmt.Sprintf("s%0120d", edits-1); got != want {
		t.Errorf("scopes: got %q, want %q", got, want)
	}
}

// TestLookup_LimitsSideMap: only keys with limits have an entry in the
// limits side map; removing a key's limits removes its entry, and
// changing them over and over keeps one.
func TestLookup_LimitsSideMap(t *testing.T) {
	l := NewLookup(0)
	const owner = "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A"
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	apply := func(apiKey string, v uint64, d domain.EventData) {
		t.Helper()
		e := domain.Event{Type: d.EventType(), Schema: domain.SchemaFor(d), Aggregate: apiKey,
			Version: v, Time: at, Actor: owner, Data: d}
		if err := l.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	plain, limited := "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1D"
	apply(plain, 1, domain.KeyCreated{UserID: owner, SecretHash: domain.Hash{1}, PublicKey: domain.PublicKey{1}})
	apply(limited, 1, domain.KeyCreated{UserID: owner, SecretHash: domain.Hash{1}, PublicKey: domain.PublicKey{1},
		Credits: &domain.Credits{Remaining: 1}})
	if len(l.limits) != 1 || lookupKey(l, plain).entry.flags&flagLimits != 0 {
		t.Fatalf("got %d limits entries (plain key flagged: %v), want the limited key's only", len(l.limits),
			lookupKey(l, plain).entry.flags&flagLimits != 0)
	}
	const edits = 1000
	for i := range uint64(edits) {
		apply(limited, 2+i, domain.KeyRateLimitChanged{RateLimit: &domain.RateLimit{Limit: 1 + i, Window: domain.Period(time.Second)}})
	}
	if len(l.limits) != 1 || lookupKey(l, limited).res.Limits.RateLimit.Limit != edits {
		t.Errorf("after %d changes: %d limits entries, want 1 with the last limit", edits, len(l.limits))
	}
	apply(limited, 2+edits, domain.KeyRateLimitChanged{})
	apply(limited, 3+edits, domain.KeyCreditsChanged{})
	if len(l.limits) != 0 || lookupKey(l, limited).entry.flags&flagLimits != 0 {
		t.Errorf("after removing them: %d limits entries, want none", len(l.limits))
	}
}

// foundKey is what the lookup holds of a key: its entry (a copy) and its
// Result as if it were accepted.
type foundKey struct {
	entry lookupEntry
	res   Result
}

func lookupKey(l *Lookup, apiKey string) foundKey {
	f, res := l.find(apiKey)
	return foundKey{entry: *f.entry, res: res}
}
