package validator

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/snapshot"
)

// loadSnapshot reads the newest snapshot of the lookup that verifies
// against the log. With none usable it says why, loudly, and returns nil:
// the node then reads the log from its start.
func loadSnapshot(ctx context.Context, nc *nats.Conn, store *eventstore.Store, logger *slog.Logger) (*snapshot.Loaded, SnapshotStart) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	began := time.Now()
	loaded, outcome, err := snapshot.LoadNewest(ctx, nc, store, snapshot.KindLookup, logger)
	if err != nil {
		logger.Warn("starting without a snapshot: reading the whole log", "reason", outcome, "err", err)
		return nil, StartedFrom(nil, outcome)
	}
	logger.Info("starting from a snapshot: following the log from the sequence after it", "snapshot", loaded.Name,
		"seq", loaded.Seq, "keys", loaded.Lookup.Len(), "took", time.Since(began).Round(time.Millisecond))
	return loaded, StartedFrom(loaded, outcome)
}
