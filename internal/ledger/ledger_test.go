package ledger_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/datakeys"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
	"github.com/keyledger/keyledger/projections"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const (
	password    = "correct horse battery staple"
	waitTimeout = 10 * time.Second
)

// env is the whole service on a real embedded nats-server.
type env struct {
	nc        *nats.Conn
	store     *eventstore.Store
	projector *projections.Projector
	keys      *projections.Keys
	users     *projections.Users
	lookup    *projections.Lookup
	dataKeys  *datakeys.Store
	clock     *testclock.Clock
	svc       *ledger.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	nc := natstest.Connect(t, natstest.RunServer(t))
	l := ledgertest.New(t, nc, eventstore.WithMemoryStorage())
	e := &env{nc: nc, store: l.Store, projector: l.Projector, keys: l.Keys, users: l.Users, lookup: l.Lookup,
		dataKeys: l.DataKeys, clock: testclock.New(t0)}
	e.svc = e.service(t, 0)
	return e
}

// service returns a Service over e's store and read models, on e's clock,
// with a keys-per-user limit (0: the default).
func (e *env) service(t *testing.T, maxKeysPerUser int) *ledger.Service {
	t.Helper()
	passwords, err := auth.NewPasswords(auth.Argon2Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatalf("NewPasswords: %v", err)
	}
	svc, err := ledger.New(ledger.Config{Log: e.store, Progress: e.projector, Keys: e.keys, Users: e.users, DataKeys: e.dataKeys,
		Passwords: passwords, Throttle: auth.NewThrottle(), Now: e.clock.Now, MaxKeysPerUser: maxKeysPerUser})
	if err != nil {
		t.Fatalf("ledger.New: %v", err)
	}
	return svc
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) register(t *testing.T, email string) domain.User {
	t.Helper()
	u, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: email, Password: password})
	if err != nil {
		t.Fatalf("RegisterUser(%q): %v", email, err)
	}
	return u
}

// byEmail finds a user by address through the service (which opens the
// sealed record).
func (e *env) byEmail(t *testing.T, email string) (domain.User, bool) {
	t.Helper()
	u, ok, err := e.svc.UserByEmail(testContext(t), email)
	if err != nil {
		t.Fatalf("UserByEmail(%q): %v", email, err)
	}
	return u, ok
}

// emailAggregate is the reservation aggregate of an address, under the
// ledger's email hash key.
func (e *env) emailAggregate(t *testing.T, email string) string {
	t.Helper()
	key, err := e.dataKeys.EmailKey(testContext(t))
	if err != nil {
		t.Fatalf("EmailKey: %v", err)
	}
	return domain.EmailAggregate(key, email)
}

func (e *env) createKey(t *testing.T, userID string) (domain.Key, domain.Secret) {
	t.Helper()
	k, secret, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: userID, Name: "test key"})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k, secret
}

func (e *env) head(t *testing.T) uint64 {
	t.Helper()
	h, err := e.store.Head(testContext(t))
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

// messages returns every message in the stream, in order.
func (e *env) messages(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := testContext(t)
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, e.store.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	head := e.head(t)
	out := make([]*jetstream.RawStreamMsg, 0, head)
	for seq := uint64(1); seq <= head; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

func (e *env) load(t *testing.T, category, aggregate string) []domain.Event {
	t.Helper()
	events, _, err := e.store.Load(testContext(t), category, aggregate)
	if err != nil {
		t.Fatalf("Load %s %s: %v", category, aggregate, err)
	}
	return events
}

// validate checks a key against the validation lookup fed by the same
// projector as the use cases, and returns the reason; a success must name
// the key's owner.
func (e *env) validate(t *testing.T, apiKey string, secret domain.Secret) string {
	t.Helper()
	res := e.lookup.Check(apiKey, secret, e.clock.Now())
	k, _, found := e.keys.Get(apiKey)
	switch {
	case res.OK && (res.Reason != "ok" || !found || res.UserID != k.UserID):
		t.Errorf("Check(%s): got %+v, want \"ok\" and the owner %q", apiKey, res, k.UserID)
	case !res.OK && (res.UserID != "" || res.Reason == "ok"):
		t.Errorf("Check(%s): got %+v, want a reason and no owner", apiKey, res)
	}
	return string(res.Reason)
}

func wantKind(t *testing.T, err error, want domain.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil, want a %v error", want)
	}
	if got := domain.KindOf(err); got != want {
		t.Fatalf("got %v (%v), want %v", got, err, want)
	}
}

func newAPIKey() string { return domain.APIKeyPrefix + ulid.Make().String() }

func TestNew(t *testing.T) {
	t.Parallel()
	t.Run("ErrMissingDependency", func(t *testing.T) {
		if _, err := ledger.New(ledger.Config{}); err == nil {
			t.Errorf("got nil, want an error")
		}
	})
}

func TestService_RegisterUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("OK", func(t *testing.T) {
		u, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "alice@example.com", Password: password})
		if err != nil {
			t.Fatal(err)
		}
		if !domain.ValidUserID(u.ID) || u.Email != "alice@example.com" || !u.CreatedAt.Equal(t0) || u.Version != 1 {
			t.Errorf("got %+v, want a new user alice@example.com created at %v", u, t0)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$") || strings.Contains(u.PasswordHash, password) {
			t.Errorf("got password hash %q, want an argon2id PHC string", u.PasswordHash)
		}
		if got, ok := e.byEmail(t, "alice@example.com"); !ok || got.ID != u.ID {
			t.Errorf("ByEmail: got %q, %v, want %q", got.ID, ok, u.ID)
		}
		if n := len(e.load(t, domain.CategoryEmail, e.emailAggregate(t, "alice@example.com"))); n != 1 {
			t.Errorf("got %d reservations, want 1", n)
		}
	})

	t.Run("NormalisesEmail", func(t *testing.T) {
		u, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "  Bob@Example.COM ", Password: password})
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "bob@example.com" {
			t.Errorf("got %q, want %q", u.Email, "bob@example.com")
		}
		if got, ok := e.byEmail(t, "bob@example.com"); !ok || got.ID != u.ID {
			t.Errorf("ByEmail: got %q, %v, want %q", got.ID, ok, u.ID)
		}
	})

	t.Run("ErrDuplicate", func(t *testing.T) {
		first := e.register(t, "carol@example.com")
		head := e.head(t)
		for _, email := range []string{"carol@example.com", " CAROL@example.com"} {
			_, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: email, Password: password + " again"})
			wantKind(t, err, domain.Conflict)
		}
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
		if got, _ := e.byEmail(t, "carol@example.com"); got.ID != first.ID {
			t.Errorf("ByEmail: got %q, want the first user %q", got.ID, first.ID)
		}
	})

	t.Run("ErrShortPassword", func(t *testing.T) {
		head := e.head(t)
		_, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: "dave@example.com", Password: strings.Repeat("x", domain.MinPasswordLength-1)})
		wantKind(t, err, domain.Invalid)
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
		if _, ok := e.byEmail(t, "dave@example.com"); ok {
			t.Errorf("ByEmail: got found, want not found")
		}
	})

	t.Run("ErrBadEmail", func(t *testing.T) {
		for _, email := range []string{"", "not-an-email", "a@", "@example.com", "Alice <alice@example.com>",
			"a b@example.com", strings.Repeat("a", 250) + "@example.com"} {
			_, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: email, Password: password})
			if got := domain.KindOf(err); got != domain.Invalid {
				t.Errorf("RegisterUser(%q): got %v (%v), want %v", email, got, err, domain.Invalid)
			}
		}
	})
}

func TestService_Login(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")

	t.Run("OK", func(t *testing.T) {
		for _, email := range []string{"alice@example.com", " Alice@Example.com "} {
			u, err := e.svc.Login(testContext(t), ledger.Login{Email: email, Password: password})
			if err != nil {
				t.Fatalf("Login(%q): %v", email, err)
			}
			if u.ID != alice.ID {
				t.Errorf("Login(%q): got %q, want %q", email, u.ID, alice.ID)
			}
		}
	})

	t.Run("ErrWrongPasswordLikeUnknownEmail", func(t *testing.T) {
		_, wrongPassword := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password + "!"})
		_, unknownEmail := e.svc.Login(testContext(t), ledger.Login{Email: "nobody@example.com", Password: password})
		wantKind(t, wrongPassword, domain.Unauthorized)
		wantKind(t, unknownEmail, domain.Unauthorized)
		if wrongPassword.Error() != unknownEmail.Error() || domain.MessageOf(wrongPassword) != domain.MessageOf(unknownEmail) {
			t.Errorf("got %q for a wrong password and %q for an unknown email, want the same",
				wrongPassword, unknownEmail)
		}
		// The failure above does not lock alice out.
		if _, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password}); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})

	t.Run("RateLimitedAfterFiveFailures", func(t *testing.T) {
		const email = "erin@example.com"
		erin := e.register(t, email)
		for i := 1; i <= 5; i++ {
			_, err := e.svc.Login(testContext(t), ledger.Login{Email: email, Password: "wrong password number " + string(rune('0'+i))})
			if got := domain.KindOf(err); got != domain.Unauthorized {
				t.Fatalf("attempt %d: got %v (%v), want %v", i, got, err, domain.Unauthorized)
			}
		}
		_, err := e.svc.Login(testContext(t), ledger.Login{Email: email, Password: "wrong password number 6"})
		if got := domain.KindOf(err); got != domain.RateLimited {
			t.Fatalf("attempt 6: got %v (%v), want %v", got, err, domain.RateLimited)
		}
		wait := domain.RetryAfterOf(err)
		if wait <= 0 {
			t.Errorf("got RetryAfter %v, want > 0", wait)
		}
		// The right password does not get through the wait either.
		if _, err := e.svc.Login(testContext(t), ledger.Login{Email: email, Password: password}); domain.KindOf(err) != domain.RateLimited {
			t.Errorf("right password while throttled: got %v, want %v", err, domain.RateLimited)
		}
		// Other accounts are not throttled.
		if _, err := e.svc.Login(testContext(t), ledger.Login{Email: "alice@example.com", Password: password}); err != nil {
			t.Errorf("other account: got %v, want nil", err)
		}
		// Once the wait is over, the right password works.
		e.clock.Advance(wait)
		if u, err := e.svc.Login(testContext(t), ledger.Login{Email: email, Password: password}); err != nil || u.ID != erin.ID {
			t.Errorf("after the wait: got %q, %v, want %q", u.ID, err, erin.ID)
		}
	})
}

func TestService_CreateKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")

	t.Run("OK", func(t *testing.T) {
		k, secret, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		if !domain.ValidAPIKey(k.APIKey) || k.UserID != alice.ID || k.Name != "ci" || !k.CreatedAt.Equal(t0) ||
			k.StatusAt(t0) != domain.StatusActive || !k.ExpiresAt.IsZero() {
			t.Errorf("got %+v, want an active key of %s named ci created at %v", k, alice.ID, t0)
		}
		if _, err := domain.ParseSecret(secret.Reveal()); err != nil {
			t.Errorf("ParseSecret(new secret): %v", err)
		}
		if got := e.validate(t, k.APIKey, secret); got != "ok" {
			t.Errorf("Validate: got %q, want ok", got)
		}
		if got, err := e.svc.GetKey(alice.ID, k.APIKey); err != nil || got.APIKey != k.APIKey {
			t.Errorf("GetKey: got %q, %v, want %q", got.APIKey, err, k.APIKey)
		}
	})

	t.Run("SecretNeverInLog", func(t *testing.T) {
		k, secret, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID})
		if err != nil {
			t.Fatal(err)
		}
		events := e.load(t, domain.CategoryKey, k.APIKey)
		if len(events) != 1 {
			t.Fatalf("got %d events, want 1", len(events))
		}
		d, ok := events[0].Data.(domain.KeyCreated)
		if !ok || d.SecretHash != secret.Hash() || d.UserID != alice.ID {
			t.Errorf("got %+v, want key.created of %s with the secret's hash", events[0].Data, alice.ID)
		}
		hexHash, _ := secret.Hash().MarshalText()
		// The whole secret, and also its random body alone (so that no
		// encoding of part of it slips through either).
		raw := secret.Reveal()
		body := raw[len(domain.SecretPrefix) : len(raw)-6]
		var hashSeen bool
		for _, m := range e.messages(t) {
			for _, needle := range []string{raw, body} {
				if bytes.Contains(m.Data, []byte(needle)) {
					t.Errorf("message %d on %s contains the raw secret", m.Sequence, m.Subject)
				}
				for name, values := range m.Header {
					for _, v := range values {
						if strings.Contains(v, needle) {
							t.Errorf("message %d header %s contains the raw secret", m.Sequence, name)
						}
					}
				}
			}
			hashSeen = hashSeen || bytes.Contains(m.Data, hexHash)
		}
		if !hashSeen {
			t.Errorf("no message contains the secret's hash %s, want the key.created event to", hexHash)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		head := e.head(t)
		for name, tc := range map[string]struct {
			name    string
			expires time.Time
		}{
			"Name":          {name: " padded "},
			"NameTooLong":   {name: strings.Repeat("n", domain.MaxKeyNameLength+1)},
			"ExpiresInPast": {expires: t0.Add(-time.Minute)},
			"ExpiresNow":    {expires: t0},
		} {
			_, secret, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: tc.name, ExpiresAt: tc.expires})
			if got := domain.KindOf(err); got != domain.Invalid {
				t.Errorf("%s: got %v (%v), want %v", name, got, err, domain.Invalid)
			}
			if !secret.IsZero() {
				t.Errorf("%s: got a secret, want none", name)
			}
		}
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
	})
}

func TestService_ExpiredKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	expires := t0.Add(time.Minute)
	k, secret, err := e.svc.CreateKey(testContext(t), ledger.CreateKey{UserID: alice.ID, Name: "short-lived", ExpiresAt: expires})
	if err != nil {
		t.Fatal(err)
	}
	if !k.ExpiresAt.Equal(expires) {
		t.Errorf("got ExpiresAt %v, want %v", k.ExpiresAt, expires)
	}
	if got := e.validate(t, k.APIKey, secret); got != "ok" {
		t.Fatalf("before expiry: got %q, want ok", got)
	}

	e.clock.Advance(time.Minute)

	t.Run("Validate", func(t *testing.T) {
		if got := e.validate(t, k.APIKey, secret); got != "expired" {
			t.Errorf("got %q, want expired", got)
		}
	})

	t.Run("ErrRegenerateSecret", func(t *testing.T) {
		head := e.head(t)
		s, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey})
		wantKind(t, err, domain.Conflict)
		if !s.IsZero() {
			t.Errorf("got a secret, want none")
		}
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if got := e.validate(t, k.APIKey, secret); got != "revoked" {
			t.Errorf("got %q, want revoked", got)
		}
	})
}

func TestService_RevokeKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")

	t.Run("OK", func(t *testing.T) {
		k, secret := e.createKey(t, alice.ID)
		e.clock.Advance(time.Second)
		if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
			t.Fatal(err)
		}
		if got := e.validate(t, k.APIKey, secret); got != "revoked" {
			t.Errorf("Validate: got %q, want revoked", got)
		}
		got, err := e.svc.GetKey(alice.ID, k.APIKey)
		if err != nil || !got.RevokedAt.Equal(e.clock.Now()) {
			t.Errorf("GetKey: got revoked at %v (%v), want %v", got.RevokedAt, err, e.clock.Now())
		}
		events := e.load(t, domain.CategoryKey, k.APIKey)
		if len(events) != 2 || events[1].Type != domain.TypeKeyRevoked || events[1].Actor != alice.ID {
			t.Errorf("got %d events, want key.created and key.revoked by %s", len(events), alice.ID)
		}

		t.Run("Twice", func(t *testing.T) {
			head := e.head(t)
			if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if got := e.head(t); got != head {
				t.Errorf("got head %d, want %d (nothing appended)", got, head)
			}
		})
	})

	t.Run("ErrOtherUsersKey", func(t *testing.T) {
		k, secret := e.createKey(t, bob.ID)
		head := e.head(t)
		wantKind(t, e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}), domain.NotFound)
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
		if got := e.validate(t, k.APIKey, secret); got != "ok" {
			t.Errorf("Validate: got %q, want ok", got)
		}
		if got, _, _ := e.keys.Get(k.APIKey); got.Revoked() {
			t.Errorf("got revoked, want bob's key untouched")
		}
	})

	t.Run("ErrUnknownKey", func(t *testing.T) {
		head := e.head(t)
		wantKind(t, e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: newAPIKey()}), domain.NotFound)
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
	})
}

func TestService_RegenerateSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")

	t.Run("OK", func(t *testing.T) {
		k, old := e.createKey(t, alice.ID)
		if got := e.validate(t, k.APIKey, old); got != "ok" {
			t.Fatalf("before: got %q, want ok", got)
		}
		fresh, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey})
		if err != nil {
			t.Fatal(err)
		}
		if fresh.Reveal() == old.Reveal() {
			t.Fatalf("got the old secret back, want a new one")
		}
		// No waiting: the old secret stops validating as soon as the call returns.
		if got := e.validate(t, k.APIKey, old); got != "wrong_secret" {
			t.Errorf("old secret: got %q, want wrong_secret", got)
		}
		if got := e.validate(t, k.APIKey, fresh); got != "ok" {
			t.Errorf("new secret: got %q, want ok", got)
		}
		events := e.load(t, domain.CategoryKey, k.APIKey)
		if len(events) != 2 {
			t.Fatalf("got %d events, want 2", len(events))
		}
		if d, ok := events[1].Data.(domain.KeySecretRegenerated); !ok || d.SecretHash != fresh.Hash() {
			t.Errorf("got %+v, want key.secret_regenerated with the new secret's hash", events[1].Data)
		}
	})

	t.Run("ErrRevoked", func(t *testing.T) {
		k, secret := e.createKey(t, alice.ID)
		if err := e.svc.RevokeKey(testContext(t), ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey}); err != nil {
			t.Fatal(err)
		}
		head := e.head(t)
		s, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey})
		wantKind(t, err, domain.Conflict)
		if !s.IsZero() {
			t.Errorf("got a secret, want none")
		}
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
		if got := e.validate(t, k.APIKey, secret); got != "revoked" {
			t.Errorf("Validate: got %q, want revoked", got)
		}
	})

	t.Run("ErrOtherUsersKey", func(t *testing.T) {
		k, secret := e.createKey(t, bob.ID)
		head := e.head(t)
		s, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey})
		wantKind(t, err, domain.NotFound)
		if !s.IsZero() {
			t.Errorf("got a secret, want none")
		}
		if got := e.head(t); got != head {
			t.Errorf("got head %d, want %d (nothing appended)", got, head)
		}
		if got := e.validate(t, k.APIKey, secret); got != "ok" {
			t.Errorf("bob's secret: got %q, want ok", got)
		}
	})

	t.Run("ErrUnknownKey", func(t *testing.T) {
		_, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: newAPIKey()})
		wantKind(t, err, domain.NotFound)
	})
}

func TestService_ListKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	bob := e.register(t, "bob@example.com")
	var created []string
	for range ledger.DefaultPageSize + 1 {
		k, _ := e.createKey(t, alice.ID)
		created = append(created, k.APIKey)
	}
	bobKey, _ := e.createKey(t, bob.ID)
	slices.Reverse(created)

	t.Run("DefaultLimit", func(t *testing.T) {
		page, next, err := e.svc.ListKeys(alice.ID, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != ledger.DefaultPageSize || next == "" {
			t.Fatalf("got %d keys and next %q, want %d and a cursor", len(page), next, ledger.DefaultPageSize)
		}
		rest, next, err := e.svc.ListKeys(alice.ID, 0, next)
		if err != nil || next != "" {
			t.Fatalf("page 2: got next %q, %v, want the last page", next, err)
		}
		var got []string
		for _, k := range slices.Concat(page, rest) {
			got = append(got, k.APIKey)
		}
		if !slices.Equal(got, created) {
			t.Errorf("got %v, want %v", got, created)
		}
	})

	t.Run("MaxLimit", func(t *testing.T) {
		page, next, err := e.svc.ListKeys(alice.ID, ledger.MaxPageSize, "")
		if err != nil || len(page) != len(created) || next != "" {
			t.Errorf("got %d keys, next %q, %v, want %d and no cursor", len(page), next, err, len(created))
		}
	})

	t.Run("OnlyOwnKeys", func(t *testing.T) {
		page, _, err := e.svc.ListKeys(bob.ID, 0, "")
		if err != nil || len(page) != 1 || page[0].APIKey != bobKey.APIKey {
			t.Errorf("got %d keys (%v), want only %s", len(page), err, bobKey.APIKey)
		}
	})

	t.Run("ErrLimit", func(t *testing.T) {
		for _, limit := range []int{ledger.MaxPageSize + 1, -1} {
			_, _, err := e.svc.ListKeys(alice.ID, limit, "")
			if got := domain.KindOf(err); got != domain.Invalid {
				t.Errorf("limit %d: got %v (%v), want %v", limit, got, err, domain.Invalid)
			}
		}
	})

	t.Run("ErrCursor", func(t *testing.T) {
		_, _, err := e.svc.ListKeys(alice.ID, 10, "not a cursor")
		wantKind(t, err, domain.Invalid)
	})
}

func TestLookup_Check(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register(t, "alice@example.com")
	k, secret := e.createKey(t, alice.ID)
	_, otherSecret := e.createKey(t, alice.ID)

	t.Run("OK", func(t *testing.T) {
		res := e.lookup.Check(k.APIKey, secret, e.clock.Now())
		if !res.OK || res.Reason != "ok" || res.UserID != alice.ID {
			t.Errorf("got %+v, want ok for %s", res, alice.ID)
		}
	})

	t.Run("ErrUnknownKey", func(t *testing.T) {
		if got := e.validate(t, newAPIKey(), secret); got != "unknown_key" {
			t.Errorf("got reason %q, want unknown_key", got)
		}
		lower := strings.ToLower(k.APIKey[:3]) + strings.ToLower(k.APIKey[3:])
		if got := e.validate(t, lower, secret); got != "unknown_key" {
			t.Errorf("lower-case key: got reason %q, want unknown_key", got)
		}
	})

	t.Run("ErrWrongSecret", func(t *testing.T) {
		if got := e.validate(t, k.APIKey, otherSecret); got != "wrong_secret" {
			t.Errorf("got %q, want wrong_secret", got)
		}
		if got := e.validate(t, k.APIKey, domain.Secret{}); got != "wrong_secret" {
			t.Errorf("zero secret: got %q, want wrong_secret", got)
		}
	})
}

func TestService_Races(t *testing.T) {
	t.Parallel()
	const goroutines = 20

	t.Run("RegisterSameEmail", func(t *testing.T) {
		e := newEnv(t)
		start := make(chan struct{})
		type result struct {
			u   domain.User
			err error
		}
		results := make(chan result, goroutines)
		var wg sync.WaitGroup
		for i := range goroutines {
			email := "race@example.com"
			if i%2 == 1 {
				email = " Race@Example.com" // the same address once normalised
			}
			wg.Go(func() {
				<-start
				u, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: email, Password: password})
				results <- result{u, err}
			})
		}
		close(start)
		wg.Wait()
		close(results)

		var winners []domain.User
		for r := range results {
			switch {
			case r.err == nil:
				winners = append(winners, r.u)
			case domain.KindOf(r.err) != domain.Conflict:
				t.Errorf("got %v (%v), want nil or %v", domain.KindOf(r.err), r.err, domain.Conflict)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("got %d successful registrations, want 1", len(winners))
		}
		if u, ok := e.byEmail(t, "race@example.com"); !ok || u.ID != winners[0].ID {
			t.Errorf("ByEmail: got %q, %v, want %q", u.ID, ok, winners[0].ID)
		}
		var registered, reserved int
		for _, m := range e.messages(t) {
			ev, err := domain.DecodeEvent(m.Data)
			if err != nil {
				t.Fatalf("message %d: %v", m.Sequence, err)
			}
			switch ev.Type {
			case domain.TypeUserRegistered:
				registered++
			case domain.TypeEmailReserved:
				reserved++
			}
		}
		if registered != 1 || reserved != 1 {
			t.Errorf("got %d user.registered and %d email.reserved events, want 1 and 1", registered, reserved)
		}
	})

	t.Run("RevokeOrRegenerateSameKey", func(t *testing.T) {
		e := newEnv(t)
		alice := e.register(t, "alice@example.com")
		k, _ := e.createKey(t, alice.ID)

		revoke := make([]bool, goroutines)
		for i := range revoke {
			revoke[i] = i < goroutines/2
		}
		rand.Shuffle(len(revoke), func(i, j int) { revoke[i], revoke[j] = revoke[j], revoke[i] })

		start := make(chan struct{})
		var (
			mu          sync.Mutex
			regenerated []domain.Hash // secrets of successful regenerations
			revokedOK   int
		)
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				<-start
				ctx := testContext(t)
				var err error
				if revoke[i] {
					err = e.svc.RevokeKey(ctx, ledger.RevokeKey{UserID: alice.ID, APIKey: k.APIKey})
				} else {
					var s domain.Secret
					if s, err = e.svc.RegenerateSecret(ctx, ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey}); err == nil {
						mu.Lock()
						regenerated = append(regenerated, s.Hash())
						mu.Unlock()
					}
				}
				if err != nil && domain.KindOf(err) != domain.Conflict {
					t.Errorf("revoke %v: got %v (%v), want nil or %v", revoke[i], domain.KindOf(err), err, domain.Conflict)
				}
				if err == nil && revoke[i] {
					mu.Lock()
					revokedOK++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()

		events := e.load(t, domain.CategoryKey, k.APIKey)
		var folded domain.Key
		var logged []domain.Hash
		revokedAt := -1
		for i, ev := range events {
			if err := folded.Apply(ev); err != nil {
				t.Fatalf("event %d (%s v%d): %v", i, ev.Type, ev.Version, err)
			}
			switch d := ev.Data.(type) {
			case domain.KeyRevoked:
				if revokedAt >= 0 {
					t.Errorf("event %d: second key.revoked, first at %d", i, revokedAt)
				}
				revokedAt = i
			case domain.KeySecretRegenerated:
				if revokedAt >= 0 {
					t.Errorf("event %d: key.secret_regenerated after key.revoked at %d", i, revokedAt)
				}
				logged = append(logged, d.SecretHash)
			}
		}
		if revokedOK > 0 && !folded.Revoked() {
			t.Errorf("%d revocations succeeded, want the key revoked in the log", revokedOK)
		}
		// Every successful regeneration is in the log exactly once, and
		// nothing else is.
		slices.SortFunc(regenerated, func(a, b domain.Hash) int { return bytes.Compare(a[:], b[:]) })
		slices.SortFunc(logged, func(a, b domain.Hash) int { return bytes.Compare(a[:], b[:]) })
		if !slices.Equal(logged, regenerated) {
			t.Errorf("got %d regenerations in the log, want the %d that succeeded", len(logged), len(regenerated))
		}
		// The read model agrees with the log.
		got, seq, _ := e.keys.Get(k.APIKey)
		if got != folded || seq != events[len(events)-1].Sequence {
			t.Errorf("read model: got %+v at %d, want %+v at %d", got, seq, folded, events[len(events)-1].Sequence)
		}
		t.Logf("%d events: %d regenerations, revoked %v (%d revoke calls succeeded)",
			len(events), len(logged), folded.Revoked(), revokedOK)
	})

	t.Run("RegenerateSameKey", func(t *testing.T) {
		e := newEnv(t)
		alice := e.register(t, "alice@example.com")
		k, _ := e.createKey(t, alice.ID)

		start := make(chan struct{})
		secrets := make([]domain.Secret, goroutines)
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				<-start
				s, err := e.svc.RegenerateSecret(testContext(t), ledger.RegenerateSecret{UserID: alice.ID, APIKey: k.APIKey})
				if err != nil && domain.KindOf(err) != domain.Conflict {
					t.Errorf("got %v (%v), want nil or %v", domain.KindOf(err), err, domain.Conflict)
				}
				secrets[i] = s
			})
		}
		close(start)
		wg.Wait()

		events := e.load(t, domain.CategoryKey, k.APIKey)
		var folded domain.Key
		for i, ev := range events {
			if err := folded.Apply(ev); err != nil {
				t.Fatalf("event %d (%s v%d): %v", i, ev.Type, ev.Version, err)
			}
		}
		var succeeded int
		for _, s := range secrets {
			if !s.IsZero() {
				succeeded++
			}
		}
		if succeeded == 0 || len(events) != 1+succeeded {
			t.Errorf("got %d events after %d successful regenerations, want %d", len(events), succeeded, 1+succeeded)
		}
		// Exactly one of the returned secrets validates: the last one logged.
		var valid int
		for _, s := range secrets {
			if !s.IsZero() && s.Hash() == folded.SecretHash {
				valid++
				if got := e.validate(t, k.APIKey, s); got != "ok" {
					t.Errorf("last secret: got %q, want ok", got)
				}
			}
		}
		if valid != 1 {
			t.Errorf("got %d returned secrets matching the log's last hash, want 1", valid)
		}
	})
}

// currentSession is a session of userID issued in the user's current
// session epoch, as a login now would issue it.
func currentSession(t *testing.T, svc *ledger.Service, userID string) auth.Session {
	t.Helper()
	u, err := svc.UserByID(testContext(t), userID)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", userID, err)
	}
	return auth.Session{UserID: userID, TokenID: "tok-1", Epoch: u.SessionEpoch, ExpiresAt: svc.Now().Add(time.Hour)}
}
