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
	"github.com/keyledger/keyledger/internal/snapshot"
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
	// FromSnapshot starts the read models from the newest snapshot of
	// them that verifies against the log (serve writes them, see
	// internal/snapshot), following the log from there; without one they
	// fold the whole log.
	FromSnapshot bool
}

// ReadModels are the ledger's read models and the projector that feeds
// them.
type ReadModels struct {
	// Models are the keys, users, admins, sign-up aggregates, identities
	// at OpenID providers and teams.
	projections.Models
	Lookup    *projections.Lookup
	Projector *projections.Projector
	// Snapshot is the snapshot the models were loaded from (nil: they
	// were folded from the start of the log); SnapshotOutcome says how
	// loading one went (snapshot.Outcome*; "" when not tried).
	Snapshot        *snapshot.Loaded
	SnapshotOutcome string
}

// StartReadModels starts a projector of the ledger's read models on store,
// folding the log from its start; the caller stops the projector.
// usersOpts configure the Users read model.
func StartReadModels(ctx context.Context, store *eventstore.Store, logger *slog.Logger, usersOpts ...projections.UsersOption) (ReadModels, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return startReadModels(ctx, store, logger, ReadModels{Models: projections.NewModels(usersOpts...), Lookup: projections.NewLookup(0)})
}

// startReadModels starts the projector of m's models (read from m.Snapshot
// when set: the projector then goes on from the snapshot's position).
func startReadModels(ctx context.Context, store *eventstore.Store, logger *slog.Logger, m ReadModels) (ReadModels, error) {
	p, err := projections.New(store, logger.With("component", "projections"), append(m.List(), m.Lookup)...)
	if err != nil {
		return ReadModels{}, err
	}
	if m.Snapshot != nil {
		err = p.StartFrom(ctx, m.Snapshot.Tree, m.Snapshot.Leaves)
	} else {
		err = p.Start(ctx)
	}
	if err != nil {
		return ReadModels{}, fmt.Errorf("projections: %w", err)
	}
	m.Projector = p
	return m, nil
}

// StartReadModelsFromSnapshot is StartReadModels from the newest snapshot
// of the read models (snapshot.KindLedger) that verifies against the log
// (see internal/snapshot), following the log from the sequence after it.
// With none usable it says why and folds the whole log.
func StartReadModelsFromSnapshot(ctx context.Context, nc *nats.Conn, store *eventstore.Store, logger *slog.Logger, usersOpts ...projections.UsersOption) (ReadModels, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return startReadModels(ctx, store, logger, loadReadModels(ctx, nc, store, logger, usersOpts...))
}

// loadReadModels builds the read models from the newest snapshot of
// KindLedger that verifies against the log, with the Users options given.
// With none usable it says why and returns empty models.
func loadReadModels(ctx context.Context, nc *nats.Conn, store *eventstore.Store, logger *slog.Logger, usersOpts ...projections.UsersOption) ReadModels {
	began := time.Now()
	m := ReadModels{Models: projections.NewModels(usersOpts...), Lookup: projections.NewLookup(0)}
	fallBack := func(outcome string, err error) ReadModels {
		level := slog.LevelWarn
		if outcome == snapshot.OutcomeNone || outcome == snapshot.OutcomeNoBucket {
			level = slog.LevelInfo // a new log, or snapshots turned off
		}
		logger.Log(ctx, level, "starting without a snapshot: folding the whole log", "reason", outcome, "err", err)
		m.SnapshotOutcome = outcome
		return m
	}
	loaded, outcome, err := snapshot.LoadNewest(ctx, nc, store, snapshot.KindLedger, logger.With("component", "snapshot"))
	if err != nil {
		return fallBack(outcome, err)
	}
	for _, opt := range usersOpts {
		opt(loaded.Models.Users)
	}
	logger.Info("starting from a snapshot: following the log from the sequence after it", "snapshot", loaded.Name,
		"seq", loaded.Seq, "keys", loaded.Lookup.Len(), "took", time.Since(began).Round(time.Millisecond))
	return ReadModels{Models: loaded.Models, Lookup: loaded.Lookup, Snapshot: loaded, SnapshotOutcome: outcome}
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
	forget := projections.OnErase(l.DataKeys.Forget)
	if cfg.FromSnapshot {
		l.ReadModels, err = StartReadModelsFromSnapshot(ctx, nc, store, cfg.Logger, forget)
	} else {
		l.ReadModels, err = StartReadModels(ctx, store, cfg.Logger, forget)
	}
	if err != nil {
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
