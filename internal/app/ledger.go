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

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/projections"
)

// ledgerParts is the ledger's core as serve and the admin commands run
// it: the signed event store, the read models, the projector feeding them
// (started), and the use cases.
type ledgerParts struct {
	store     *eventstore.Store
	keys      *projections.Keys
	users     *projections.Users
	lookup    *projections.Lookup
	Projector *projections.Projector
	passwords *auth.Passwords
	Service   *ledger.Service
}

type LedgerConfig struct {
	Stream     string
	replicas   int
	SigningKey ed25519.PrivateKey
	argon2     auth.Argon2Params
	passwords  []auth.Option
	maxKeys    int
	Logger     *slog.Logger
}

// OpenLedger opens (or creates) the stream and starts the projections;
// the caller stops parts.projector.
func OpenLedger(ctx context.Context, nc *nats.Conn, o LedgerConfig) (*ledgerParts, error) {
	store, err := eventstore.New(ctx, nc, eventstore.WithStream(o.Stream), eventstore.WithReplicas(o.replicas),
		eventstore.WithSigningKey(o.SigningKey))
	if err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	p := &ledgerParts{store: store, keys: projections.NewKeys(), users: projections.NewUsers(), lookup: projections.NewLookup(0)}
	p.Projector, err = projections.New(store, o.Logger.With("component", "projections"), p.keys, p.users, p.lookup)
	if err != nil {
		return nil, err
	}
	if err := p.Projector.Start(ctx); err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	p.passwords, err = auth.NewPasswords(o.argon2, o.passwords...)
	if err != nil {
		p.Projector.Stop()
		return nil, err
	}
	p.Service, err = ledger.New(ledger.Config{Log: store, Progress: p.Projector, Keys: p.keys, Users: p.users,
		Passwords: p.passwords, Throttle: auth.NewThrottle(), Logger: o.Logger, MaxKeysPerUser: o.maxKeys})
	if err != nil {
		p.Projector.Stop()
		return nil, err
	}
	return p, nil
}

// openIdempotency opens the bucket of idempotency records beside the
// stream (<stream>_IDEMPOTENCY, as many replicas).
func openIdempotency(ctx context.Context, nc *nats.Conn, signingKey ed25519.PrivateKey, stream string, replicas int, ttl time.Duration) (*idempotency.Store, error) {
	secret, err := IdempotencySecret(signingKey)
	if err != nil {
		return nil, err
	}
	opts := []idempotency.Option{idempotency.WithBucket(stream + "_IDEMPOTENCY"), idempotency.WithReplicas(replicas)}
	if ttl != 0 {
		opts = append(opts, idempotency.WithTTL(ttl))
	}
	store, err := idempotency.New(ctx, nc, secret, opts...)
	if err != nil {
		return nil, fmt.Errorf("idempotency records: %w", err)
	}
	return store, nil
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
