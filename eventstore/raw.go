package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// HeaderHash carries the hex SHA-256 of an event's payload: the hash the
// aggregate's next event names as its prev.
const HeaderHash = "Keyledger-Hash"

// RawMessage is a stored message as JetStream holds it, before anything is
// verified or decoded.
type RawMessage struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
	Time    time.Time
	// Pending is how many matching messages the stream held after this one
	// when it was delivered (0: the subscription had caught up).
	Pending uint64
}

// LeafHash is the RFC 6962 leaf hash of a stored message in the log's
// Merkle tree: SHA-256(0x00 || subject || "\n" || payload).
func LeafHash(subject string, data []byte) domain.Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write([]byte(subject))
	h.Write([]byte{'\n'})
	h.Write(data)
	var out domain.Hash
	h.Sum(out[:0])
	return out
}

// Leaf returns the message's leaf hash.
func (m RawMessage) Leaf() domain.Hash { return LeafHash(m.Subject, m.Data) }

// Decode verifies a raw message and decodes it; see Handler for the errors.
func (s *Store) Decode(ctx context.Context, m RawMessage) (domain.Event, error) {
	e, err := s.decode(ctx, m.Seq, m.Subject, m.Header, m.Data)
	e.Sequence = m.Seq
	return e, err
}

// CheckHashHeader reports whether the message's Keyledger-Hash header is
// the SHA-256 of its payload.
func (m RawMessage) CheckHashHeader() error {
	sum := sha256.Sum256(m.Data)
	if got := m.Header.Get(HeaderHash); got != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("hash header %q does not match the payload", got)
	}
	return nil
}

// consumeHeartbeat is how often the server reports an idle subscription
// alive. The client recreates the consumer after two missed heartbeats:
// that is how a subscription learns that the cluster node hosting its
// consumer went away while its own connection stayed up, and until then
// no event reaches the read models. The client's default, 5s, stalled
// them (and every command waiting for them) for 10s.
const consumeHeartbeat = time.Second

// RawHandler receives stored messages in stream order.
type RawHandler func(m RawMessage)

// SubscribeRaw delivers every stored message from sequence from on,
// unverified and undecoded, in order, through an ordered consumer; see
// Subscribe. Errors: Unavailable.
func (s *Store) SubscribeRaw(ctx context.Context, from uint64, h RawHandler, onErr func(error)) (*Subscription, error) {
	return s.SubscribeSubjects(ctx, from, nil, h, onErr)
}

// SubscribeSubjects is SubscribeRaw limited to messages on subjects (nil:
// all; wildcards allowed, e.g. Subject(domain.CategoryKey, "*")).
func (s *Store) SubscribeSubjects(ctx context.Context, from uint64, subjects []string, h RawHandler, onErr func(error)) (*Subscription, error) {
	// One attempt per reset: the client retries a failed reset under the
	// same consumer name, and a name the cluster placed on a node that
	// died is answered by nobody, for as long as that node stays down
	// (seen: every command stuck waiting for its read models after the
	// ledger's NATS node was killed). After a failed attempt the
	// subscription misses its heartbeats and resets again, under a new
	// name, placed anew.
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubjects: subjects,
		MaxResetAttempts: 1}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	rctx, cancel := s.withTimeout(ctx)
	defer cancel()
	cons, err := s.js.OrderedConsumer(rctx, s.name, cfg)
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	opts := []jetstream.PullConsumeOpt{jetstream.PullHeartbeat(consumeHeartbeat)}
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
		h(RawMessage{Seq: md.Sequence.Stream, Subject: m.Subject(), Header: m.Headers(), Data: m.Data(),
			Time: md.Timestamp, Pending: md.NumPending})
	}, opts...)
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	return &Subscription{cc: cc, cons: cons}, nil
}

// MessageTime returns when the message at stream sequence seq was stored.
// Errors: NotFound, Unavailable.
func (s *Store) MessageTime(ctx context.Context, seq uint64) (time.Time, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, domain.Errorf(domain.NotFound, "no message at sequence %d", seq)
	}
	if err != nil {
		return time.Time{}, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	return m.Time.UTC(), nil
}

// Info describes the stream: its first and last sequences and how many
// messages were deleted from between them.
type Info struct {
	FirstSeq, LastSeq uint64
	Messages          uint64
	Deleted           int
	DenyDelete        bool
	DenyPurge         bool
	// Created is when the stream was created: a stream deleted and
	// created again under the same name has another.
	Created time.Time
	// Sealed is a stream that takes no more messages, ever.
	Sealed bool
}

// Info returns the stream's state. Errors: Unavailable.
func (s *Store) Info(ctx context.Context) (Info, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return Info{}, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	return Info{FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, Messages: info.State.Msgs,
		Deleted: info.State.NumDeleted, DenyDelete: info.Config.DenyDelete, DenyPurge: info.Config.DenyPurge,
		Created: info.Created, Sealed: info.Config.Sealed}, nil
}

// Checkpoints returns every checkpoint the ledger signed, oldest first.
// Errors: Unavailable.
func (s *Store) Checkpoints(ctx context.Context) ([]domain.Event, error) {
	events, _, err := s.Load(ctx, domain.CategoryLog, domain.CheckpointAggregate)
	if err != nil {
		return nil, err
	}
	out := events[:0]
	for _, e := range events {
		if _, ok := e.Data.(domain.LogCheckpoint); ok {
			out = append(out, e)
		}
	}
	return out, nil
}
