package eventstore

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// Handler receives each stored event in stream order. e.Sequence is always
// set; err is non-nil for a message that is not to be acted on: one the
// ledger did not sign wraps ErrForged (e then names only the category and
// aggregate of its subject), an unknown type wraps
// domain.ErrUnknownEventType (e holds the envelope), anything else does not
// decode.
// Handlers run one at a time on the subscription's goroutine.
type Handler func(e domain.Event, err error)

// Subscription is a running feed of events. Stop ends it.
type Subscription struct {
	cc jetstream.ConsumeContext
}

// Stop ends the subscription and waits until no handler is running.
func (s *Subscription) Stop() {
	s.cc.Stop()
	<-s.cc.Closed()
}

// Subscribe delivers every stored event from stream sequence from (1 or 0:
// the beginning) on, then each new one as it is stored, in order, through
// an ordered consumer: only events JetStream accepted are seen, never a
// rejected publish. The consumer recovers from disconnects by itself,
// resuming after the last delivered sequence; onErr (optional) hears about
// such trouble. Errors: Unavailable.
func (s *Store) Subscribe(ctx context.Context, from uint64, h Handler, onErr func(error)) (*Subscription, error) {
	return s.SubscribeRaw(ctx, from, func(m RawMessage) {
		// Not ctx: it may be a start-up context, long gone while this runs.
		h(s.Decode(context.Background(), m))
	}, onErr)
}
