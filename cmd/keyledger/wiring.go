package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/auth"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/ledger"
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
	projector *projections.Projector
	passwords *auth.Passwords
	service   *ledger.Service
}

type ledgerOptions struct {
	stream     string
	replicas   int
	signingKey ed25519.PrivateKey
	argon2     auth.Argon2Params
	passwords  []auth.Option
	maxKeys    int
	logger     *slog.Logger
}

// openLedger opens (or creates) the stream and starts the projections;
// the caller stops parts.projector.
func openLedger(ctx context.Context, nc *nats.Conn, o ledgerOptions) (*ledgerParts, error) {
	store, err := eventstore.New(ctx, nc, eventstore.WithStream(o.stream), eventstore.WithReplicas(o.replicas),
		eventstore.WithSigningKey(o.signingKey))
	if err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	p := &ledgerParts{store: store, keys: projections.NewKeys(), users: projections.NewUsers(), lookup: projections.NewLookup(0)}
	p.projector, err = projections.New(store, o.logger.With("component", "projections"), p.keys, p.users, p.lookup)
	if err != nil {
		return nil, err
	}
	if err := p.projector.Start(ctx); err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	p.passwords, err = auth.NewPasswords(o.argon2, o.passwords...)
	if err != nil {
		p.projector.Stop()
		return nil, err
	}
	p.service, err = ledger.New(ledger.Config{Log: store, Progress: p.projector, Keys: p.keys, Users: p.users,
		Passwords: p.passwords, Throttle: auth.NewThrottle(), Logger: o.logger, MaxKeysPerUser: o.maxKeys})
	if err != nil {
		p.projector.Stop()
		return nil, err
	}
	return p, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
