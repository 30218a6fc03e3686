package app

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/datakeys"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/projections"
)

// LedgerConfig configures OpenLedger. Zero fields mean the defaults.
type LedgerConfig struct {
	// Stream is the name of the log's stream (default
	// eventstore.DefaultStream).
	Stream string
	// Replicas of a new stream (0: 1; an existing stream keeps its count).
	Replicas int
	// SigningKey signs every event the ledger writes.
	SigningKey ed25519.PrivateKey
	// StoreOptions are further options of the event store, applied after
	// those the fields above set (tests: memory storage, a test key).
	StoreOptions []eventstore.Option
	// Argon2 is the password hashing cost (zero: the default); PasswordOptions
	// tune the hasher further (its concurrency).
	Argon2          auth.Argon2Params
	PasswordOptions []auth.Option
	// MaxKeysPerUser bounds a user's unrevoked keys (0: the default;
	// negative: no limit).
	MaxKeysPerUser int
	// Logger receives the projector's and the use cases' logs (nil: none).
	Logger *slog.Logger
	// Observe, if set, is told each command's name, outcome (its error
	// kind; "" for success) and duration: the commands' metrics.
	Observe func(command string, kind domain.Kind, took time.Duration)
	// DataKeyOptions are further options of the bucket of users' data
	// keys (tests: memory storage).
	DataKeyOptions []datakeys.Option
	// Edit, if set, changes the use cases' configuration before they are
	// built: tests set a clock or a throttle of their own.
	Edit func(*ledger.Config)
	// Registration is who may sign up, Mailer sends the sign-up messages
	// (see ledger.Config).
	Registration ledger.Registration
	Mailer       ledger.Mailer
}

// ReadModels are the ledger's read models and the projector that feeds
// them.
type ReadModels struct {
	Keys      *projections.Keys
	Users     *projections.Users
	Admins    *projections.Admins
	Lookup    *projections.Lookup
	Projector *projections.Projector
	// Verifications and Invitations are the sign-up aggregates.
	Verifications *projections.Verifications
	Invitations   *projections.Invitations
	// Identities are the identities at OpenID providers linked to users.
	Identities *projections.Identities
	// Teams are the teams, their members and service accounts.
	Teams *projections.Teams
}

// StartReadModels starts a projector of the ledger's read models (Keys,
// Users, Admins and Lookup) on store; the caller stops the projector.
// usersOpts configure the Users read model.
func StartReadModels(ctx context.Context, store *eventstore.Store, logger *slog.Logger, usersOpts ...projections.UsersOption) (ReadModels, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := ReadModels{Keys: projections.NewKeys(), Users: projections.NewUsers(usersOpts...), Admins: projections.NewAdmins(),
		Lookup: projections.NewLookup(0)}
	m.Verifications, m.Invitations = projections.NewVerifications(), projections.NewInvitations()
	m.Identities = projections.NewIdentities(m.Users)
	m.Teams = projections.NewTeams()
	p, err := projections.New(store, logger.With("component", "projections"), m.Keys, m.Users, m.Admins, m.Lookup,
		m.Verifications, m.Invitations, m.Identities, m.Teams)
	if err != nil {
		return ReadModels{}, err
	}
	if err := p.Start(ctx); err != nil {
		return ReadModels{}, fmt.Errorf("projections: %w", err)
	}
	m.Projector = p
	return m, nil
}

// Ledger is the ledger's core as serve, the admin commands, tests and
// benchmarks run it: the event store, the read models with the projector
// feeding them, the password hasher and the use cases.
type Ledger struct {
	Store *eventstore.Store
	// DataKeys is the bucket of users' data keys beside the stream.
	DataKeys *datakeys.Store
	ReadModels
	Passwords *auth.Passwords
	Service   *ledger.Service
}

// OpenLedger opens (or creates) the log's stream on nc, starts the
// projections and builds the use cases. It does not wait for the read
// models to catch up (Projector.WaitReady does); Close stops them.
func OpenLedger(ctx context.Context, nc *nats.Conn, cfg LedgerConfig) (*Ledger, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var opts []eventstore.Option
	if cfg.Stream != "" {
		opts = append(opts, eventstore.WithStream(cfg.Stream))
	}
	if cfg.Replicas != 0 {
		opts = append(opts, eventstore.WithReplicas(cfg.Replicas))
	}
	if cfg.SigningKey != nil {
		opts = append(opts, eventstore.WithSigningKey(cfg.SigningKey))
	}
	store, err := eventstore.New(ctx, nc, append(opts, cfg.StoreOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	if note := store.GenesisNote(); note != "" {
		cfg.Logger.Warn(note) // loud: on an upgraded log it decides whom old events are trusted by
	}
	l := &Ledger{Store: store}
	dkOpts := append([]datakeys.Option{datakeys.WithBucket(datakeys.BucketFor(store.StreamName())),
		datakeys.WithReplicas(cfg.Replicas)}, cfg.DataKeyOptions...)
	if l.DataKeys, err = datakeys.Open(ctx, nc, dkOpts...); err != nil {
		return nil, fmt.Errorf("user keys: %w", err)
	}
	// Every instance forgets an erased user's data key as the erasure
	// arrives, not only the one that ran it.
	if l.ReadModels, err = StartReadModels(ctx, store, cfg.Logger, projections.OnErase(l.DataKeys.Forget)); err != nil {
		return nil, err
	}
	l.Passwords, err = auth.NewPasswords(cfg.Argon2, cfg.PasswordOptions...)
	if err != nil {
		l.Close()
		return nil, err
	}
	lc := ledger.Config{Log: store, Progress: l.Projector, Keys: l.Keys, Users: l.Users, DataKeys: l.DataKeys, Admins: l.Admins,
		Passwords: l.Passwords, Throttle: auth.NewThrottle(), Logger: cfg.Logger, MaxKeysPerUser: cfg.MaxKeysPerUser,
		Observe: cfg.Observe}
	lc.Verifications, lc.Invitations, lc.Registration, lc.Mailer = l.Verifications, l.Invitations, cfg.Registration, cfg.Mailer
	lc.Identities, lc.Teams = l.Identities, l.Teams
	if cfg.Edit != nil {
		cfg.Edit(&lc)
	}
	l.Service, err = ledger.New(lc)
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Close stops the projections. The NATS connection belongs to the caller.
func (l *Ledger) Close() { l.Projector.Stop() }

// openIdempotency opens the bucket of idempotency records beside the
// stream (<stream>_IDEMPOTENCY, as many replicas).
func openIdempotency(ctx context.Context, nc *nats.Conn, signingKey ed25519.PrivateKey, stream string, replicas int, ttl time.Duration, maxBytes int64) (*idempotency.Store, error) {
	secret, err := IdempotencySecret(signingKey)
	if err != nil {
		return nil, err
	}
	store, err := idempotency.New(ctx, nc, secret, idempotencyOptions(stream, replicas, ttl, maxBytes)...)
	if err != nil {
		return nil, fmt.Errorf("idempotency records: %w", err)
	}
	return store, nil
}

// idempotencyOptions are the idempotency bucket's settings.
func idempotencyOptions(stream string, replicas int, ttl time.Duration, maxBytes int64) []idempotency.Option {
	opts := []idempotency.Option{idempotency.WithBucket(stream + "_IDEMPOTENCY"), idempotency.WithReplicas(replicas),
		idempotency.WithMaxBytes(maxBytes)}
	if ttl != 0 {
		opts = append(opts, idempotency.WithTTL(ttl))
	}
	return opts
}

// IdempotencySecret derives the secret idempotency records are encrypted
// under from the ledger's signing key: every instance already shares that
// key (it must, to sign the one log), so each reads the records of the
// others, and there is no other file to share or lose. HKDF with a label
// of its own makes it a key apart from the signing key.
func IdempotencySecret(signingKey ed25519.PrivateKey) ([]byte, error) {
	if len(signingKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("idempotency secret: not an Ed25519 signing key")
	}
	return hkdf.Key(sha256.New, signingKey.Seed(), nil, "keyledger/v1/idempotency-secret", idempotency.SecretSize)
}
