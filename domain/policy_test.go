package domain_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// keyEvent is an event of apiKey with the given version and payload, as
// the key's owner alice records it.
func keyEvent(version uint64, at time.Time, d domain.EventData) domain.Event {
	return domain.Event{Type: d.EventType(), Schema: domain.SchemaOf(d.EventType()), Aggregate: apiKey,
		Version: version, Time: at, Actor: alice, Data: d}
}

func asActor(e domain.Event, actor string) domain.Event { e.Actor = actor; return e }

func TestKey_CreateWithPolicy(t *testing.T) {
	t.Parallel()
	cmd := domain.CreateKey{APIKey: apiKey, UserID: alice, SecretHash: hashA, PublicKey: pubA,
		Scopes: []string{"orders:write", "orders:read", "orders:read"}, Metadata: []byte(` {"plan": "pro"} `)}
	bad := func(edit func(*domain.CreateKey)) domain.CreateKey { c := cmd; edit(&c); return c }
	runKeyCases(t, []keyCase{
		{
			name: "OK",
			when: create(cmd, t0),
			want: []domain.Event{keyCreated(t0, domain.KeyCreated{UserID: alice, SecretHash: hashA,
				Scopes: []string{"orders:read", "orders:write"}, Metadata: json.RawMessage(`{"plan":"pro"}`)})},
		},
		{name: "ErrBadScope", when: create(bad(func(c *domain.CreateKey) { c.Scopes = []string{"orders read"} }), t0),
			wantKind: domain.Invalid},
		{name: "ErrMetadataNotObject", when: create(bad(func(c *domain.CreateKey) { c.Metadata = []byte(`[1]`) }), t0),
			wantKind: domain.Invalid},
	})
	k := givenKey(t, keyCreated(t0, domain.KeyCreated{Scopes: []string{"b", "a"}, Metadata: json.RawMessage(`{ "x" : 1 }`)}))
	if k.Scopes != "a b" || k.Metadata != `{"x":1}` {
		t.Errorf("applied: got scopes %q, metadata %q, want canonical ones", k.Scopes, k.Metadata)
	}
}

// TestKey_ApplyRefusesBadPolicy: a log is believed no further than what
// commands may write.
func TestKey_ApplyRefusesBadPolicy(t *testing.T) {
	t.Parallel()
	for _, e := range []domain.Event{
		keyCreated(t0, domain.KeyCreated{Scopes: []string{"a b"}}),
		keyCreated(t0, domain.KeyCreated{Metadata: json.RawMessage(`"x"`)}),
	} {
		var k domain.Key
		if err := k.Apply(e); err == nil {
			t.Errorf("Apply(%s): got nil, want an error", showData(e.Data))
		}
	}
	k := givenKey(t, keyCreated(t0, domain.KeyCreated{}))
	if err := k.Apply(keyEvent(2, t1, domain.KeyScopesChanged{Scopes: []string{"*a"}})); err == nil {
		t.Error("Apply(bad scopes changed): got nil, want an error")
	}
}

func TestKey_DisableEnable(t *testing.T) {
	t.Parallel()
	created := keyCreated(t0, domain.KeyCreated{})
	disabled := keyEvent(2, t1, domain.KeyDisabled{Reason: "paused"})
	disable := func(user, reason string) func(*domain.Key) ([]domain.Event, error) {
		return func(k *domain.Key) ([]domain.Event, error) { return k.Disable(user, reason, t1) }
	}
	enable := func(user string) func(*domain.Key) ([]domain.Event, error) {
		return func(k *domain.Key) ([]domain.Event, error) { return k.Enable(user, "", t2) }
	}
	runKeyCases(t, []keyCase{
		{name: "Disable", given: []domain.Event{created}, when: disable(alice, "paused"), want: []domain.Event{disabled}},
		{name: "DisableTwiceNoEvents", given: []domain.Event{created, disabled}, when: disable(alice, "")},
		{name: "ErrDisableOthersKey", given: []domain.Event{created}, when: disable(bob, ""), wantKind: domain.NotFound},
		{name: "ErrDisableMissing", when: disable(alice, ""), wantKind: domain.NotFound},
		{name: "ErrDisableRevoked", given: []domain.Event{created, keyRevoked(2, t1)}, when: disable(alice, ""),
			wantKind: domain.Conflict},
		{name: "Enable", given: []domain.Event{created, disabled}, when: enable(alice),
			want: []domain.Event{keyEvent(3, t2, domain.KeyEnabled{})}},
		{name: "EnableActiveNoEvents", given: []domain.Event{created}, when: enable(alice)},
		{name: "ErrEnableOthersKey", given: []domain.Event{created, disabled}, when: enable(bob), wantKind: domain.NotFound},
		{name: "RevokeDisabled", given: []domain.Event{created, disabled}, when: revoke(alice, t2),
			want: []domain.Event{keyRevoked(3, t2)}},
		{name: "AdminDisablesAnyKey", given: []domain.Event{created},
			when: func(k *domain.Key) ([]domain.Event, error) { return k.DisableAsAdmin("admin:root", "abuse", t1) },
			want: []domain.Event{asActor(keyEvent(2, t1, domain.KeyDisabled{Reason: "abuse"}), "admin:root")}},
		{name: "AdminEnables", given: []domain.Event{created, disabled},
			when: func(k *domain.Key) ([]domain.Event, error) { return k.EnableAsAdmin("admin:root", "", t2) },
			want: []domain.Event{asActor(keyEvent(3, t2, domain.KeyEnabled{}), "admin:root")}},
	})
	secret := secretFrom(t, 7)
	k := givenKey(t, keyCreated(t0, domain.KeyCreated{SecretHash: secret.Hash()}), disabled)
	if got := k.CheckSecret(secret, false, t1); got != domain.ReasonKeyDisabled {
		t.Errorf("CheckSecret of a disabled key: got %v, want %v", got, domain.ReasonKeyDisabled)
	}
	if got := k.StatusAt(t1); got != domain.StatusDisabled {
		t.Errorf("StatusAt: got %v, want %v", got, domain.StatusDisabled)
	}
	if err := k.Apply(keyEvent(3, t2, domain.KeyEnabled{})); err != nil {
		t.Fatal(err)
	}
	if got := k.CheckSecret(secret, false, t2); got != domain.ReasonOK {
		t.Errorf("CheckSecret once enabled: got %v, want ok", got)
	}
}

func TestKey_Edit(t *testing.T) {
	t.Parallel()
	created := keyCreated(t0, domain.KeyCreated{Name: "old", Scopes: []string{"a"}, ExpiresAt: timePtr(t2)})
	edit := func(user string, e domain.KeyEdit) func(*domain.Key) ([]domain.Event, error) {
		return func(k *domain.Key) ([]domain.Event, error) { return k.Edit(user, e, t1) }
	}
	all := domain.KeyEdit{SetName: true, Name: "new", SetScopes: true, Scopes: []string{"b", "a"},
		SetMetadata: true, Metadata: []byte(`{"k":"v"}`), SetExpiresAt: true}
	runKeyCases(t, []keyCase{
		{name: "EachChangeOneEvent", given: []domain.Event{created}, when: edit(alice, all), want: []domain.Event{
			keyEvent(2, t1, domain.KeyRenamed{Name: "new"}),
			keyEvent(3, t1, domain.KeyScopesChanged{Scopes: []string{"a", "b"}}),
			keyEvent(4, t1, domain.KeyMetadataChanged{Metadata: json.RawMessage(`{"k":"v"}`)}),
			keyEvent(5, t1, domain.KeyExpiryChanged{}),
		}},
		{name: "UnchangedNoEvents", given: []domain.Event{created}, when: edit(alice, domain.KeyEdit{
			SetName: true, Name: "old", SetScopes: true, Scopes: []string{"a", "a"}, SetMetadata: true,
			SetExpiresAt: true, ExpiresAt: t2.In(zoned.Location())})},
		{name: "ClearScopes", given: []domain.Event{created}, when: edit(alice, domain.KeyEdit{SetScopes: true}),
			want: []domain.Event{keyEvent(2, t1, domain.KeyScopesChanged{Scopes: []string{}})}},
		{name: "ErrOthersKey", given: []domain.Event{created}, when: edit(bob, all), wantKind: domain.NotFound},
		{name: "ErrRevoked", given: []domain.Event{created, keyRevoked(2, t1)}, when: edit(alice, all), wantKind: domain.Conflict},
		{name: "ErrExpiryPast", given: []domain.Event{created},
			when: edit(alice, domain.KeyEdit{SetExpiresAt: true, ExpiresAt: t1}), wantKind: domain.Invalid},
		{name: "ErrBadScopeNothingRecorded", given: []domain.Event{created},
			when:     edit(alice, domain.KeyEdit{SetName: true, Name: "new", SetScopes: true, Scopes: []string{"a b"}}),
			wantKind: domain.Invalid},
		{name: "AdminSetsScopes", given: []domain.Event{created},
			when: func(k *domain.Key) ([]domain.Event, error) {
				return k.EditAsAdmin("admin:root", domain.KeyEdit{SetScopes: true, Scopes: []string{"x"}}, t1)
			},
			want: []domain.Event{asActor(keyEvent(2, t1, domain.KeyScopesChanged{Scopes: []string{"x"}}), "admin:root")}},
	})
}

func TestKey_RegenerateWithGrace(t *testing.T) {
	t.Parallel()
	created := keyCreated(t0, domain.KeyCreated{SecretHash: hashA})
	regen := func(grace time.Duration, given ...domain.Event) ([]domain.Event, error) {
		k := givenKey(t, given...)
		return k.RegenerateSecret(alice, hashB, pubB, grace, t1)
	}
	events, err := regen(time.Hour, created)
	if err != nil || len(events) != 1 {
		t.Fatalf("got %v, %v, want one event", events, err)
	}
	d := events[0].Data.(domain.KeySecretRegenerated)
	if d.PreviousExpiresAt == nil || !d.PreviousExpiresAt.Equal(t2) || events[0].Schema != domain.KeySecretSchema {
		t.Errorf("got %s schema %d, want previous_expires_at %v in schema 2", showData(d), events[0].Schema, t2)
	}
	for _, grace := range []time.Duration{-time.Nanosecond, domain.MaxGracePeriod + time.Nanosecond} {
		if _, err := regen(grace, created); domain.KindOf(err) != domain.Invalid {
			t.Errorf("grace %v: got %v, want Invalid", grace, err)
		}
	}
	if _, err := regen(domain.MaxGracePeriod, created); err != nil {
		t.Errorf("grace %v: got %v, want nil", domain.MaxGracePeriod, err)
	}
	disabled := keyEvent(2, t0, domain.KeyDisabled{})
	if _, err := regen(time.Hour, created, disabled); domain.KindOf(err) != domain.Conflict {
		t.Errorf("grace on a disabled key: got %v, want Conflict", err)
	}
	if _, err := regen(0, created, disabled); err != nil {
		t.Errorf("no grace on a disabled key: got %v, want nil", err)
	}
}

// TestKey_GracePeriod: the previous secret validates strictly before the
// deadline, by the caller's clock, and a regenerate, revoke or disable ends
// it at once.
func TestKey_GracePeriod(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret, third := secretFrom(t, 1), secretFrom(t, 2), secretFrom(t, 3)
	deadline := t1.Add(time.Hour)
	base := []domain.Event{
		keyCreated(t0, domain.KeyCreated{SecretHash: oldSecret.Hash()}),
		keyEvent(2, t1, domain.KeySecretRegenerated{SecretHash: newSecret.Hash(), PublicKey: pubB, PreviousExpiresAt: &deadline}),
	}
	k := givenKey(t, base...)
	if !k.PreviousInGrace(deadline.Add(-time.Nanosecond)) || k.PreviousInGrace(deadline) {
		t.Errorf("PreviousInGrace: want true just before %v and false at it", deadline)
	}
	checks := []struct {
		secret domain.Secret
		at     time.Time
		want   domain.Reason
	}{
		{oldSecret, deadline.Add(-time.Nanosecond), domain.ReasonOK},
		{oldSecret, deadline, domain.ReasonWrongSecret},
		{oldSecret, deadline.Add(time.Nanosecond), domain.ReasonWrongSecret},
		{newSecret, deadline.Add(time.Hour), domain.ReasonOK},
		{third, t1, domain.ReasonWrongSecret},
	}
	for _, c := range checks {
		if got := k.CheckSecret(c.secret, false, c.at); got != c.want {
			t.Errorf("CheckSecret at %v: got %v, want %v", c.at, got, c.want)
		}
	}
	if got := k.CheckSecret(oldSecret, true, t1); got != domain.ReasonUserDisabled {
		t.Errorf("previous secret of a disabled owner: got %v, want %v", got, domain.ReasonUserDisabled)
	}
	enders := map[string]domain.Event{
		"Regenerate": keyEvent(3, t1, domain.KeySecretRegenerated{SecretHash: third.Hash(), PublicKey: pubB}),
		"Revoke":     keyRevoked(3, t1),
		"Disable":    keyEvent(3, t1, domain.KeyDisabled{}),
	}
	for name, e := range enders {
		t.Run("EndedBy"+name, func(t *testing.T) {
			k := givenKey(t, append(base, e)...)
			if got := k.CheckSecret(oldSecret, false, t1); got == domain.ReasonOK {
				t.Errorf("previous secret after %s: got ok, want refused", e.Type)
			}
			if !k.PreviousExpiresAt.IsZero() || k.PreviousSecretHash != (domain.Hash{}) {
				t.Errorf("got previous %x until %v, want none", k.PreviousSecretHash, k.PreviousExpiresAt)
			}
			if name == "Disable" {
				if err := k.Apply(keyEvent(4, t1, domain.KeyEnabled{})); err != nil {
					t.Fatal(err)
				}
				if got := k.CheckSecret(oldSecret, false, t1); got != domain.ReasonWrongSecret {
					t.Errorf("previous secret after disable and enable: got %v, want wrong_secret", got)
				}
			}
		})
	}
	// A second grace period keeps only the secret it replaces.
	k2 := givenKey(t, append(base, keyEvent(3, t1, domain.KeySecretRegenerated{SecretHash: third.Hash(), PublicKey: pubB,
		PreviousExpiresAt: &deadline}))...)
	if got := k2.CheckSecret(oldSecret, false, t1); got != domain.ReasonWrongSecret {
		t.Errorf("first secret after a second regenerate: got %v, want wrong_secret", got)
	}
	if got := k2.CheckSecret(newSecret, false, t1); got != domain.ReasonOK {
		t.Errorf("second secret in its grace period: got %v, want ok", got)
	}
}

// TestDecodeEvent_Schema2KeyCreated: a schema 2 key.created decodes with no
// scopes and no metadata even if fields of those names were slipped in.
func TestDecodeEvent_Schema2KeyCreated(t *testing.T) {
	t.Parallel()
	b := []byte(`{"id":"x","type":"key.created","schema":2,"aggregate":"` + apiKey + `","version":1,"time":"2026-11-01T00:00:00Z","actor":"` + alice +
		`","data":{"user_id":"` + alice + `","secret_hash":"e22c10f4e56a5a7d73c4d42ed6730fe0f8bb312d26f40d189f2d367ed3317f03","public_key":"dd00000000000000000000000000000000000000000000000000000000000004","scopes":["*"],"metadata":{"a":1}}}`)
	e, err := domain.DecodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Data.(domain.KeyCreated); d.Scopes != nil || d.Metadata != nil {
		t.Errorf("got %s, want no scopes or metadata from a schema 2 event", showData(d))
	}
}
