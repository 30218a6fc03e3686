package mail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/keyledger/keyledger/internal/ratelimit"
)

// Sender delivers one message. Errors: any (the Outbox retries).
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Outbox defaults.
const (
	DefaultQueueSize = 1000
	DefaultAttempts  = 5
	DefaultBackoff   = 2 * time.Second
	// DefaultPerRecipient messages go to one address at once, then one more
	// every DefaultRecipientEvery: nobody can turn registration into a
	// way to flood someone's mailbox.
	DefaultPerRecipient   = 5
	DefaultRecipientEvery = 10 * time.Minute
)

// OutboxConfig configures an Outbox; zero fields mean the defaults.
type OutboxConfig struct {
	QueueSize int           // messages waiting at most; beyond, Enqueue drops
	Attempts  int           // delivery attempts per message
	Backoff   time.Duration // wait after the first failure, doubled after each
	// PerRecipient and RecipientEvery pace messages to one address.
	PerRecipient   int
	RecipientEvery time.Duration
	Logger         *slog.Logger
}

// Outbox sends messages in the background, one at a time, retrying a
// bounded number of times: a request that causes a message never waits for
// the mail server. It is safe for concurrent use. Logs never name a
// recipient or quote a message.
type Outbox struct {
	sender   Sender
	queue    chan Message
	attempts int
	backoff  time.Duration
	paced    *ratelimit.Bucket
	logger   *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	closing  chan struct{} // closed by Close: no more retries
	done     chan struct{}

	mu     sync.Mutex
	closed bool
}

// NewOutbox starts an Outbox that delivers through s; Close stops it.
func NewOutbox(s Sender, c OutboxConfig) (*Outbox, error) {
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.PerRecipient <= 0 {
		c.PerRecipient = DefaultPerRecipient
	}
	if c.RecipientEvery <= 0 {
		c.RecipientEvery = DefaultRecipientEvery
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	paced, err := ratelimit.NewBucket(ratelimit.BucketConfig{Every: c.RecipientEvery, Burst: c.PerRecipient})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &Outbox{sender: s, queue: make(chan Message, c.QueueSize), attempts: c.Attempts, backoff: c.Backoff,
		paced: paced, logger: c.Logger, ctx: ctx, cancel: cancel, closing: make(chan struct{}), done: make(chan struct{})}
	go o.run()
	return o, nil
}

// Enqueue queues m for delivery and reports whether it did: a full queue,
// a closed Outbox, or a recipient who got too many messages lately drops
// it (with a log line).
func (o *Outbox) Enqueue(m Message) bool {
	sum := sha256.Sum256([]byte(m.To))
	if o.paced.Take(hex.EncodeToString(sum[:]), time.Now()) > 0 {
		o.logger.Warn("mail dropped: too many messages to one recipient lately", "subject", m.Subject)
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	select {
	case o.queue <- m:
		return true
	default:
		o.logger.Error("mail dropped: the outbox is full (is the SMTP server down?)", "subject", m.Subject)
		return false
	}
}

// Close stops delivery: the attempt in flight may finish until ctx ends,
// then is abandoned; retries and messages still queued are dropped (with a
// log line): a shutdown never waits for a mail server that is down. The
// recipients can ask for a new link.
func (o *Outbox) Close(ctx context.Context) {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.closing)
		close(o.queue)
	}
	o.mu.Unlock()
	select {
	case <-o.done:
	case <-ctx.Done():
		o.cancel()
		<-o.done
	}
	o.cancel()
}

func (o *Outbox) run() {
	defer close(o.done)
	dropped := 0
	for m := range o.queue {
		select {
		case <-o.closing:
			dropped++
			continue
		default:
		}
		o.deliver(m)
	}
	if dropped > 0 {
		o.logger.Warn("mail not sent: shutting down", "dropped", dropped)
	}
}

// deliver tries m up to o.attempts times, backing off between tries.
func (o *Outbox) deliver(m Message) {
	wait := o.backoff
	for attempt := 1; ; attempt++ {
		err := o.sender.Send(o.ctx, m)
		if err == nil {
			o.logger.Info("mail sent", "subject", m.Subject, "attempt", attempt)
			return
		}
		if attempt == o.attempts || o.ctx.Err() != nil {
			o.logger.Error("mail not sent: giving up", "subject", m.Subject, "attempts", attempt, "err", err)
			return
		}
		o.logger.Warn("mail not sent: retrying", "subject", m.Subject, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-o.closing:
			t.Stop()
			o.logger.Error("mail not sent: shutting down", "subject", m.Subject, "attempts", attempt)
			return
		}
		wait *= 2
	}
}
