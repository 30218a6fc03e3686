package validator

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/snapshot"
)

// loadSnapshot reads the newest snapshot of stream that verifies against
// the log. With none usable it says why, loudly, and returns nil: the
// node then reads the log from its start.
func loadSnapshot(ctx context.Context, nc *nats.Conn, store *eventstore.Store, stream string, logger *slog.Logger) (*snapshot.Loaded, snapshotStart) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	began := time.Now()
	fallBack := func(outcome string, err error) (*snapshot.Loaded, snapshotStart) {
		logger.Warn("starting without a snapshot: reading the whole log", "reason", outcome, "err", err)
		return nil, snapshotStart{outcome: outcome}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fallBack(snapshot.OutcomeUnavailable, err)
	}
	bucket, err := snapshot.Open(ctx, js, stream)
	if errors.Is(err, snapshot.ErrNoBucket) {
		return fallBack(snapshot.OutcomeNoBucket, err)
	}
	if err != nil {
		return fallBack(snapshot.OutcomeUnavailable, err)
	}
	loaded, outcome, err := snapshot.Load(ctx, bucket, store, 0, logger)
	if err != nil {
		return fallBack(outcome, err)
	}
	logger.Info("starting from a snapshot: following the log from the sequence after it", "snapshot", loaded.Name,
		"seq", loaded.Seq, "keys", loaded.Lookup.Len(), "took", time.Since(began).Round(time.Millisecond))
	return loaded, snapshotStart{outcome: outcome, seq: loaded.Seq}
}
