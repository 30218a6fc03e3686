package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// keyCase is one given/when/then case of the Key aggregate: fold given,
// run when, and expect either the events in want or an error of wantKind.
// want and wantKind both empty means "no events and no error".
type keyCase struct {
	name     string
	given    []domain.Event
	when     func(k *domain.Key) ([]domain.Event, error)
	want     []domain.Event
	wantKind domain.Kind
}

func runKeyCases(t *testing.T, cases []keyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := givenKey(t, tc.given...)
			before := k
			got, err := tc.when(&k)
			if k != before {
				t.Errorf("command changed the key: got %+v, want %+v", k, before)
			}
			if tc.wantKind != "" {
				if err == nil {
					t.Fatalf("got events %v and nil error, want kind %v", got, tc.wantKind)
				}
				if kind := domain.KindOf(err); kind != tc.wantKind {
					t.Errorf("kind: got %v, want %v (error %v)", kind, tc.wantKind, err)
				}
				if len(got) != 0 {
					t.Errorf("events: got %v, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			assertEvents(t, got, tc.want)
			// Then: what the command recorded folds into the key, as it
			// will when the store replays it.
			for _, e := range got {
				if err := k.Apply(e); err != nil {
					t.Errorf("Apply(recorded %s): got %v, want nil", e.Type, err)
				}
			}
		})
	}
}

// givenKey folds events into a new Key.
func givenKey(t *testing.T, events ...domain.Event) domain.Key {
	t.Helper()
	var k domain.Key
	for _, e := range events {
		if err := k.Apply(e); err != nil {
			t.Fatalf("given: Apply(%s v%d): %v", e.Type, e.Version, err)
		}
	}
	return k
}

func create(cmd domain.CreateKey, now time.Time) func(*domain.Key) ([]domain.Event, error) {
	return func(k *domain.Key) ([]domain.Event, error) { return k.Create(cmd, now) }
}

func revoke(userID string, now time.Time) func(*domain.Key) ([]domain.Event, error) {
	return func(k *domain.Key) ([]domain.Event, error) { return k.Revoke(userID, now) }
}

func regenerate(userID string, h domain.Hash, now time.Time) func(*domain.Key) ([]domain.Event, error) {
	return func(k *domain.Key) ([]domain.Event, error) { return k.RegenerateSecret(userID, h, pubB, 0, now) }
}

func TestKey_Create(t *testing.T) {
	t.Parallel()
	cmd := func(edit func(*domain.CreateKey)) domain.CreateKey {
		c := domain.CreateKey{APIKey: apiKey, UserID: alice, Name: "ci deploy", SecretHash: hashA, PublicKey: pubA}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	withName := func(name string) domain.CreateKey {
		return cmd(func(c *domain.CreateKey) { c.Name = name })
	}
	runKeyCases(t, []keyCase{
		{
			name: "OK",
			when: create(cmd(nil), t0),
			want: []domain.Event{keyCreated(t0, domain.KeyCreated{UserID: alice, Name: "ci deploy", SecretHash: hashA})},
		},
		{
			name: "OKWithExpiry",
			when: create(cmd(func(c *domain.CreateKey) { c.ExpiresAt = t1 }), t0),
			want: []domain.Event{keyCreated(t0, domain.KeyCreated{
				UserID: alice, Name: "ci deploy", SecretHash: hashA, ExpiresAt: timePtr(t1),
			})},
		},
		{
			name: "OKExpiryOneNanosecondAhead",
			when: create(cmd(func(c *domain.CreateKey) { c.ExpiresAt = t0.Add(time.Nanosecond) }), t0),
			want: []domain.Event{keyCreated(t0, domain.KeyCreated{
				UserID: alice, Name: "ci deploy", SecretHash: hashA, ExpiresAt: timePtr(t0.Add(time.Nanosecond)),
			})},
		},
		{
			// Times arrive in any zone; the log holds UTC.
			name: "OKTimesNormalisedToUTC",
			when: create(cmd(func(c *domain.CreateKey) { c.ExpiresAt = t1.In(zoned.Location()) }), zoned),
			want: []domain.Event{keyCreated(t0, domain.KeyCreated{
				UserID: alice, Name: "ci deploy", SecretHash: hashA, ExpiresAt: timePtr(t1),
			})},
		},
		{
			name: "OKNoName",
			when: create(withName(""), t0),
			want: []domain.Event{keyCreated(t0, domain.KeyCreated{UserID: alice, SecretHash: hashA})},
		},
		{
			name: "OKNameMaxRunes",
			when: create(withName(strings.Repeat("é", domain.MaxKeyNameLength)), t0),
			want: []domain.Event{keyCreated(t0, domain.KeyCreated{
				UserID: alice, Name: strings.Repeat("é", domain.MaxKeyNameLength), SecretHash: hashA,
			})},
		},
		{
			name:     "ErrExpiryInPast",
			when:     create(cmd(func(c *domain.CreateKey) { c.ExpiresAt = t0.Add(-time.Second) }), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrExpiryNow",
			when:     create(cmd(func(c *domain.CreateKey) { c.ExpiresAt = t0 }), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrExpiryNowOtherZone",
			when:     create(cmd(func(c *domain.CreateKey) { c.ExpiresAt = zoned }), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrNameTooLong",
			when:     create(withName(strings.Repeat("a", domain.MaxKeyNameLength+1)), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrNameTooManyRunes",
			when:     create(withName(strings.Repeat("é", domain.MaxKeyNameLength+1)), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrNameControlChar",
			when:     create(withName("ci\ndeploy"), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrNameNUL",
			when:     create(withName("ci\x00deploy"), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrNameLeadingSpace",
			when:     create(withName(" ci deploy"), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrNameTrailingSpace",
			when:     create(withName("ci deploy "), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrNameInvalidUTF8",
			when:     create(withName("ci \xff deploy"), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrMalformedAPIKey",
			when:     create(cmd(func(c *domain.CreateKey) { c.APIKey = "ak_01jh6z3q8x4n6v2r9t5m7k3b1c" }), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrAPIKeyWrongPrefix",
			when:     create(cmd(func(c *domain.CreateKey) { c.APIKey = "sk_01JH6Z3Q8X4N6V2R9T5M7K3B1C" }), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrMissingOwner",
			when:     create(cmd(func(c *domain.CreateKey) { c.UserID = "" }), t0),
			wantKind: domain.Invalid,
		},
		{
			name:     "ErrExists",
			given:    []domain.Event{keyCreated(t0, domain.KeyCreated{SecretHash: hashA})},
			when:     create(cmd(nil), t1),
			wantKind: domain.Conflict,
		},
		{
			name:     "ErrExistsRevoked",
			given:    []domain.Event{keyCreated(t0, domain.KeyCreated{SecretHash: hashA}), keyRevoked(2, t1)},
			when:     create(cmd(nil), t2),
			wantKind: domain.Conflict,
		},
	})
}

func TestKey_Revoke(t *testing.T) {
	t.Parallel()
	created := keyCreated(t0, domain.KeyCreated{SecretHash: hashA})
	runKeyCases(t, []keyCase{
		{
			name:  "OK",
			given: []domain.Event{created},
			when:  revoke(alice, t1),
			want:  []domain.Event{keyRevoked(2, t1)},
		},
		{
			name:  "OKAfterRegenerate",
			given: []domain.Event{created, keyRegenerated(2, t1, hashB)},
			when:  revoke(alice, zoned.Add(2*time.Hour)),
			want:  []domain.Event{keyRevoked(3, t2)},
		},
		{
			// An expired key can still be revoked, so that it cannot
			// come back.
			name:  "OKExpired",
			given: []domain.Event{keyCreated(t0, domain.KeyCreated{SecretHash: hashA, ExpiresAt: timePtr(t1)})},
			when:  revoke(alice, t2),
			want:  []domain.Event{keyRevoked(2, t2)},
		},
		{
			name:  "ErrAlreadyRevoked",
			given: []domain.Event{created, keyRevoked(2, t1)},
			when:  revoke(alice, t2),
			want:  nil,
		},
		{
			// Someone else's key looks exactly like a missing one.
			name:     "ErrOtherUser",
			given:    []domain.Event{created},
			when:     revoke(bob, t1),
			wantKind: domain.NotFound,
		},
		{
			name:     "ErrOtherUserRevoked",
			given:    []domain.Event{created, keyRevoked(2, t1)},
			when:     revoke(bob, t2),
			wantKind: domain.NotFound,
		},
		{
			name:     "ErrMissing",
			when:     revoke(alice, t1),
			wantKind: domain.NotFound,
		},
		{
			name:     "ErrEmptyUser",
			given:    []domain.Event{created},
			when:     revoke("", t1),
			wantKind: domain.NotFound,
		},
	})
}

func TestKey_RegenerateSecret(t *testing.T) {
	t.Parallel()
	created := keyCreated(t0, domain.KeyCreated{SecretHash: hashA})
	expiring := keyCreated(t0, domain.KeyCreated{SecretHash: hashA, ExpiresAt: timePtr(t2)})
	runKeyCases(t, []keyCase{
		{
			name:  "OK",
			given: []domain.Event{created},
			when:  regenerate(alice, hashB, t1),
			want:  []domain.Event{keyRegenerated(2, t1, hashB)},
		},
		{
			name:  "OKTwice",
			given: []domain.Event{created, keyRegenerated(2, t1, hashB)},
			when:  regenerate(alice, hashA, zoned.Add(2*time.Hour)),
			want:  []domain.Event{keyRegenerated(3, t2, hashA)},
		},
		{
			name:  "OKBeforeExpiry",
			given: []domain.Event{expiring},
			when:  regenerate(alice, hashB, t2.Add(-time.Nanosecond)),
			want:  []domain.Event{keyRegenerated(2, t2.Add(-time.Nanosecond), hashB)},
		},
		{
			name:     "ErrRevoked",
			given:    []domain.Event{created, keyRevoked(2, t1)},
			when:     regenerate(alice, hashB, t2),
			wantKind: domain.Conflict,
		},
		{
			name:     "ErrExpired",
			given:    []domain.Event{expiring},
			when:     regenerate(alice, hashB, t2),
			wantKind: domain.Conflict,
		},
		{
			name:     "ErrExpiredLongAgo",
			given:    []domain.Event{expiring},
			when:     regenerate(alice, hashB, t2.Add(365*24*time.Hour)),
			wantKind: domain.Conflict,
		},
		{
			name:     "ErrOtherUser",
			given:    []domain.Event{created},
			when:     regenerate(bob, hashB, t1),
			wantKind: domain.NotFound,
		},
		{
			// Ownership is checked first: a stranger learns nothing,
			// not even that the key is revoked.
			name:     "ErrOtherUserRevoked",
			given:    []domain.Event{created, keyRevoked(2, t1)},
			when:     regenerate(bob, hashB, t2),
			wantKind: domain.NotFound,
		},
		{
			name:     "ErrMissing",
			when:     regenerate(alice, hashB, t1),
			wantKind: domain.NotFound,
		},
	})
}

func TestKey_StatusAt(t *testing.T) {
	t.Parallel()
	never := keyCreated(t0, domain.KeyCreated{SecretHash: hashA})
	expiring := keyCreated(t0, domain.KeyCreated{SecretHash: hashA, ExpiresAt: timePtr(t2)})
	tests := []struct {
		name  string
		given []domain.Event
		now   time.Time
		want  domain.KeyStatus
	}{
		{"ActiveNoExpiry", []domain.Event{never}, t0, domain.StatusActive},
		{"ActiveNoExpiryFarFuture", []domain.Event{never}, t0.AddDate(100, 0, 0), domain.StatusActive},
		{"ActiveBeforeExpiry", []domain.Event{expiring}, t2.Add(-time.Nanosecond), domain.StatusActive},
		{"ExpiredAtExpiry", []domain.Event{expiring}, t2, domain.StatusExpired},
		{"ExpiredAtExpiryOtherZone", []domain.Event{expiring}, t2.In(zoned.Location()), domain.StatusExpired},
		{"ExpiredAfterExpiry", []domain.Event{expiring}, t2.Add(time.Nanosecond), domain.StatusExpired},
		{"RevokedAtRevocation", []domain.Event{never, keyRevoked(2, t1)}, t1, domain.StatusRevoked},
		{"RevokedLater", []domain.Event{never, keyRevoked(2, t1)}, t2, domain.StatusRevoked},
		{"RevokedWinsOverExpired", []domain.Event{expiring, keyRevoked(2, t1)}, t2.Add(time.Hour), domain.StatusRevoked},
		{"ActiveAfterRegenerate", []domain.Event{never, keyRegenerated(2, t1, hashB)}, t2, domain.StatusActive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := givenKey(t, tc.given...)
			if got := k.StatusAt(tc.now); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKey_CheckSecret(t *testing.T) {
	t.Parallel()
	right, wrong := secretFrom(t, 1), secretFrom(t, 2)
	created := keyCreated(t0, domain.KeyCreated{SecretHash: right.Hash()})
	expiring := keyCreated(t0, domain.KeyCreated{SecretHash: right.Hash(), ExpiresAt: timePtr(t2)})
	tests := []struct {
		name          string
		given         []domain.Event
		secret        domain.Secret
		ownerDisabled bool
		now           time.Time
		want          domain.Reason
	}{
		{"OK", []domain.Event{created}, right, false, t1, domain.ReasonOK},
		{"OKBeforeExpiry", []domain.Event{expiring}, right, false, t2.Add(-time.Nanosecond), domain.ReasonOK},
		{"OKNewSecret", []domain.Event{created, keyRegenerated(2, t1, wrong.Hash())}, wrong, false, t2, domain.ReasonOK},
		{"ErrWrongSecret", []domain.Event{created}, wrong, false, t1, domain.ReasonWrongSecret},
		{"ErrZeroSecret", []domain.Event{created}, domain.Secret{}, false, t1, domain.ReasonWrongSecret},
		{"ErrOldSecret", []domain.Event{created, keyRegenerated(2, t1, wrong.Hash())}, right, false, t2, domain.ReasonWrongSecret},
		{"ErrRevoked", []domain.Event{created, keyRevoked(2, t1)}, right, false, t2, domain.ReasonRevoked},
		{"ErrExpired", []domain.Event{expiring}, right, false, t2, domain.ReasonExpired},
		{"ErrOwnerDisabled", []domain.Event{created}, right, true, t1, domain.ReasonUserDisabled},
		{"ErrRevokedOwnerDisabled", []domain.Event{created, keyRevoked(2, t1)}, right, true, t2, domain.ReasonRevoked},
		{"ErrWrongSecretOwnerDisabled", []domain.Event{created}, wrong, true, t1, domain.ReasonWrongSecret},
		{"ErrZeroKey", nil, domain.Secret{}, false, t1, domain.ReasonUnknownKey},
		{"ErrZeroKeyRealSecret", nil, right, false, t1, domain.ReasonUnknownKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := givenKey(t, tc.given...)
			if got := k.CheckSecret(tc.secret, tc.ownerDisabled, tc.now); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	// The same, with a history recorded by the command methods rather than
	// written as literals.
	t.Run("OKFromCommands", func(t *testing.T) {
		var k domain.Key
		apply := func(events []domain.Event, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("command: got %v, want nil", err)
			}
			for _, e := range events {
				if err := k.Apply(e); err != nil {
					t.Fatalf("Apply: got %v, want nil", err)
				}
			}
		}
		apply(k.Create(domain.CreateKey{APIKey: apiKey, UserID: alice, SecretHash: right.Hash(), PublicKey: pubA}, t0))
		if got := k.CheckSecret(right, false, t0); got != domain.ReasonOK {
			t.Errorf("after create: got %v, want %v", got, domain.ReasonOK)
		}
		apply(k.RegenerateSecret(alice, wrong.Hash(), pubB, 0, t1))
		if got := k.CheckSecret(right, false, t1); got != domain.ReasonWrongSecret {
			t.Errorf("old secret after regenerate: got %v, want %v", got, domain.ReasonWrongSecret)
		}
		if got := k.CheckSecret(wrong, false, t1); got != domain.ReasonOK {
			t.Errorf("new secret after regenerate: got %v, want %v", got, domain.ReasonOK)
		}
		apply(k.Revoke(alice, t2))
		if got := k.CheckSecret(wrong, false, t2); got != domain.ReasonRevoked {
			t.Errorf("after revoke: got %v, want %v", got, domain.ReasonRevoked)
		}
	})
}

func TestKey_Apply(t *testing.T) {
	t.Parallel()
	created := keyCreated(t0, domain.KeyCreated{SecretHash: hashA})
	userRegistered := domain.Event{
		Type: domain.TypeUserRegistered, Schema: 1, Aggregate: apiKey, Version: 2, Time: t1,
		Data: domain.UserRegistered{Email: "a@example.com", PasswordHash: "x"},
	}
	pointerData := created
	pointerData.Data = &domain.KeyCreated{UserID: alice}
	tests := []struct {
		name  string
		given []domain.Event
		apply domain.Event
	}{
		{"ErrVersionZero", nil, func() domain.Event { e := created; e.Version = 0; return e }()},
		{"ErrVersionGap", []domain.Event{created}, keyRevoked(3, t1)},
		{"ErrVersionRepeated", []domain.Event{created, keyRegenerated(2, t1, hashB)}, keyRevoked(2, t2)},
		{"ErrVersionBehind", []domain.Event{created, keyRegenerated(2, t1, hashB)}, keyRevoked(1, t2)},
		{"ErrCreateTwice", []domain.Event{created}, func() domain.Event { e := created; e.Version = 2; return e }()},
		{"ErrRevokeMissing", nil, keyRevoked(1, t1)},
		{"ErrRegenerateMissing", nil, keyRegenerated(1, t1, hashB)},
		{"ErrRevokeAfterRevoked", []domain.Event{created, keyRevoked(2, t1)}, keyRevoked(3, t2)},
		{"ErrRegenerateAfterRevoked", []domain.Event{created, keyRevoked(2, t1)}, keyRegenerated(3, t2, hashB)},
		{"ErrNotAKeyEvent", []domain.Event{created}, userRegistered},
		{"ErrPointerData", nil, pointerData},
		{"ErrNilData", nil, func() domain.Event { e := created; e.Data = nil; return e }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := givenKey(t, tc.given...)
			before := k
			if err := k.Apply(tc.apply); err == nil {
				t.Errorf("got nil error, want one")
			}
			if k != before {
				t.Errorf("failed Apply changed the key: got %+v, want %+v", k, before)
			}
		})
	}

	t.Run("OK", func(t *testing.T) {
		k := givenKey(t,
			keyCreated(zoned, domain.KeyCreated{Name: "ci", SecretHash: hashA, ExpiresAt: timePtr(t2.In(zoned.Location()))}),
			keyRegenerated(2, t1, hashB),
			keyRevoked(3, t2),
		)
		want := domain.Key{
			APIKey: apiKey, UserID: alice, Name: "ci", SecretHash: hashB, PublicKey: pubB,
			CreatedAt: t0, ExpiresAt: t2, SecretRegeneratedAt: t1, RevokedAt: t2, Version: 3,
		}
		if !k.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("CreatedAt: got %v, want %v", k.CreatedAt, want.CreatedAt)
		}
		if k.ExpiresAt != want.ExpiresAt {
			t.Errorf("ExpiresAt: got %v, want %v (in UTC)", k.ExpiresAt, want.ExpiresAt)
		}
		k.CreatedAt = want.CreatedAt
		if k != want {
			t.Errorf("got %+v, want %+v", k, want)
		}
		if !k.Exists() || !k.Revoked() {
			t.Errorf("Exists, Revoked: got %v, %v, want true, true", k.Exists(), k.Revoked())
		}
	})

	t.Run("ZeroKey", func(t *testing.T) {
		var k domain.Key
		if k.Exists() || k.Revoked() {
			t.Errorf("Exists, Revoked: got %v, %v, want false, false", k.Exists(), k.Revoked())
		}
	})
}

func TestValidateKeyName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"Empty", "", false},
		{"Plain", "ci deploy", false},
		{"Unicode", "déploiement 🚀", false},
		{"MaxRunes", strings.Repeat("€", domain.MaxKeyNameLength), false},
		{"TooLong", strings.Repeat("a", domain.MaxKeyNameLength+1), true},
		{"TooManyRunes", strings.Repeat("€", domain.MaxKeyNameLength+1), true},
		{"OnlySpace", " ", true},
		{"LeadingTab", "\tci", true},
		{"TrailingNewline", "ci\n", true},
		{"LeadingNoBreakSpace", "\u00a0ci", true},
		{"InnerControl", "c\x07i", true},
		{"InnerDEL", "c\x7fi", true},
		{"InnerC1Control", "c\u0085i", true},
		{"InvalidUTF8", "\xc3", true},
		{"Surrogate", "c\xed\xa0\x80i", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := domain.ValidateKeyName(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got %v, want error %v", err, tc.wantErr)
			}
			if err != nil && domain.KindOf(err) != domain.Invalid {
				t.Errorf("kind: got %v, want %v", domain.KindOf(err), domain.Invalid)
			}
		})
	}
}

func TestKey_CheckSecretSignedOnly(t *testing.T) {
	t.Parallel()
	right := secretFrom(t, 7)
	k := givenKey(t, keyCreated(t0, domain.KeyCreated{SecretHash: right.Hash(), SignedOnly: true}))
	if got := k.CheckSecret(right, false, t1); got != domain.ReasonSignedOnly {
		t.Errorf("signed-only key: got %v, want %v", got, domain.ReasonSignedOnly)
	}
	if !k.SignedOnly || k.PublicKey != pubA {
		t.Errorf("got SignedOnly %v, PublicKey %x, want true, %x", k.SignedOnly, k.PublicKey, pubA)
	}
}
