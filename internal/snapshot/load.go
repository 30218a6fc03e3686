package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections"
)

// DefaultMaxSize bounds the size of a snapshot of the lookup a node
// reads: about 20 million keys.
const DefaultMaxSize = 2 << 30

// DefaultMaxLedgerSize bounds the size of a snapshot of serve's read
// models serve reads: about 16 million keys (some 490 bytes a key with
// the lookup).
const DefaultMaxLedgerSize = 8 << 30

// maxSizeOf is the default bound of a snapshot of kind.
func maxSizeOf(kind Kind) uint64 {
	if kind == KindLedger {
		return DefaultMaxLedgerSize
	}
	return DefaultMaxSize
}

// loadGCPercent is the garbage collector's target while a snapshot is
// read (see loadOne).
const loadGCPercent = 400

// gcLoads counts the snapshots being read in this process; the first
// raises the collector's target, the last puts back the one it found.
var gcLoads struct {
	sync.Mutex
	n     int
	saved int
}

// collectLessOften raises the collector's target to loadGCPercent, unless
// it is higher or collection is off, until the function it returns is
// called.
func collectLessOften() (restore func()) {
	gcLoads.Lock()
	defer gcLoads.Unlock()
	if gcLoads.n == 0 {
		gcLoads.saved = debug.SetGCPercent(loadGCPercent)
		if gcLoads.saved < 0 || gcLoads.saved > loadGCPercent {
			debug.SetGCPercent(gcLoads.saved)
		}
	}
	gcLoads.n++
	return func() {
		gcLoads.Lock()
		defer gcLoads.Unlock()
		if gcLoads.n--; gcLoads.n == 0 {
			debug.SetGCPercent(gcLoads.saved)
		}
	}
}

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
	// Models are serve's other read models, built from a snapshot of
	// KindLedger (zero for KindLookup).
	Models projections.Models
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

// LoadNewest opens the snapshot bucket of log's stream on nc and loads
// the newest snapshot of kind that passes Check against log (see Load).
// With none usable it returns nil, the outcome and why: the caller reads
// the log from its start.
func LoadNewest(ctx context.Context, nc *nats.Conn, log Log, kind Kind, logger *slog.Logger) (*Loaded, string, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, OutcomeUnavailable, err
	}
	bucket, err := Open(ctx, js, log.StreamName())
	if errors.Is(err, ErrNoBucket) {
		return nil, OutcomeNoBucket, err
	}
	if err != nil {
		return nil, OutcomeUnavailable, err
	}
	return Load(ctx, bucket, kind, log, 0, logger)
}

// Load finds the newest snapshot of kind in store that passes Check
// against log and reads its lookup (and, of KindLedger, its models),
// trying up to three, newest first, refusing any larger than maxSize
// bytes (0: DefaultMaxSize, or DefaultMaxLedgerSize for KindLedger).
// Each refused snapshot is logged with why. With none usable it returns
// nil, the outcome and why: the caller reads the log from its start.
func Load(ctx context.Context, store *Store, kind Kind, log Log, maxSize uint64, logger *slog.Logger) (*Loaded, string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if maxSize == 0 {
		maxSize = maxSizeOf(kind)
	}
	list, err := store.List(ctx, kind)
	if err != nil {
		return nil, OutcomeUnavailable, err
	}
	if len(list) == 0 {
		return nil, OutcomeNone, fmt.Errorf("the snapshot bucket holds no snapshot named %s...", kind)
	}
	var last error
	for _, o := range list[:min(len(list), maxTries)] {
		l, err := loadOne(ctx, store, kind, log, o, maxSize)
		if err == nil {
			return l, OutcomeLoaded, nil
		}
		logger.Warn("snapshot refused", "name", o.Name, "err", err)
		last = err
	}
	return nil, OutcomeRefused, fmt.Errorf("no usable snapshot among the newest %d: %w", min(len(list), maxTries), last)
}

func loadOne(ctx context.Context, store *Store, kind Kind, log Log, o Info, maxSize uint64) (*Loaded, error) {
	// The heap only grows while a snapshot is read (its bytes, then the
	// models built from them, all kept): a collection meanwhile frees
	// little and scans everything read so far. Collect less often until
	// it is read; a memory limit (GOMEMLIMIT) still applies.
	defer collectLessOften()()
	data, err := store.Get(ctx, o.Name, maxSize)
	if err != nil {
		return nil, err
	}
	s, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if kind == KindLedger && s.Models == nil {
		return nil, fmt.Errorf("%w: a snapshot of the lookup alone, serve needs its read models too", ErrMalformed)
	}
	if err := s.Check(ctx, log); err != nil {
		return nil, err
	}
	l := &Loaded{Name: o.Name, Seq: s.Seq, Checkpoint: s.Checkpoint, Tree: s.Tree, Leaves: s.Leaves}
	// The lookup and the models are read at once, on two cores: neither
	// depends on the other.
	var modelsErr error
	var wg sync.WaitGroup
	if kind == KindLedger {
		wg.Go(func() { l.Models, modelsErr = projections.ReadModelsSnapshot(s.Models) })
	}
	l.Lookup, err = projections.ReadSnapshot(s.Lookup)
	wg.Wait()
	if err = errors.Join(err, modelsErr); err != nil {
		return nil, err
	}
	return l, nil
}
