package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
)

// SnapshotTestLookup returns a lookup that uses every part a snapshot
// carries: names (renamed, so the arena holds garbage), scope sets (one
// freed), metadata, expiry, public keys, revoked and disabled keys, a
// grace-period secret, limits, team and service-account keys, disabled and
// erased users, a disabled team and blocked service accounts. n is the
// number of plain keys added beside them.
func snapshotTestLookup(t testing.TB, n int) *Lookup {
	l := NewLookup(0)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	id := func(prefix string, i int) string {
		var u ulid.ULID
		u[0], u[14], u[15] = byte(len(prefix)), byte(i>>8), byte(i)
		return prefix + u.String()
	}
	apply := func(agg string, v uint64, d domain.EventData) {
		t.Helper()
		e := domain.Event{Type: d.EventType(), Schema: domain.SchemaFor(d), Aggregate: agg, Version: v, Time: at, Actor: "system", Data: d}
		if err := l.Apply(e); err != nil {
			t.Fatalf("%s: %v", e.Type, err)
		}
	}
	exp := at.Add(time.Hour)
	until := at.Add(time.Minute)
	team, account := id(domain.TeamIDPrefix, 1), id(domain.ServiceAccountIDPrefix, 1)
	for i := range 12 {
		key, user := id(domain.APIKeyPrefix, i), id(domain.UserIDPrefix, i%4)
		c := domain.KeyCreated{UserID: user, Name: fmt.Sprintf("key %d", i), SecretHash: domain.Hash{byte(i), 1},
			Scopes: []string{"read", fmt.Sprintf("s%d", i%3)}}
		switch i {
		case 1:
			c.PublicKey, c.SignedOnly = domain.PublicKey{1, 2, 3}, true
		case 2:
			c.ExpiresAt = &exp
		case 3:
			c.Metadata = json.RawMessage(`{"tier":"gold"}`)
		case 4:
			c.RateLimit = &domain.RateLimit{Limit: 10, Window: domain.Period(time.Minute)}
			c.Credits = &domain.Credits{Remaining: 100, Refill: &domain.Refill{Amount: 5, Interval: domain.Period(time.Hour)}}
		case 5:
			c.TeamID = team
		case 6:
			c.TeamID, c.ServiceAccount = team, account
		case 7:
			c.Credits = &domain.Credits{Remaining: 3}
		}
		apply(key, 1, c)
		switch i {
		case 8:
			apply(key, 2, domain.KeyRevoked{})
		case 9:
			apply(key, 2, domain.KeyDisabled{})
		case 10:
			apply(key, 2, domain.KeySecretRegenerated{SecretHash: domain.Hash{9, 9}, PreviousExpiresAt: &until})
		case 11:
			apply(key, 2, domain.KeyRenamed{Name: "renamed"})
			apply(key, 3, domain.KeyScopesChanged{Scopes: []string{"only-here"}})
			apply(key, 4, domain.KeyScopesChanged{Scopes: []string{"write"}}) // frees "only-here"
		}
	}
	for i := range n {
		apply(id(domain.APIKeyPrefix, 1000+i), 1, domain.KeyCreated{UserID: id(domain.UserIDPrefix, 100+i%50),
			SecretHash: domain.Hash{byte(i), byte(i >> 8), 7}, Scopes: []string{"read", "s0"}})
	}
	apply(id(domain.UserIDPrefix, 1), 2, domain.UserDisabled{})
	apply(id(domain.UserIDPrefix, 2), 2, domain.UserErased{})
	apply(team, 2, domain.TeamDisabled{})
	apply(team, 3, domain.TeamServiceAccountDisabled{ServiceAccount: account})
	apply(team, 4, domain.TeamServiceAccountDeleted{ServiceAccount: id(domain.ServiceAccountIDPrefix, 2)})
	return l
}

// comparable returns l's state with what depends on history order (the
// free scope set slots) sorted.
func comparableLookup(l *Lookup) *Lookup {
	slices.Sort(l.freeSets)
	return l
}

// TestLookup_SnapshotRoundTrip: a lookup read from its snapshot is the
// lookup, part for part, and answers every key the same.
func TestLookup_SnapshotRoundTrip(t *testing.T) {
	l := snapshotTestLookup(t, 20000)
	b := l.AppendSnapshot(nil)
	got, err := ReadSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.freeSets) != 1 || len(got.metadata) != 1 || len(got.previous) != 1 || len(got.limits) != 2 ||
		len(got.teamKeys) != 2 || len(got.disabled) != 2 || len(got.disabledTeams) != 1 || len(got.blockedAccounts) != 2 {
		t.Fatalf("the test lookup does not use every part: free sets %d, metadata %d, previous %d, limits %d, team keys %d, disabled %d, %d, %d",
			len(got.freeSets), len(got.metadata), len(got.previous), len(got.limits), len(got.teamKeys), len(got.disabled),
			len(got.disabledTeams), len(got.blockedAccounts))
	}
	if !reflect.DeepEqual(comparableLookup(got), comparableLookup(l)) {
		t.Fatal("the lookup read from the snapshot differs from the one written")
	}
	// And it goes on as the original does: the freed slot is reused.
	if again := got.AppendSnapshot(nil); len(again) != len(b) {
		t.Errorf("snapshot of the read lookup: got %d bytes, want %d", len(again), len(b))
	}
}

// TestReadSnapshot_Malformed: truncations, trailing bytes and indexes out
// of range are refused, never a panic.
func TestReadSnapshot_Malformed(t *testing.T) {
	b := snapshotTestLookup(t, 3).AppendSnapshot(nil)
	for n := range len(b) {
		if _, err := ReadSnapshot(b[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", n, len(b))
		}
	}
	if _, err := ReadSnapshot(append(bytes.Clone(b), 0)); err == nil {
		t.Error("a trailing byte: accepted")
	}
	// A count of 2^62 owners must be refused before allocating.
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f}
	if _, err := ReadSnapshot(huge); err == nil {
		t.Error("a huge owner count: accepted")
	}
}
