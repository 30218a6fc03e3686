package projections_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
	"github.com/keyledger/keyledger/projections"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const waitTimeout = 10 * time.Second

func newAPIKey() string { return domain.APIKeyPrefix + ulid.Make().String() }
func newUserID() string { return domain.UserIDPrefix + ulid.Make().String() }

func keyCreated(apiKey, userID string, seq uint64) domain.Event {
	return domain.Event{Type: domain.TypeKeyCreated, Schema: domain.KeyPolicySchema, Aggregate: apiKey,
		Version: 1, Time: t0, Actor: userID, Sequence: seq,
		Data: domain.KeyCreated{UserID: userID, Name: "key " + apiKey[len(apiKey)-4:], SecretHash: domain.Hash{0x01},
			PublicKey: domain.PublicKey{0x01}}}
}

func keyRegenerated(apiKey, userID string, version, seq uint64, h domain.Hash) domain.Event {
	return domain.Event{Type: domain.TypeKeySecretRegenerated, Schema: domain.KeySecretSchema, Aggregate: apiKey,
		Version: version, Time: t0.Add(time.Duration(version) * time.Minute), Actor: userID, Sequence: seq,
		Data: domain.KeySecretRegenerated{SecretHash: h, PublicKey: domain.PublicKey{0x02}}}
}

func keyRevoked(apiKey, userID string, version, seq uint64) domain.Event {
	return domain.Event{Type: domain.TypeKeyRevoked, Schema: domain.CurrentSchema, Aggregate: apiKey,
		Version: version, Time: t0.Add(time.Duration(version) * time.Minute), Actor: userID, Sequence: seq,
		Data: domain.KeyRevoked{}}
}

// testEmailKey and testDataKey stand for the ledger's email hash key and
// every user's data key.
var (
	testEmailKey = []byte("test email hash key, 32 bytes ok")
	testDataKey  = []byte("test data key for every user, 32")
)

func emailReserved(email, userID string, seq uint64) domain.Event {
	return domain.Event{Type: domain.TypeEmailReserved, Schema: domain.CurrentSchema,
		Aggregate: domain.EmailAggregate(testEmailKey, email), Version: 1, Time: t0, Actor: userID, Sequence: seq,
		Data: domain.EmailReserved{UserID: userID}}
}

// userRegistered is a registration with the email and hash sealed under
// testDataKey.
func userRegistered(userID, email string, seq uint64) domain.Event {
	sealed, err := domain.SealPersonal(testDataKey, userID, domain.TypeUserRegistered, domain.UserRegisteredSchema,
		domain.Personal{Email: email, PasswordHash: "$argon2id$hash-of-" + userID}, rand.Reader)
	if err != nil {
		panic(err)
	}
	return domain.Event{Type: domain.TypeUserRegistered, Schema: domain.UserRegisteredSchema, Aggregate: userID,
		Version: 1, Time: t0, Actor: userID, Sequence: seq, Data: domain.UserRegistered{Personal: sealed}}
}

// legacyEmailReserved and legacyUserRegistered are a registration as logs
// written before sealing hold it: a bare SHA-256 reservation, the email and
// hash in clear.
func legacyEmailReserved(email, userID string, seq uint64) domain.Event {
	e := emailReserved(email, userID, seq)
	e.Aggregate = domain.LegacyEmailAggregate(email)
	return e
}

func legacyUserRegistered(userID, email string, seq uint64) domain.Event {
	return domain.Event{Type: domain.TypeUserRegistered, Schema: 1, Aggregate: userID,
		Version: 1, Time: t0, Actor: userID, Sequence: seq,
		Data: domain.UserRegistered{Email: email, PasswordHash: "$argon2id$hash-of-" + userID}}
}

// reservedAgain makes a reservation the second event of its aggregate.
func reservedAgain(e domain.Event) domain.Event {
	e.Version = 2
	return e
}

func userErased(userID string, version, seq uint64) domain.Event {
	return domain.Event{Type: domain.TypeUserErased, Schema: 1, Aggregate: userID, Version: version,
		Time: t0.Add(time.Hour), Actor: userID, Sequence: seq, Data: domain.UserErased{}}
}

// byEmail finds a user by address as the ledger does: the reservation
// (keyed, else legacy) names the user, whose own record, opened, carries
// the address.
func byEmail(users *projections.Users, email string) (domain.User, bool) {
	u, ok := users.ByEmailKey(domain.EmailAggregate(testEmailKey, email), domain.LegacyEmailAggregate(email))
	if !ok {
		return domain.User{}, false
	}
	if u.Personal != "" {
		p, err := domain.OpenPersonal(testDataKey, u.ID, domain.TypeUserRegistered, domain.UserRegisteredSchema, u.Personal)
		if err != nil {
			return domain.User{}, false
		}
		u.Email, u.PasswordHash = p.Email, p.PasswordHash
	}
	if u.Email != email {
		return domain.User{}, false
	}
	return u, true
}

func mustApply(t *testing.T, m projections.Model, events ...domain.Event) {
	t.Helper()
	for _, e := range events {
		if err := m.Apply(e); err != nil {
			t.Fatalf("Apply %s %s v%d: %v", e.Type, e.Aggregate, e.Version, err)
		}
	}
}

// addKeys creates n keys for userID in keys, oldest first, with sequences
// from *seq on, and returns their api keys in creation order.
func addKeys(t *testing.T, keys *projections.Keys, userID string, n int, seq *uint64) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		*seq++
		out[i] = newAPIKey()
		mustApply(t, keys, keyCreated(out[i], userID, *seq))
	}
	return out
}

func apiKeys(ks []domain.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.APIKey
	}
	return out
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// listAll pages through a user's keys with limit and returns the api keys
// in the order listed and the size of each page.
func listAll(t *testing.T, keys *projections.Keys, userID string, limit int) ([]string, []int) {
	t.Helper()
	var all []string
	var sizes []int
	cursor := ""
	for range 1000 {
		page, next, err := keys.ListByUser(userID, limit, cursor)
		if err != nil {
			t.Fatalf("ListByUser(%q, %d, %q): %v", userID, limit, cursor, err)
		}
		all = append(all, apiKeys(page)...)
		sizes = append(sizes, len(page))
		if next == "" {
			return all, sizes
		}
		cursor = next
	}
	t.Fatalf("ListByUser(%q, %d): more than 1000 pages", userID, limit)
	return nil, nil
}

func TestKeys_Apply(t *testing.T) {
	t.Parallel()
	alice := newUserID()

	t.Run("Created", func(t *testing.T) {
		keys := projections.NewKeys()
		k := newAPIKey()
		mustApply(t, keys, keyCreated(k, alice, 7))
		got, seq, ok := keys.Get(k)
		if !ok {
			t.Fatalf("Get(%s): got not found, want the key", k)
		}
		if got.APIKey != k || got.UserID != alice || got.Version != 1 || !got.CreatedAt.Equal(t0) {
			t.Errorf("got %+v, want key %s of %s at version 1 created %v", got, k, alice, t0)
		}
		if seq != 7 {
			t.Errorf("got seq %d, want 7", seq)
		}
		if n := keys.Len(); n != 1 {
			t.Errorf("got Len %d, want 1", n)
		}
	})

	t.Run("FollowsHistory", func(t *testing.T) {
		keys := projections.NewKeys()
		k := newAPIKey()
		newHash := domain.Hash{0x02}
		mustApply(t, keys, keyCreated(k, alice, 3), keyRegenerated(k, alice, 2, 9, newHash), keyRevoked(k, alice, 3, 12))
		got, seq, _ := keys.Get(k)
		if got.Version != 3 || got.SecretHash != newHash || !got.Revoked() || got.SecretRegeneratedAt.IsZero() {
			t.Errorf("got %+v, want version 3, regenerated hash, revoked", got)
		}
		if seq != 12 {
			t.Errorf("got seq %d, want 12", seq)
		}
		if n := keys.Len(); n != 1 {
			t.Errorf("got Len %d, want 1", n)
		}
		// The listing reflects the key's current state too.
		page, _, err := keys.ListByUser(alice, 10, "")
		if err != nil || len(page) != 1 || !reflect.DeepEqual(page[0], got) {
			t.Errorf("ListByUser: got %+v, %v, want [%+v]", page, err, got)
		}
	})

	t.Run("ErrVersionGap", func(t *testing.T) {
		keys := projections.NewKeys()
		k := newAPIKey()
		mustApply(t, keys, keyCreated(k, alice, 1))
		before, beforeSeq, _ := keys.Get(k)
		if err := keys.Apply(keyRevoked(k, alice, 5, 2)); err == nil {
			t.Fatalf("got nil, want an error for version 5 after 1")
		}
		after, afterSeq, _ := keys.Get(k)
		if !reflect.DeepEqual(after, before) || afterSeq != beforeSeq {
			t.Errorf("got %+v at %d, want unchanged %+v at %d", after, afterSeq, before, beforeSeq)
		}
	})

	t.Run("ErrUnknownKey", func(t *testing.T) {
		keys := projections.NewKeys()
		k := newAPIKey()
		if err := keys.Apply(keyRevoked(k, alice, 1, 1)); err == nil {
			t.Fatalf("got nil, want an error for revoking a key that does not exist")
		}
		if _, _, ok := keys.Get(k); ok {
			t.Errorf("Get: got found, want not found")
		}
		if n := keys.Len(); n != 0 {
			t.Errorf("got Len %d, want 0", n)
		}
		page, _, _ := keys.ListByUser("", 10, "")
		if len(page) != 0 {
			t.Errorf("ListByUser(\"\"): got %v, want none", apiKeys(page))
		}
	})

	t.Run("IgnoresOtherCategories", func(t *testing.T) {
		keys := projections.NewKeys()
		mustApply(t, keys, emailReserved("a@example.com", alice, 1), userRegistered(alice, "a@example.com", 2))
		if n := keys.Len(); n != 0 {
			t.Errorf("got Len %d, want 0", n)
		}
	})
}

func TestKeys_Get(t *testing.T) {
	t.Parallel()
	t.Run("Missing", func(t *testing.T) {
		keys := projections.NewKeys()
		k, seq, ok := keys.Get(newAPIKey())
		if ok || seq != 0 || k.Exists() {
			t.Errorf("got %+v, %d, %v, want zero key, 0, false", k, seq, ok)
		}
	})
}

func TestKeys_ListByUser(t *testing.T) {
	t.Parallel()
	t.Run("NewestFirst", func(t *testing.T) {
		keys := projections.NewKeys()
		alice := newUserID()
		var seq uint64
		created := addKeys(t, keys, alice, 5, &seq)
		page, next, err := keys.ListByUser(alice, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := apiKeys(page), reversed(created); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		if next != "" {
			t.Errorf("got next %q, want none", next)
		}
	})

	t.Run("Pages", func(t *testing.T) {
		for _, tc := range []struct {
			n, limit  int
			wantSizes []int
		}{
			{n: 23, limit: 5, wantSizes: []int{5, 5, 5, 5, 3}},
			{n: 10, limit: 5, wantSizes: []int{5, 5}}, // no empty last page
			{n: 3, limit: 1, wantSizes: []int{1, 1, 1}},
			{n: 4, limit: 50, wantSizes: []int{4}},
			{n: 0, limit: 5, wantSizes: []int{0}},
		} {
			t.Run(fmt.Sprintf("%dBy%d", tc.n, tc.limit), func(t *testing.T) {
				keys := projections.NewKeys()
				alice := newUserID()
				var seq uint64
				created := addKeys(t, keys, alice, tc.n, &seq)
				got, sizes := listAll(t, keys, alice, tc.limit)
				if want := reversed(created); !slices.Equal(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
				if !slices.Equal(sizes, tc.wantSizes) {
					t.Errorf("got page sizes %v, want %v", sizes, tc.wantSizes)
				}
			})
		}
	})

	t.Run("KeyAddedBetweenPages", func(t *testing.T) {
		keys := projections.NewKeys()
		alice := newUserID()
		var seq uint64
		created := addKeys(t, keys, alice, 10, &seq)

		page1, next, err := keys.ListByUser(alice, 4, "")
		if err != nil || next == "" {
			t.Fatalf("page 1: got next %q, %v, want a cursor", next, err)
		}
		added := addKeys(t, keys, alice, 3, &seq)
		page2, next, err := keys.ListByUser(alice, 4, next)
		if err != nil || next == "" {
			t.Fatalf("page 2: got next %q, %v, want a cursor", next, err)
		}
		page3, next, err := keys.ListByUser(alice, 4, next)
		if err != nil || next != "" {
			t.Fatalf("page 3: got next %q, %v, want the last page", next, err)
		}
		got := slices.Concat(apiKeys(page1), apiKeys(page2), apiKeys(page3))
		if want := reversed(created); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v (each key created before page 1 exactly once)", got, want)
		}
		// The new keys are on a fresh first page.
		fresh, _, err := keys.ListByUser(alice, 3, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := apiKeys(fresh), reversed(added); !slices.Equal(got, want) {
			t.Errorf("fresh first page: got %v, want %v", got, want)
		}
	})

	t.Run("ErrInvalidCursor", func(t *testing.T) {
		keys := projections.NewKeys()
		alice, bob := newUserID(), newUserID()
		var seq uint64
		addKeys(t, keys, alice, 10, &seq)
		addKeys(t, keys, bob, 2, &seq)
		// A cursor deep into alice's list points past the end of bob's.
		_, aliceCursor, err := keys.ListByUser(alice, 1, "")
		if err != nil || aliceCursor == "" {
			t.Fatalf("got %q, %v, want a cursor", aliceCursor, err)
		}
		for name, cursor := range map[string]string{
			"NotBase64":       "%%%not-a-cursor%%%",
			"ForeignBase64":   base64.RawURLEncoding.EncodeToString([]byte("hello")),
			"NegativeIndex":   base64.RawURLEncoding.EncodeToString([]byte("k1:-1")),
			"TooLong":         strings.Repeat("A", 200),
			"PastEndOfList":   aliceCursor,
			"PaddedBase64":    base64.URLEncoding.EncodeToString([]byte("k1:1")),
			"NotAnInteger":    base64.RawURLEncoding.EncodeToString([]byte("k1:one")),
			"OtherCursorKind": base64.RawURLEncoding.EncodeToString([]byte("u1:1")),
		} {
			t.Run(name, func(t *testing.T) {
				page, next, err := keys.ListByUser(bob, 5, cursor)
				if got := domain.KindOf(err); got != domain.Invalid {
					t.Errorf("got %v (%v), want %v", got, err, domain.Invalid)
				}
				if page != nil || next != "" {
					t.Errorf("got %v, %q, want no page and no cursor", apiKeys(page), next)
				}
			})
		}
	})

	t.Run("OnlyOwnKeys", func(t *testing.T) {
		keys := projections.NewKeys()
		alice, bob := newUserID(), newUserID()
		var seq uint64
		var aliceKeys, bobKeys []string
		for range 6 { // interleaved creations
			aliceKeys = append(aliceKeys, addKeys(t, keys, alice, 1, &seq)...)
			bobKeys = append(bobKeys, addKeys(t, keys, bob, 1, &seq)...)
		}
		for _, tc := range []struct {
			user string
			want []string
		}{
			{alice, reversed(aliceKeys)},
			{bob, reversed(bobKeys)},
			{newUserID(), nil},
		} {
			got, _ := listAll(t, keys, tc.user, 4)
			if !slices.Equal(got, tc.want) {
				t.Errorf("user %s: got %v, want %v", tc.user, got, tc.want)
			}
		}
	})
}

func TestUsers_Apply(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		users := projections.NewUsers()
		alice := newUserID()
		reg := userRegistered(alice, "alice@example.com", 2)
		mustApply(t, users, emailReserved("alice@example.com", alice, 1), reg)
		u, ok := users.ByID(alice)
		if !ok {
			t.Fatalf("ByID: got not found, want %s", alice)
		}
		// The read model keeps the sealed record, nothing in clear.
		if u.ID != alice || u.Email != "" || u.PasswordHash != "" || u.Personal != reg.Data.(domain.UserRegistered).Personal ||
			u.Version != 1 || !u.CreatedAt.Equal(t0) {
			t.Errorf("got %+v, want alice registered at %v, sealed", u, t0)
		}
		if got, ok := byEmail(users, "alice@example.com"); !ok || got.PasswordHash != "$argon2id$hash-of-"+alice {
			t.Errorf("opened: got %+v, %v, want alice's hash", got, ok)
		}
	})

	t.Run("ErrRegisteredTwice", func(t *testing.T) {
		users := projections.NewUsers()
		alice := newUserID()
		first := userRegistered(alice, "alice@example.com", 1)
		mustApply(t, users, first)
		again := userRegistered(alice, "other@example.com", 2)
		if err := users.Apply(again); err == nil {
			t.Fatalf("got nil, want an error for a second registration at version 1")
		}
		again.Version = 2
		if err := users.Apply(again); err == nil {
			t.Fatalf("got nil, want an error for a second registration at version 2")
		}
		if u, _ := users.ByID(alice); u.Personal != first.Data.(domain.UserRegistered).Personal {
			t.Errorf("got alice's record changed, want it kept")
		}
	})

	t.Run("IgnoresKeyEvents", func(t *testing.T) {
		users := projections.NewUsers()
		alice := newUserID()
		k := newAPIKey()
		mustApply(t, users, keyCreated(k, alice, 1), keyRevoked(k, alice, 2, 2))
		if _, ok := users.ByID(alice); ok {
			t.Errorf("ByID: got found, want not found")
		}
		if _, ok := users.ByID(k); ok {
			t.Errorf("ByID(%s): got found, want not found", k)
		}
	})
}

func TestUsers_ByID(t *testing.T) {
	t.Parallel()
	t.Run("Missing", func(t *testing.T) {
		users := projections.NewUsers()
		if u, ok := users.ByID(newUserID()); ok || u.Exists() {
			t.Errorf("got %+v, %v, want zero user, false", u, ok)
		}
	})

	t.Run("WithoutReservation", func(t *testing.T) {
		users := projections.NewUsers()
		alice := newUserID()
		mustApply(t, users, userRegistered(alice, "alice@example.com", 1))
		if _, ok := users.ByID(alice); !ok {
			t.Errorf("got not found, want %s", alice)
		}
	})
}

func TestUsers_ByEmail(t *testing.T) {
	t.Parallel()
	alice, bob := newUserID(), newUserID()
	for _, tc := range []struct {
		name   string
		events []domain.Event
		email  string
		want   string // user id; "" for not found
	}{
		{
			name:   "OK",
			events: []domain.Event{emailReserved("a@example.com", alice, 1), userRegistered(alice, "a@example.com", 2)},
			email:  "a@example.com", want: alice,
		},
		{
			name:   "UserBeforeReservation",
			events: []domain.Event{userRegistered(alice, "a@example.com", 1), emailReserved("a@example.com", alice, 2)},
			email:  "a@example.com", want: alice,
		},
		{
			name:   "ReservationOnly",
			events: []domain.Event{emailReserved("a@example.com", alice, 1)},
			email:  "a@example.com",
		},
		{
			name:   "UserOnly",
			events: []domain.Event{userRegistered(alice, "a@example.com", 1)},
			email:  "a@example.com",
		},
		{
			name:   "UserHasOtherEmail",
			events: []domain.Event{emailReserved("a@example.com", alice, 1), userRegistered(alice, "b@example.com", 2)},
			email:  "a@example.com",
		},
		{
			name: "ReservationNamesOtherUser",
			events: []domain.Event{emailReserved("a@example.com", bob, 1), userRegistered(alice, "a@example.com", 2),
				userRegistered(bob, "b@example.com", 3)},
			email: "a@example.com",
		},
		{
			name: "FirstReservationWins",
			events: []domain.Event{emailReserved("a@example.com", alice, 1), emailReserved("a@example.com", bob, 2),
				userRegistered(alice, "a@example.com", 3), userRegistered(bob, "a@example.com", 4)},
			email: "a@example.com", want: alice,
		},
		{
			name:   "Legacy",
			events: []domain.Event{legacyEmailReserved("a@example.com", alice, 1), legacyUserRegistered(alice, "a@example.com", 2)},
			email:  "a@example.com", want: alice,
		},
		{
			name: "ErasedHolder",
			events: []domain.Event{emailReserved("a@example.com", alice, 1), userRegistered(alice, "a@example.com", 2),
				userErased(alice, 2, 3)},
			email: "a@example.com",
		},
		{
			name: "ErasedLegacyHolder",
			events: []domain.Event{legacyEmailReserved("a@example.com", alice, 1), legacyUserRegistered(alice, "a@example.com", 2),
				userErased(alice, 2, 3)},
			email: "a@example.com",
		},
		{
			name: "ReservedAgainAfterErasure",
			events: []domain.Event{emailReserved("a@example.com", alice, 1), userRegistered(alice, "a@example.com", 2),
				userErased(alice, 2, 3), reservedAgain(emailReserved("a@example.com", bob, 4)), userRegistered(bob, "a@example.com", 5)},
			email: "a@example.com", want: bob,
		},
		{
			name:   "NotNormalised",
			events: []domain.Event{emailReserved("a@example.com", alice, 1), userRegistered(alice, "a@example.com", 2)},
			email:  "A@Example.com",
		},
		{
			name:   "OtherAddress",
			events: []domain.Event{emailReserved("a@example.com", alice, 1), userRegistered(alice, "a@example.com", 2)},
			email:  "c@example.com",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users := projections.NewUsers()
			mustApply(t, users, tc.events...)
			u, ok := byEmail(users, tc.email)
			if ok != (tc.want != "") || u.ID != tc.want {
				t.Errorf("ByEmail(%q): got %q, %v, want %q, %v", tc.email, u.ID, ok, tc.want, tc.want != "")
			}
			if ok && u.Email != tc.email {
				t.Errorf("got email %q, want %q", u.Email, tc.email)
			}
		})
	}
}

// Projector tests run against a real nats-server.

type logEnv struct {
	nc    *nats.Conn
	store *eventstore.Store
}

func newLog(t *testing.T) *logEnv {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	store, err := eventstore.New(ctx, nc, eventstore.WithMemoryStorage(), eventstore.WithSigningKey(testkeys.Ledger()))
	if err != nil {
		t.Fatalf("eventstore.New: %v", err)
	}
	return &logEnv{nc: nc, store: store}
}

func (l *logEnv) append(t *testing.T, events ...eventstore.Pending) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	seqs, err := l.store.Append(ctx, events...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seqs
}

// createKey appends a new key of userID and returns it and its sequence.
func (l *logEnv) createKey(t *testing.T, userID string) (string, uint64) {
	t.Helper()
	k := newAPIKey()
	return k, l.append(t, eventstore.Pending{Event: keyCreated(k, userID, 0)})[0]
}

// registerUser appends the reservation and the registration of a user.
func (l *logEnv) registerUser(t *testing.T, email string) string {
	t.Helper()
	id := newUserID()
	l.append(t, eventstore.Pending{Event: emailReserved(email, id, 0)}, eventstore.Pending{Event: userRegistered(id, email, 0)})
	return id
}

func (l *logEnv) head(t *testing.T) uint64 {
	t.Helper()
	h, err := l.store.Head(context.Background())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

// publishRaw stores data on subject as is, bypassing the event store.
func (l *logEnv) publishRaw(t *testing.T, subject string, data []byte) uint64 {
	t.Helper()
	js, err := jetstream.New(l.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ack, err := js.Publish(ctx, subject, data)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

// startProjector starts a projector over log with fresh read models and
// stops it when the test ends.
func startProjector(t *testing.T, log projections.Log) (*projections.Projector, *projections.Keys, *projections.Users) {
	t.Helper()
	keys, users := projections.NewKeys(), projections.NewUsers()
	p, err := projections.New(log, nil, keys, users)
	if err != nil {
		t.Fatalf("projections.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(p.Stop)
	return p, keys, users
}

func waitFor(t *testing.T, p *projections.Projector, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := p.WaitFor(ctx, seq); err != nil {
		t.Fatalf("WaitFor(%d): %v", seq, err)
	}
}

// gatedLog is the real store with a gate in front of the projector's
// handler: each stored event waits for a token before it is handed on, so
// a test can hold the catch-up at a known point. Events are not altered.
type gatedLog struct {
	*eventstore.Store
	gate chan struct{}
}

func (g *gatedLog) Subscribe(ctx context.Context, from uint64, h eventstore.Handler, onErr func(error), opts ...eventstore.SubscribeOption) (*eventstore.Subscription, error) {
	return g.Store.Subscribe(ctx, from, func(e domain.Event, err error) {
		<-g.gate
		h(e, err)
	}, onErr, opts...)
}

func TestProjector_Start(t *testing.T) {
	t.Parallel()
	t.Run("NotStarted", func(t *testing.T) {
		l := newLog(t)
		p, err := projections.New(l.store, nil, projections.NewKeys())
		if err != nil {
			t.Fatal(err)
		}
		if p.Ready() {
			t.Errorf("Ready: got true, want false before Start")
		}
	})

	t.Run("ErrNoModels", func(t *testing.T) {
		l := newLog(t)
		if _, err := projections.New(l.store, nil); err == nil {
			t.Errorf("got nil, want an error without models")
		}
		if _, err := projections.New(nil, nil, projections.NewKeys()); err == nil {
			t.Errorf("got nil, want an error without a log")
		}
		if _, err := projections.New(l.store, nil, projections.NewKeys(), nil); err == nil {
			t.Errorf("got nil, want an error for a nil model")
		}
	})

	t.Run("EmptyLog", func(t *testing.T) {
		l := newLog(t)
		p, _, _ := startProjector(t, l.store)
		natstest.Eventually(t, waitTimeout, p.Ready, "projector ready")
		// The log holds only its genesis.
		if got, want := p.Status(), (projections.Status{Ready: true, Applied: 1, Target: 1}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})

	t.Run("CatchesUp", func(t *testing.T) {
		l := newLog(t)
		alice := l.registerUser(t, "alice@example.com")
		var created []string
		for range 30 {
			k, _ := l.createKey(t, alice)
			created = append(created, k)
		}
		head := l.head(t)
		p, keys, users := startProjector(t, l.store)
		natstest.Eventually(t, waitTimeout, p.Ready, "projector ready")
		if got, want := p.Status(), (projections.Status{Ready: true, Applied: head, Target: head}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
		page, _, err := keys.ListByUser(alice, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := apiKeys(page), reversed(created); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		if u, ok := byEmail(users, "alice@example.com"); !ok || u.ID != alice {
			t.Errorf("ByEmail: got %q, %v, want %q", u.ID, ok, alice)
		}
	})

	t.Run("ReadyOnlyOnceCaughtUp", func(t *testing.T) {
		l := newLog(t)
		alice := newUserID()
		const n = 5
		var lastKey string
		for range n {
			lastKey, _ = l.createKey(t, alice)
		}
		gated := &gatedLog{Store: l.store, gate: make(chan struct{})}
		p, keys, _ := startProjector(t, gated)
		t.Cleanup(func() { close(gated.gate) }) // runs before p.Stop

		const genesis = 1 // the log's first message
		if got, want := p.Status(), (projections.Status{Ready: false, Applied: 0, Target: n + genesis}); got != want {
			t.Errorf("before catch-up: got %+v, want %+v", got, want)
		}
		for seq := uint64(1); seq < n+genesis; seq++ {
			gated.gate <- struct{}{}
			waitFor(t, p, seq)
			if p.Ready() {
				t.Fatalf("at %d of %d: got ready, want not ready", seq, n)
			}
			if got, want := p.Status(), (projections.Status{Ready: false, Applied: seq, Target: n + genesis}); got != want {
				t.Errorf("at %d: got %+v, want %+v", seq, got, want)
			}
		}
		if _, _, ok := keys.Get(lastKey); ok {
			t.Errorf("got the last key before its event was applied, want not found")
		}
		gated.gate <- struct{}{}
		waitFor(t, p, n+genesis)
		if !p.Ready() {
			t.Errorf("Ready: got false, want true once caught up")
		}
		if got, want := p.Status(), (projections.Status{Ready: true, Applied: n + genesis, Target: n + genesis}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
		if _, _, ok := keys.Get(lastKey); !ok {
			t.Errorf("Get(last key): got not found, want found")
		}
	})

	t.Run("WaitReady", func(t *testing.T) {
		l := newLog(t)
		alice := newUserID()
		for range 10 {
			l.createKey(t, alice)
		}
		head := l.head(t)
		p, _, _ := startProjector(t, l.store)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := p.WaitReady(ctx); err != nil {
			t.Fatalf("WaitReady: %v", err)
		}
		if !p.Ready() || p.Position() < head {
			t.Errorf("got ready %v at %d, want ready at %d", p.Ready(), p.Position(), head)
		}
	})
}

func TestProjector_WaitFor(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	alice := newUserID()
	p, keys, _ := startProjector(t, l.store)

	t.Run("AfterAppend", func(t *testing.T) {
		k, seq := l.createKey(t, alice)
		waitFor(t, p, seq)
		got, gotSeq, ok := keys.Get(k)
		if !ok || got.APIKey != k || gotSeq != seq {
			t.Errorf("got %+v at %d (%v), want %s at %d", got, gotSeq, ok, k, seq)
		}
		if pos := p.Position(); pos < seq {
			t.Errorf("got position %d, want at least %d", pos, seq)
		}
	})

	t.Run("BlocksUntilAppended", func(t *testing.T) {
		next := l.head(t) + 1
		done := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		go func() { done <- p.WaitFor(ctx, next) }()
		k, seq := l.createKey(t, alice)
		if seq != next {
			t.Fatalf("got seq %d, want %d", seq, next)
		}
		if err := <-done; err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if _, _, ok := keys.Get(k); !ok {
			t.Errorf("Get after WaitFor: got not found, want found")
		}
	})

	t.Run("AlreadyApplied", func(t *testing.T) {
		_, seq := l.createKey(t, alice)
		waitFor(t, p, seq)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.WaitFor(ctx, seq); err != nil {
			t.Errorf("got %v, want nil for a sequence already applied", err)
		}
	})

	t.Run("ErrCancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := p.WaitFor(ctx, l.head(t)+100)
		if got := domain.KindOf(err); got != domain.Unavailable {
			t.Errorf("got %v (%v), want %v", got, err, domain.Unavailable)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want it to wrap %v", err, context.Canceled)
		}
	})

	t.Run("ErrDeadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := p.WaitFor(ctx, l.head(t)+100)
		if got := domain.KindOf(err); got != domain.Unavailable {
			t.Errorf("got %v (%v), want %v", got, err, domain.Unavailable)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want it to wrap %v", err, context.DeadlineExceeded)
		}
	})
}

func TestProjector_SkipsUnknownEvents(t *testing.T) {
	t.Parallel()
	unknown := func(apiKey string) []byte {
		return []byte(`{"id":"01JH6Z3Q8X4N6V2R9T5M7K3B1C","type":"key.future_thing","schema":1,"aggregate":"` + apiKey +
			`","version":1,"time":"2026-01-01T00:00:00Z","actor":"system","data":{}}`)
	}

	t.Run("Live", func(t *testing.T) {
		l := newLog(t)
		alice := newUserID()
		p, keys, _ := startProjector(t, l.store)

		k := newAPIKey()
		seq := l.publishRaw(t, l.store.Subject(domain.CategoryKey, k), unknown(k))
		waitFor(t, p, seq)
		if _, _, ok := keys.Get(k); ok {
			t.Errorf("Get(%s): got found, want an unknown event to create nothing", k)
		}
		if n := keys.Len(); n != 0 {
			t.Errorf("got Len %d, want 0", n)
		}

		// A message that is not an event at all is skipped too.
		garbage := l.publishRaw(t, l.store.Subject(domain.CategoryKey, newAPIKey()), []byte("not json"))
		waitFor(t, p, garbage)

		// And the projector goes on with the events after them.
		k2, seq2 := l.createKey(t, alice)
		waitFor(t, p, seq2)
		if _, _, ok := keys.Get(k2); !ok {
			t.Errorf("Get(%s): got not found, want the key created after the unknown event", k2)
		}
	})

	t.Run("AtStart", func(t *testing.T) {
		l := newLog(t)
		alice := newUserID()
		k1, _ := l.createKey(t, alice)
		k := newAPIKey()
		seq := l.publishRaw(t, l.store.Subject(domain.CategoryKey, k), unknown(k))
		p, keys, _ := startProjector(t, l.store)
		natstest.Eventually(t, waitTimeout, p.Ready, "projector ready over a log ending in an unknown event")
		if got, want := p.Status(), (projections.Status{Ready: true, Applied: seq, Target: seq}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
		if _, _, ok := keys.Get(k1); !ok {
			t.Errorf("Get(%s): got not found, want found", k1)
		}
	})
}

// TestProjector_Replay checks that projections built live, event by event,
// equal a fresh replay of the same log.
func TestProjector_Replay(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	live, liveKeys, liveUsers := startProjector(t, l.store)

	emails := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	var userIDs, allKeys []string
	for _, email := range emails {
		userIDs = append(userIDs, l.registerUser(t, email))
	}
	type keyState struct {
		version, seq uint64
		user         string
	}
	state := map[string]*keyState{}
	for i := range 24 {
		u := userIDs[i%len(userIDs)]
		k, seq := l.createKey(t, u)
		allKeys = append(allKeys, k)
		state[k] = &keyState{version: 1, seq: seq, user: u}
	}
	// Regenerate every third key twice, revoke every fourth.
	for i, k := range allKeys {
		s := state[k]
		if i%3 == 0 {
			for range 2 {
				s.version++
				e := keyRegenerated(k, s.user, s.version, 0, domain.Hash{byte(i), byte(s.version)})
				s.seq = l.append(t, eventstore.Pending{Event: e, ExpectedSeq: s.seq})[0]
			}
		}
		if i%4 == 0 {
			s.version++
			s.seq = l.append(t, eventstore.Pending{Event: keyRevoked(k, s.user, s.version, 0), ExpectedSeq: s.seq})[0]
		}
	}
	future := newAPIKey()
	l.publishRaw(t, l.store.Subject(domain.CategoryKey, future),
		[]byte(`{"id":"x","type":"key.future_thing","schema":1,"aggregate":"`+future+`","version":1,"time":"2026-01-01T00:00:00Z","actor":"system","data":{}}`))
	// Keys created after the interleaved updates, to mix the order.
	for _, u := range userIDs {
		k, seq := l.createKey(t, u)
		allKeys = append(allKeys, k)
		state[k] = &keyState{version: 1, seq: seq, user: u}
	}

	head := l.head(t)
	waitFor(t, live, head)
	fresh, freshKeys, freshUsers := startProjector(t, l.store)
	waitFor(t, fresh, head)
	if !fresh.Ready() {
		t.Errorf("fresh projector: got not ready at %d, want ready", fresh.Position())
	}

	if got, want := freshKeys.Len(), liveKeys.Len(); got != want || got != len(allKeys) {
		t.Errorf("Len: got %d fresh, %d live, want %d", got, want, len(allKeys))
	}
	for _, k := range allKeys {
		lk, lseq, lok := liveKeys.Get(k)
		fk, fseq, fok := freshKeys.Get(k)
		if !lok || !fok || !reflect.DeepEqual(fk, lk) || fseq != lseq {
			t.Errorf("Get(%s): got fresh %+v at %d (%v), want live %+v at %d (%v)", k, fk, fseq, fok, lk, lseq, lok)
		}
		if s := state[k]; lk.Version != s.version || lseq != s.seq {
			t.Errorf("Get(%s): got version %d at %d, want %d at %d", k, lk.Version, lseq, s.version, s.seq)
		}
	}
	for i, u := range userIDs {
		for _, limit := range []int{1, 5, 100} {
			lpage, _ := listAll(t, liveKeys, u, limit)
			fpage, _ := listAll(t, freshKeys, u, limit)
			if !slices.Equal(fpage, lpage) || len(lpage) != 9 {
				t.Errorf("ListByUser(%s, %d): got fresh %v, want live %v (9 keys)", u, limit, fpage, lpage)
			}
		}
		lfull, _, _ := liveKeys.ListByUser(u, 100, "")
		ffull, _, _ := freshKeys.ListByUser(u, 100, "")
		if !reflect.DeepEqual(ffull, lfull) {
			t.Errorf("ListByUser(%s): got fresh %+v, want live %+v", u, ffull, lfull)
		}
		lu, lok := byEmail(liveUsers, emails[i])
		fu, fok := byEmail(freshUsers, emails[i])
		if !lok || !fok || !reflect.DeepEqual(fu, lu) || lu.ID != u {
			t.Errorf("ByEmail(%s): got fresh %+v (%v), want live %+v (%v), user %s", emails[i], fu, fok, lu, lok, u)
		}
	}
}

// TestUsers_Erase: an erased user's address is free again (the reservation
// tells the next registration where the aggregate stands), the hook that
// drops cached personal data runs, and an erased user has nothing personal
// left in the read model.
func TestUsers_Erase(t *testing.T) {
	t.Parallel()
	alice, bob := newUserID(), newUserID()
	var forgotten []string
	users := projections.NewUsers(projections.OnErase(func(id string) { forgotten = append(forgotten, id) }))
	agg := domain.EmailAggregate(testEmailKey, "a@example.com")
	mustApply(t, users, emailReserved("a@example.com", alice, 1), userRegistered(alice, "a@example.com", 2))
	if _, seq, holder := users.Reservation(agg); seq != 1 || holder != alice {
		t.Fatalf("Reservation: got seq %d holder %q, want 1 %q", seq, holder, alice)
	}
	mustApply(t, users, userErased(alice, 2, 3))
	if !slices.Equal(forgotten, []string{alice}) {
		t.Errorf("OnErase: got %v, want [%s]", forgotten, alice)
	}
	u, _ := users.ByID(alice)
	if !u.Erased || !u.Disabled || u.Personal != "" || u.Email != "" || u.PasswordHash != "" {
		t.Errorf("erased user: got %+v, want erased, disabled, nothing personal", u)
	}
	state, seq, holder := users.Reservation(agg)
	if seq != 1 || holder != "" || state.Version != 1 {
		t.Fatalf("Reservation after erasure: got %+v seq %d holder %q, want version 1, seq 1, no holder", state, seq, holder)
	}
	mustApply(t, users, reservedAgain(emailReserved("a@example.com", bob, 4)), userRegistered(bob, "a@example.com", 5))
	if got, ok := byEmail(users, "a@example.com"); !ok || got.ID != bob {
		t.Errorf("after re-registration: got %q, %v, want %s", got.ID, ok, bob)
	}
	// A further reservation while bob holds it does not take it from him.
	mustApply(t, users, domain.Event{Type: domain.TypeEmailReserved, Schema: 1, Aggregate: agg, Version: 3, Time: t0,
		Actor: alice, Sequence: 6, Data: domain.EmailReserved{UserID: alice}})
	if _, _, holder := users.Reservation(agg); holder != bob {
		t.Errorf("holder: got %q, want %s", holder, bob)
	}
}

// TestLookup_ErasedStaysDisabled: an erased user's keys never validate
// again, even if an enable were to follow.
func TestLookup_ErasedStaysDisabled(t *testing.T) {
	t.Parallel()
	alice := newUserID()
	apiKey := newAPIKey()
	l := projections.NewLookup(0)
	mustApply(t, l, keyCreated(apiKey, alice, 1))
	if _, res := l.Signer(apiKey, t0); !res.OK {
		t.Fatalf("Signer before erasure: got %+v, want OK", res)
	}
	mustApply(t, l, userErased(alice, 2, 2), domain.Event{Type: domain.TypeUserEnabled, Schema: 1, Aggregate: alice,
		Version: 3, Time: t0, Actor: "admin:root", Sequence: 3, Data: domain.UserEnabled{}})
	if _, res := l.Signer(apiKey, t0); res.OK {
		t.Errorf("Signer after erasure and an enable: got %+v, want refused", res)
	}
}
