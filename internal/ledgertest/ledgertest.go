// Package ledgertest runs a whole ledger (event store, projections,
// projector, use cases, wired by internal/app as serve wires them) on a
// real NATS connection, for tests of the parts that sit beside it, such as
// validation nodes.
package ledgertest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/datakeys"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/testkeys"
	"github.com/keyledger/keyledger/projections"
)

// Password is the password of every user Register creates.
const Password = "correct horse battery staple"

// Timeout bounds each call the helpers make.
const Timeout = 10 * time.Second

// Ledger is a running ledger: a Service whose projector has caught up.
type Ledger struct {
	Conn      *nats.Conn
	Store     *eventstore.Store
	Projector *projections.Projector
	Keys      *projections.Keys
	Users     *projections.Users
	Lookup    *projections.Lookup
	Service   *ledger.Service
	// DataKeys is the bucket of the users' data keys.
	DataKeys *datakeys.Store

	emails atomic.Uint64
}

// New opens the event store on nc (creating the stream; opts as for
// eventstore.New), starts a projector of the Keys, Users and Lookup models,
// waits until it is ready, and returns the ledger. The store signs with
// testkeys.Ledger() unless opts hold a WithSigningKey of their own. The
// projector is stopped when the test ends; nc belongs to the caller.
func New(t testing.TB, nc *nats.Conn, opts ...eventstore.Option) *Ledger {
	t.Helper()
	return NewWith(t, nc, nil, opts...)
}

// NewWith is New with edit applied to the Service's configuration before
// it is built (a clock, a throttle, other passwords), when edit is not nil.
func NewWith(t testing.TB, nc *nats.Conn, edit func(*ledger.Config), opts ...eventstore.Option) *Ledger {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	// The test ledger's key first: a WithSigningKey in opts, applied after
	// it, wins.
	l, err := app.OpenLedger(ctx, nc, app.LedgerConfig{SigningKey: testkeys.Ledger(), StoreOptions: opts,
		// Cheap argon2 parameters: password hashing is not what these tests test.
		Argon2:         auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
		MaxKeysPerUser: -1, // tests create many keys for one user
		Edit:           edit})
	if err != nil {
		t.Fatalf("app.OpenLedger: %v", err)
	}
	t.Cleanup(l.Close)
	if err := l.Projector.WaitReady(ctx); err != nil {
		t.Fatalf("projector.WaitReady: %v", err)
	}
	return &Ledger{Conn: nc, Store: l.Store, Projector: l.Projector, Keys: l.Keys, Users: l.Users, Lookup: l.Lookup,
		Service: l.Service, DataKeys: l.DataKeys}
}

// RetiredWriter returns a store of its own on l's log that signs with key,
// a key the log trusted when the store opened and has retired since (both
// trust events signed by l's key): another ledger instance still writing
// after its key was rotated out. Every reader skips what it appends from
// then on. opts are further options of the store (WithMemoryStorage when l
// has it).
func (l *Ledger) RetiredWriter(t testing.TB, key ed25519.PrivateKey, opts ...eventstore.Option) *eventstore.Store {
	t.Helper()
	ctx := Context(t)
	pub := key.Public().(ed25519.PublicKey)
	if _, err := l.Store.AddLedgerKey(ctx, pub, "a second ledger instance", "admin:root"); err != nil {
		t.Fatalf("AddLedgerKey: %v", err)
	}
	opts = append([]eventstore.Option{eventstore.WithStream(l.Store.StreamName()), eventstore.WithSigningKey(key)}, opts...)
	store, err := eventstore.New(ctx, l.Conn, opts...)
	if err != nil {
		t.Fatalf("eventstore.New: %v", err)
	}
	if _, err := l.Store.RetireLedgerKey(ctx, eventstore.KeyID(pub), "rotated out", "admin:root"); err != nil {
		t.Fatalf("RetireLedgerKey: %v", err)
	}
	return store
}

// WritingAs returns a Service over l's read models and projector whose
// events a RetiredWriter signs with key: l's projector skips them, and
// the Service's commands must fail rather than claim a change no reader
// applies.
func (l *Ledger) WritingAs(t testing.TB, key ed25519.PrivateKey, opts ...eventstore.Option) *ledger.Service {
	t.Helper()
	store := l.RetiredWriter(t, key, opts...)
	passwords, err := auth.NewPasswords(auth.Argon2Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatalf("auth.NewPasswords: %v", err)
	}
	svc, err := ledger.New(ledger.Config{Log: store, Progress: l.Projector, Keys: l.Keys, Users: l.Users,
		DataKeys: l.DataKeys, Passwords: passwords, Throttle: auth.NewThrottle(), MaxKeysPerUser: -1})
	if err != nil {
		t.Fatalf("ledger.New: %v", err)
	}
	return svc
}

// Context returns a context that ends after Timeout or with the test.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Register registers a user with a fresh email address and Password.
// Call it from the test's goroutine.
func (l *Ledger) Register(t testing.TB) domain.User {
	t.Helper()
	email := fmt.Sprintf("user%d@example.com", l.emails.Add(1))
	u, err := l.Service.RegisterUser(Context(t), ledger.RegisterUser{Email: email, Password: Password})
	if err != nil {
		t.Fatalf("RegisterUser(%q): %v", email, err)
	}
	return u
}

// CreateKey creates a key without expiry for userID and returns it with
// its secret. Call it from the test's goroutine (use Service.CreateKey
// from others).
func (l *Ledger) CreateKey(t testing.TB, userID string) (domain.Key, domain.Secret) {
	t.Helper()
	k, secret, err := l.Service.CreateKey(Context(t), ledger.CreateKey{UserID: userID, Name: "test key"})
	if err != nil {
		t.Fatalf("CreateKey(%s): %v", userID, err)
	}
	return k, secret
}

// Revoke revokes one of userID's keys and returns the head of the log
// right after: the revocation is in force on a node once it has applied
// that sequence.
func (l *Ledger) Revoke(t testing.TB, userID, apiKey string) uint64 {
	t.Helper()
	if err := l.Service.RevokeKey(Context(t), ledger.RevokeKey{UserID: userID, APIKey: apiKey}); err != nil {
		t.Fatalf("RevokeKey(%s): %v", apiKey, err)
	}
	return l.Head(t)
}

// Head returns the stream sequence of the newest event in the log.
func (l *Ledger) Head(t testing.TB) uint64 {
	t.Helper()
	h, err := l.Store.Head(Context(t))
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}
