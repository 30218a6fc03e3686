package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections"
)

// DefaultMaxSize bounds the size of a snapshot a node reads: about 20
// million keys.
const DefaultMaxSize = 2 << 30

// maxTries is how many snapshots, newest first, a node tries before it
// gives up and reads the log from its start.
const maxTries = 3

// Loaded is a snapshot a node verified and read.
type Loaded struct {
	Name string
	Seq  uint64 // the lookup holds the log up to here
	// Checkpoint is the log's checkpoint the snapshot is bound to, Tree
	// the log's Merkle tree at its size and Leaves the leaf hashes of the
	// messages after it up to Seq.
	Checkpoint Checkpoint
	Tree       eventstore.MerkleState
	Leaves     []domain.Hash
	Lookup     *projections.Lookup // built from the snapshot
}

// Outcomes of Load, for a metric's label: OutcomeLoaded, or why no
// snapshot was used.
const (
	OutcomeLoaded      = "loaded"
	OutcomeNone        = "none"
	OutcomeNoBucket    = "no_bucket"
	OutcomeRefused     = "refused" // every snapshot tried failed its checks
	OutcomeUnavailable = "unavailable"
)

// Load finds the newest snapshot of the stream in store that passes Check
// against log and reads its lookup, trying up to three, newest first,
// refusing any larger than maxSize bytes (0: DefaultMaxSize). Each refused
// snapshot is logged with why. With none usable it returns nil, the
// outcome and why: the caller reads the log from its start.
func Load(ctx context.Context, store *Store, log Log, maxSize uint64, logger *slog.Logger) (*Loaded, string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if maxSize == 0 {
		maxSize = DefaultMaxSize
	}
	list, err := store.List(ctx)
	if err != nil {
		return nil, OutcomeUnavailable, err
	}
	if len(list) == 0 {
		return nil, OutcomeNone, errors.New("the snapshot bucket holds no snapshot")
	}
	var last error
	for _, o := range list[:min(len(list), maxTries)] {
		l, err := loadOne(ctx, store, log, o, maxSize)
		if err == nil {
			return l, OutcomeLoaded, nil
		}
		logger.Warn("snapshot refused", "name", o.Name, "err", err)
		last = err
	}
	return nil, OutcomeRefused, fmt.Errorf("no usable snapshot among the newest %d: %w", min(len(list), maxTries), last)
}

func loadOne(ctx context.Context, store *Store, log Log, o Info, maxSize uint64) (*Loaded, error) {
	data, err := store.Get(ctx, o.Name, maxSize)
	if err != nil {
		return nil, err
	}
	s, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if err := s.Check(ctx, log); err != nil {
		return nil, err
	}
	lookup, err := projections.ReadSnapshot(s.Lookup)
	if err != nil {
		return nil, err
	}
	return &Loaded{Name: o.Name, Seq: s.Seq, Checkpoint: s.Checkpoint, Tree: s.Tree, Leaves: s.Leaves, Lookup: lookup}, nil
}
