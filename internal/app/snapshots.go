package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/snapshot"
	"github.com/keyledger/keyledger/projections"
)

// startSnapshots starts the writer of signed snapshots of the validation
// lookup, and of it with the other read models, which serve starts from
// (see internal/snapshot), unless they are turned off or there are
// no checkpoints to bind them to. The bucket is created on the embedded
// server (operator credentials); with an outside NATS `keyledger setup`
// creates it, and without one serve writes none and says so.
func (s *Server) startSnapshots(ctx context.Context, store *eventstore.Store, lookup *projections.Lookup, models *projections.Models, key ed25519.PrivateKey) (*snapshot.Writer, error) {
	cfg := &s.Config
	if cfg.SnapshotInterval < 0 {
		return nil, nil
	}
	if s.checkpoints == nil {
		s.Logger.Warn("no snapshots without checkpoints: validation nodes read the whole log at start")
		return nil, nil
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, err
	}
	if s.ns != nil {
		if err := snapshot.SetUp(ctx, js, cfg.Stream); err != nil {
			return nil, err
		}
	}
	bucket, err := snapshot.Open(ctx, js, cfg.Stream)
	if errors.Is(err, snapshot.ErrNoBucket) {
		s.Logger.Warn("no snapshot bucket: no snapshots are written (create it with keyledger setup)", "bucket", snapshot.Bucket(cfg.Stream))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	return snapshot.StartWriter(snapshot.WriterConfig{Log: store, Projector: s.projector, Lookup: lookup, Models: models,
		Checkpoints: s.checkpoints, Store: bucket, Key: key, Interval: cfg.SnapshotInterval, Keep: cfg.SnapshotKeep,
		Logger: s.Logger.With("component", "snapshot")})
}

// Snapshots returns the writer of snapshots (nil when none are written):
// tests and operators write one at once with WriteNow.
func (s *Server) Snapshots() *snapshot.Writer { return s.snapshots }

// setUpSnapshots creates the snapshot bucket (operator credentials).
func setUpSnapshots(ctx context.Context, nc *nats.Conn, stream string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return snapshot.SetUp(ctx, js, stream)
}
