package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// LatestCheckpoint returns the newest checkpoint of the log, with its
// stream sequence in Sequence, in one read however many checkpoints the
// log holds; ok is false when the log has none. The message is verified
// like any other: when the newest message on the checkpoint subject is
// not the ledger's, the error wraps ErrForged (someone who may write the
// stream put it there, and no checkpoint can be named as the newest).
// Errors: Unavailable, ErrForged.
func (s *Store) LatestCheckpoint(ctx context.Context) (e domain.Event, ok bool, err error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	m, err := s.stream.GetLastMsgForSubject(ctx, s.Subject(domain.CategoryLog, domain.CheckpointAggregate))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return domain.Event{}, false, nil
	}
	if err != nil {
		return domain.Event{}, false, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	e, err = s.decode(ctx, m.Sequence, m.Subject, m.Header, m.Data)
	if err != nil {
		return domain.Event{}, false, fmt.Errorf("newest checkpoint at %d: %w", m.Sequence, err)
	}
	if _, isCheckpoint := e.Data.(domain.LogCheckpoint); !isCheckpoint {
		return domain.Event{}, false, fmt.Errorf("newest checkpoint at %d: %w: a %s event on the checkpoint subject", m.Sequence, ErrForged, e.Type)
	}
	e.Sequence = m.Sequence
	return e, true, nil
}
