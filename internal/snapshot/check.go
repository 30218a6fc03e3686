package snapshot

import (
	"context"
	"fmt"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// Log is what Check reads of the log (an *eventstore.Store).
type Log interface {
	StreamName() string
	Info(ctx context.Context) (eventstore.Info, error)
	TrustRoot() (string, uint64)
	Checkpoints(ctx context.Context) ([]domain.Event, error)
	VerifyAt(ctx context.Context, seq uint64, id string, msg, sig []byte) error
}

// Check verifies a decoded snapshot against the log, never against its
// own say-so: a position the log reaches (ErrBeyondLog); its signature by
// a ledger key the log's trust events trust at the snapshot's position
// (ErrSignature); the same stream, created at the same time, from the
// same genesis (ErrNotThisLog); and the checkpoint it is bound to, which the log
// must hold at the sequence named, with the size named and the root its
// tree gives (ErrCheckpoint). Other errors: Unavailable.
func (s Snapshot) Check(ctx context.Context, log Log) error {
	if s.signed == nil {
		return fmt.Errorf("%w: not decoded", ErrMalformed)
	}
	info, err := log.Info(ctx)
	if err != nil {
		return err
	}
	if s.Seq > info.LastSeq {
		return fmt.Errorf("%w: at sequence %d, the log ends at %d", ErrBeyondLog, s.Seq, info.LastSeq)
	}
	if err := log.VerifyAt(ctx, s.Seq, s.Signer, signedBytes(s.signed), s.signature); err != nil {
		if domain.KindOf(err) == domain.Unavailable {
			return err
		}
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	root, _ := log.TrustRoot()
	switch {
	case s.Stream != log.StreamName():
		return fmt.Errorf("%w: of stream %s, not %s", ErrNotThisLog, s.Stream, log.StreamName())
	case !s.Created.Equal(info.Created):
		return fmt.Errorf("%w: of the stream created at %s, this one was created at %s", ErrNotThisLog, s.Created, info.Created.UTC())
	case s.TrustRoot != root:
		return fmt.Errorf("%w: of the log from genesis %s, this one starts from %s", ErrNotThisLog, s.TrustRoot, root)
	}
	cps, err := log.Checkpoints(ctx)
	if err != nil {
		return err
	}
	var found *domain.LogCheckpoint
	for _, e := range cps {
		if e.Sequence == s.Checkpoint.Seq {
			c := e.Data.(domain.LogCheckpoint)
			found = &c
		}
	}
	treeRoot, err := s.Tree.Root()
	switch {
	case found == nil:
		return fmt.Errorf("%w: the log holds no signed checkpoint at sequence %d", ErrCheckpoint, s.Checkpoint.Seq)
	case found.Size != s.Checkpoint.Size || found.Root != s.Checkpoint.Root:
		return fmt.Errorf("%w: the checkpoint at sequence %d covers %d messages, the snapshot says %d (or another root)",
			ErrCheckpoint, s.Checkpoint.Seq, found.Size, s.Checkpoint.Size)
	case err != nil || treeRoot != found.Root:
		return fmt.Errorf("%w: its tree of %d messages does not give the root of the checkpoint at sequence %d",
			ErrCheckpoint, s.Tree.Size, s.Checkpoint.Seq)
	}
	return nil
}
