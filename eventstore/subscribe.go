package eventstore

import (
	"context"
	"fmt"

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
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	rctx, cancel := s.withTimeout(ctx)
	defer cancel()
	cons, err := s.js.OrderedConsumer(rctx, s.name, cfg)
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	opts := []jetstream.PullConsumeOpt{}
	if onErr != nil {
		opts = append(opts, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { onErr(err) }))
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			if onErr != nil {
				onErr(fmt.Errorf("message metadata: %w", err))
			}
			return
		}
		// Not ctx: it may be a start-up context, long gone while this runs.
		e, err := s.decode(context.Background(), m.Subject(), m.Headers(), m.Data(), md.Timestamp)
		e.Sequence = md.Sequence.Stream
		h(e, err)
	}, opts...)
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	return &Subscription{cc: cc}, nil
}
