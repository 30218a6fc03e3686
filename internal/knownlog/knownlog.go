// Package knownlog remembers, in a reader's state directory, the log the
// reader has already read - its genesis (trust root), when its stream was
// created, how far it was applied, the newest checkpoint verified - and
// refuses a log that does not extend it, as SSH's known_hosts refuses a
// host whose key changed. Validation nodes, serve and audit use it: an
// attacker with every JetStream right can delete the stream and rebuild
// it from the ledger's own signed messages minus a revocation, and each
// message still verifies; only a reader that remembers can tell.
package knownlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// Errors Check wraps, one per way a log fails to extend the one known.
var (
	// ErrTrustRootChanged: the log's genesis is not the one first seen.
	ErrTrustRootChanged = errors.New("the log's genesis (trust root) changed")
	// ErrRecreated: the stream was deleted and created again.
	ErrRecreated = errors.New("the stream was re-created")
	// ErrRolledBack: the log ends before what was already applied from it.
	ErrRolledBack = errors.New("the log was rolled back")
	// ErrInconsistent: the log does not extend the newest checkpoint
	// verified before.
	ErrInconsistent = errors.New("the log does not extend the remembered checkpoint")
)

// Checkpoint is a checkpoint verified against the log.
type Checkpoint struct {
	Size uint64      `json:"size"`
	Root domain.Hash `json:"root"`
	Seq  uint64      `json:"seq"` // the stream sequence of the checkpoint event
}

// Record is what a reader remembers of one stream.
type Record struct {
	Stream     string      `json:"stream"`
	TrustRoot  string      `json:"trust_root"`
	GenesisSeq uint64      `json:"genesis_seq"`
	Created    time.Time   `json:"stream_created"`
	Applied    uint64      `json:"applied_seq"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// File is a reader's record of one stream in its state directory
// (<dir>/<stream>.json, mode 0600). It is not safe for concurrent use.
type File struct {
	path string
}

// Open returns the record file of stream in dir, creating dir (0700).
func Open(dir, stream string) (*File, error) {
	if dir == "" {
		return nil, errors.New("state directory: none given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &File{path: filepath.Join(dir, stream+".json")}, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Load returns the record, and false when there is none yet.
func (f *File) Load() (Record, bool, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("state %s: %w", f.path, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, false, fmt.Errorf("state %s: %w", f.path, err)
	}
	return r, true, nil
}

// Save replaces the record, atomically: a crash leaves the old record or
// the new one, never half of one.
func (f *File) Save(r Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".state-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		return fmt.Errorf("state %s: %w", f.path, err)
	}
	return nil
}

// Log is what Check reads of the log (an *eventstore.Store).
type Log interface {
	StreamName() string
	Info(ctx context.Context) (eventstore.Info, error)
	TrustRoot() (string, uint64)
	Checkpoints(ctx context.Context) ([]domain.Event, error)
	CheckRoot(ctx context.Context, size uint64, root domain.Hash) error
}

// Check compares the log as it is now with known (ok false: nothing known
// yet, the first start) and returns the record to remember from now on.
// A log that does not extend the known one is refused with an error
// wrapping ErrTrustRootChanged, ErrRecreated, ErrRolledBack or
// ErrInconsistent (kind Unavailable: the reader must not serve from it).
// The newest checkpoint of the log is verified against the log and,
// when one is remembered, must not be older than it; the remembered one
// must still match the log (the log is consistent with it).
// Other errors: Unavailable.
func Check(ctx context.Context, log Log, known Record, ok bool) (Record, error) {
	return CheckVouched(ctx, log, known, ok, nil)
}

// Vouched is what a verified snapshot vouches for: the log's signed
// checkpoint it is bound to (its Merkle tree gave that checkpoint's root)
// and the position it holds the log up to, after which the reader
// verifies every message and checks every checkpoint.
type Vouched struct {
	Checkpoint Checkpoint
	Through    uint64
}

// CheckVouched is Check for a reader that starts from a snapshot (v; nil:
// none). It does not read the log to check a checkpoint the snapshot
// vouches for: the newest one, when it is the snapshot's, is taken as
// verified; one after the snapshot's position is left to the reader, which
// checks it against the tree it tails with; a remembered one at or before
// the snapshot's checkpoint must be in the log unchanged (same size and
// root at the same sequence), the ledger having refused to checkpoint a
// log that did not extend it.
func CheckVouched(ctx context.Context, log Log, known Record, ok bool, v *Vouched) (Record, error) {
	info, err := log.Info(ctx)
	if err != nil {
		return Record{}, err
	}
	root, genesisSeq := log.TrustRoot()
	now := Record{Stream: log.StreamName(), TrustRoot: root, GenesisSeq: genesisSeq, Created: info.Created.UTC(),
		Applied: known.Applied, Checkpoint: known.Checkpoint}
	refuse := func(sentinel error, format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		return domain.Wrap(domain.Unavailable, fmt.Errorf("%w: %s", sentinel, msg), sentinel.Error()+": "+msg)
	}
	if ok {
		switch {
		case known.TrustRoot != root:
			return Record{}, refuse(ErrTrustRootChanged, "stream %s starts from genesis %s, this reader first saw %s",
				now.Stream, orNone(root), orNone(known.TrustRoot))
		case !known.Created.Equal(now.Created):
			return Record{}, refuse(ErrRecreated, "stream %s was created at %s, this reader read the one created at %s",
				now.Stream, now.Created.Format(time.RFC3339Nano), known.Created.Format(time.RFC3339Nano))
		case info.LastSeq < known.Applied:
			return Record{}, refuse(ErrRolledBack, "stream %s ends at sequence %d, this reader already applied %d",
				now.Stream, info.LastSeq, known.Applied)
		}
	}
	cps, err := log.Checkpoints(ctx)
	if err != nil {
		return Record{}, err
	}
	if known.Checkpoint != nil {
		if n := len(cps); n == 0 || cps[n-1].Data.(domain.LogCheckpoint).Size < known.Checkpoint.Size {
			return Record{}, refuse(ErrInconsistent, "stream %s has no checkpoint as recent as the one verified at size %d",
				now.Stream, known.Checkpoint.Size)
		}
		k := known.Checkpoint
		// With a snapshot, a remembered checkpoint at or before the
		// snapshot's is vouched for by the ledger's chain of checkpoints,
		// and one after its position is checked by the tail against the
		// tree: it must only still be in the log as it was.
		if v != nil && (k.Seq <= v.Checkpoint.Seq || k.Seq > v.Through) {
			if !holds(cps, *k) {
				return Record{}, refuse(ErrInconsistent, "stream %s no longer holds the checkpoint of size %d verified at sequence %d",
					now.Stream, k.Size, k.Seq)
			}
		} else if err := log.CheckRoot(ctx, k.Size, k.Root); err != nil {
			if domain.KindOf(err) == domain.Invalid {
				return Record{}, refuse(ErrInconsistent, "stream %s: %s", now.Stream, domain.MessageOf(err))
			}
			return Record{}, err
		}
	}
	if n := len(cps); n > 0 {
		c := cps[n-1].Data.(domain.LogCheckpoint)
		newer := func(c Checkpoint) bool { return known.Checkpoint == nil || c.Size > known.Checkpoint.Size }
		switch {
		case !newer(Checkpoint{Size: c.Size}):
		case v != nil && cps[n-1].Sequence == v.Checkpoint.Seq:
			now.Checkpoint = &v.Checkpoint
		case v != nil && cps[n-1].Sequence > v.Through:
			if newer(v.Checkpoint) {
				now.Checkpoint = &v.Checkpoint
			}
		default:
			// A newer checkpoint: it must match the log, which holds
			// the remembered one unchanged as its prefix.
			if err := log.CheckRoot(ctx, c.Size, c.Root); err != nil {
				if domain.KindOf(err) == domain.Invalid {
					return Record{}, refuse(ErrInconsistent, "stream %s: its newest checkpoint: %s", now.Stream, domain.MessageOf(err))
				}
				return Record{}, err
			}
			now.Checkpoint = &Checkpoint{Size: c.Size, Root: c.Root, Seq: cps[n-1].Sequence}
		}
	}
	return now, nil
}

// Running compares what a running reader sees of the stream now with
// what it knew (the record it started from, applied: what it has applied
// since): nil, or an error wrapping ErrRecreated or ErrRolledBack.
func Running(known Record, info eventstore.Info, applied uint64) error {
	switch {
	case !known.Created.IsZero() && !known.Created.Equal(info.Created.UTC()):
		return domain.Wrap(domain.Unavailable, ErrRecreated, fmt.Sprintf("%v: stream %s was created at %s, this reader read the one created at %s",
			ErrRecreated, known.Stream, info.Created.UTC().Format(time.RFC3339Nano), known.Created.Format(time.RFC3339Nano)))
	case info.LastSeq < applied:
		return domain.Wrap(domain.Unavailable, ErrRolledBack, fmt.Sprintf("%v: stream %s ends at sequence %d, this reader already applied %d",
			ErrRolledBack, known.Stream, info.LastSeq, applied))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// holds reports whether the checkpoint events cps hold k: an event at its
// sequence with its size and root.
func holds(cps []domain.Event, k Checkpoint) bool {
	for _, e := range cps {
		if c, ok := e.Data.(domain.LogCheckpoint); ok && e.Sequence == k.Seq {
			return c.Size == k.Size && c.Root == k.Root
		}
	}
	return false
}
