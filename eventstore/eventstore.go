// Package eventstore keeps keyledger's events in a NATS JetStream stream.
// It is the only package that publishes events, and nothing above it sees a
// NATS error: failures come back as domain errors.
//
// Each aggregate has its own subject, <prefix>.<category>.<aggregate>, so
// JetStream's per-subject expected sequence gives optimistic concurrency per
// aggregate, and the stream sequence gives one global order.
//
// A Store is either a writer, which needs the ledger's signing key
// (WithSigningKey) and never makes one up, or a reader (ReadOnly), which
// needs no key and no rights beyond reading the stream: that is what
// validation nodes and auditors open, including an outside auditor's own
// tool.
//
// Options follow one convention: an option given the zero value of its
// argument keeps the default (the Default constants below), so a caller may
// pass a configuration field through unchecked; any other value outside the
// option's range makes New fail with Invalid. Options that state whom to
// trust (WithSigningKey, WithTrustedKeys) have no default and refuse an
// empty argument.
package eventstore

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/natsperm"
)

// Defaults.
const (
	DefaultStream        = "KEYLEDGER"
	DefaultSubjectPrefix = "keyledger"
	// DefaultTimeout bounds each JetStream request that has no earlier
	// context deadline; for an append, all its publish attempts together.
	DefaultTimeout = 5 * time.Second
	// DefaultAttemptTimeout bounds one publish attempt of an append. An
	// attempt that hears nothing by then (its request died with the stream
	// leader that had it) is sent again, under the same message id, rather
	// than waiting out the whole DefaultTimeout: once a new leader is
	// elected the next attempt is stored, or acknowledged as the duplicate
	// of the one that was.
	DefaultAttemptTimeout = time.Second
	// MaxReplicas is the most replicas JetStream gives a stream.
	MaxReplicas = 5
	// MinServerVersion is the oldest nats-server with every feature this
	// package relies on: atomic batch publish (2.12) and per-subject
	// expected sequences in batches.
	MinServerVersion = "2.12.0"
)

// Store appends and reads events. It is safe for concurrent use.
type Store struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	name     string
	prefix   string
	replicas int
	storage  jetstream.StorageType
	timeout  time.Duration
	attempt  time.Duration // bounds one publish attempt of an append
	readOnly bool
	maxBytes int64

	signer      ed25519.PrivateKey
	signerID    string
	trust       trustView
	genesisNote string
	own         ownSignatures // what this store signed: its subscriptions need not verify it
}

// Option configures a Store.
type Option func(*Store) error

// WithStream sets the stream name ("": DefaultStream).
func WithStream(name string) Option {
	return func(s *Store) error {
		if name == "" {
			return nil
		}
		if strings.ContainsAny(name, ".*> \t\r\n") {
			return fmt.Errorf("stream name %q: must be without '.', '*', '>' or spaces", name)
		}
		s.name = name
		return nil
	}
}

// WithSubjectPrefix sets the first subject token ("": DefaultSubjectPrefix).
func WithSubjectPrefix(prefix string) Option {
	return func(s *Store) error {
		if prefix == "" {
			return nil
		}
		if !validToken(prefix) {
			return fmt.Errorf("subject prefix %q: must be one subject token", prefix)
		}
		s.prefix = prefix
		return nil
	}
}

// WithReplicas sets the stream's replica count (1 to MaxReplicas), scaling
// an existing stream to it. 0, the default, creates a stream with 1 replica
// and leaves an existing stream's count alone.
func WithReplicas(n int) Option {
	return func(s *Store) error {
		if n < 0 || n > MaxReplicas {
			return fmt.Errorf("replicas %d: must be 1 to %d, or 0 to keep the stream's", n, MaxReplicas)
		}
		s.replicas = n
		return nil
	}
}

// WithMaxBytes caps the stream's size in bytes, setting it on an existing
// stream too (0, the default: a new stream has no cap and an existing one
// keeps its own). The stream discards new messages: once full, appends
// fail and no stored event is ever dropped.
func WithMaxBytes(n int64) Option {
	return func(s *Store) error {
		if n < 0 {
			return fmt.Errorf("max bytes %d: must be positive, or 0 to keep the stream's", n)
		}
		s.maxBytes = n
		return nil
	}
}

// WithMemoryStorage keeps the stream in memory instead of files: for tests
// where persistence is not the point.
func WithMemoryStorage() Option {
	return func(s *Store) error {
		s.storage = jetstream.MemoryStorage
		return nil
	}
}

// ReadOnly opens an existing stream for reading and never creates or
// changes it: for validation nodes and auditors, which must not need the
// rights to manage the stream, nor any signing key. New then fails
// (Unavailable) until the stream exists and has a genesis. A read-only
// store trusts the keys the log's trust events name, from the genesis on;
// an auditor outside the ledger's operators should pin the trust root
// (WithTrustedKeys).
func ReadOnly() Option {
	return func(s *Store) error {
		s.readOnly = true
		return nil
	}
}

// WithTimeout bounds each JetStream request that has no earlier context
// deadline (0: DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(s *Store) error {
		if d < 0 {
			return fmt.Errorf("timeout %v: must be positive, or 0 for the default", d)
		}
		if d == 0 {
			return nil
		}
		s.timeout = d
		return nil
	}
}

// WithAttemptTimeout bounds one publish attempt of an append (0:
// DefaultAttemptTimeout); an append retries within its overall timeout
// (WithTimeout, or its context's deadline).
func WithAttemptTimeout(d time.Duration) Option {
	return func(s *Store) error {
		if d < 0 {
			return fmt.Errorf("attempt timeout %v: must be positive, or 0 for the default", d)
		}
		if d > 0 {
			s.attempt = d
		}
		return nil
	}
}

// ErrNoSigningKey is returned by New for a writable store opened without
// WithSigningKey: a store never makes up a key of its own to trust.
var ErrNoSigningKey = domain.Errorf(domain.Invalid,
	"eventstore: a writable store needs the ledger's signing key (WithSigningKey); open it ReadOnly to only read")

// New checks the server version, creates the stream if it does not exist
// (or brings the settings this package owns up to date), reads the log's
// trust events and returns a Store. A writable store appends the genesis
// naming its key to a log that has none (see GenesisNote), and refuses a
// log that does not trust its key. Errors: Invalid for a bad option, a
// writable store without a signing key (ErrNoSigningKey) or a read-only
// one with one, a signing key the log does not trust
// (ErrUntrustedSigningKey); Unavailable when JetStream cannot be reached
// or a reader finds no genesis (and pins no key).
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	s, err := newStore(nc, opts)
	if err != nil {
		return nil, err
	}
	switch {
	case !s.readOnly && s.signer == nil:
		return nil, ErrNoSigningKey
	case s.readOnly && s.signer != nil:
		// A genesis changes the log, which a reader must not.
		return nil, domain.Errorf(domain.Invalid, "eventstore: a read-only store signs nothing: drop WithSigningKey or ReadOnly")
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	if err := s.setUpTrust(ctx); err != nil {
		if errors.Is(err, ErrUntrustedSigningKey) {
			return nil, err
		}
		return nil, domain.Wrap(domain.Unavailable, err, err.Error())
	}
	return s, nil
}

// SetUp creates the stream, or brings the settings this package owns up to
// date, as New would, and writes nothing to it: the step that holds the
// rights to manage streams, so that the ledger itself may run without
// them (New then finds the stream as it wants it and changes nothing). It
// takes New's options but WithSigningKey, WithTrustedKeys and ReadOnly,
// which it ignores. Errors: Invalid for a bad option or a stream that
// exists with other subjects or storage, Unavailable otherwise.
func SetUp(ctx context.Context, nc *nats.Conn, opts ...Option) error {
	s, err := newStore(nc, opts)
	if err != nil {
		return err
	}
	s.readOnly = false
	return s.connect(ctx)
}

// newStore applies the options to a Store with the defaults.
func newStore(nc *nats.Conn, opts []Option) (*Store, error) {
	s := &Store{nc: nc, name: DefaultStream, prefix: DefaultSubjectPrefix,
		storage: jetstream.FileStorage, timeout: DefaultTimeout,
		attempt: DefaultAttemptTimeout}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, domain.Wrap(domain.Invalid, err, "eventstore: "+err.Error())
		}
	}
	if nc == nil {
		return nil, domain.Errorf(domain.Invalid, "eventstore: nil NATS connection")
	}
	return s, nil
}

// connect checks the server version and opens the stream, creating or
// updating it unless the store is read-only.
func (s *Store) connect(ctx context.Context) error {
	if v := s.nc.ConnectedServerVersion(); !versionAtLeast(v, MinServerVersion) {
		return domain.Errorf(domain.Unavailable,
			"nats-server %s is too old: keyledger needs %s or newer (atomic batch publish)", v, MinServerVersion)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return domain.Wrap(domain.Unavailable, err, "jetstream unavailable")
	}
	s.js = js
	return s.ensureStream(ctx)
}

// ErrStreamNotSetUp is returned by New (wrapped, of kind Unavailable) when
// the stream is missing or differs from what the store wants and its NATS
// credentials may not create or update it: run the set-up step
// (`keyledger setup`, SetUp) with the operator's credentials first.
var ErrStreamNotSetUp = errors.New("the stream is not set up and these NATS credentials may not create or update it")

// StreamName returns the name of the stream.
func (s *Store) StreamName() string { return s.name }

// Subject returns the subject of an aggregate.
func (s *Store) Subject(category, aggregate string) string {
	return s.prefix + "." + category + "." + aggregate
}

// Conn returns the NATS connection the store uses.
func (s *Store) Conn() *nats.Conn { return s.nc }

func (s *Store) ensureStream(ctx context.Context) error {
	want := jetstream.StreamConfig{
		Name:               s.name,
		Description:        "keyledger event log",
		Subjects:           []string{s.prefix + ".>"},
		Storage:            s.storage,
		Replicas:           max(s.replicas, 1),
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardNew,
		Duplicates:         2 * time.Minute,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
		MaxBytes:           cmp.Or(s.maxBytes, -1),
	}
	// A cluster that is still forming answers "no suitable peers" or times
	// out for a while: retry creation until ctx says stop.
	var lastErr error
	for attempt := 0; ; attempt++ {
		lastErr = s.tryEnsureStream(ctx, want)
		if lastErr == nil {
			return nil
		}
		if domain.KindOf(lastErr) == domain.Invalid || errors.Is(lastErr, ErrStreamNotSetUp) {
			return lastErr
		}
		select {
		case <-ctx.Done():
			return domain.Wrap(domain.Unavailable, lastErr, "jetstream stream unavailable")
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, time.Second)):
		}
	}
}

func (s *Store) tryEnsureStream(ctx context.Context, want jetstream.StreamConfig) error {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	stream, err := s.js.Stream(rctx, s.name)
	if errors.Is(err, jetstream.ErrStreamNotFound) && !s.readOnly {
		stream, err = s.js.CreateStream(rctx, want)
		if err != nil && natsperm.Denied(s.nc, "$JS.API.STREAM.CREATE."+s.name) {
			return s.notSetUp("create", "missing")
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.name, err)
	}
	if s.readOnly {
		s.stream = stream
		return nil
	}
	cfg := stream.CachedInfo().Config
	if !slices.Contains(cfg.Subjects, want.Subjects[0]) {
		return domain.Errorf(domain.Invalid, "stream %s exists with subjects %v, not %s", s.name, cfg.Subjects, want.Subjects[0])
	}
	if cfg.Storage != want.Storage {
		return domain.Errorf(domain.Invalid, "stream %s exists with %v storage, not %v", s.name, cfg.Storage, want.Storage)
	}
	rescale := s.replicas > 0 && cfg.Replicas != s.replicas
	resize := s.maxBytes > 0 && cfg.MaxBytes != s.maxBytes
	if !cfg.AllowDirect || !cfg.AllowAtomicPublish || !cfg.DenyDelete || !cfg.DenyPurge || rescale || resize {
		cfg.AllowDirect, cfg.AllowAtomicPublish, cfg.DenyDelete, cfg.DenyPurge = true, true, true, true
		if resize {
			cfg.MaxBytes = s.maxBytes
		}
		if rescale {
			cfg.Replicas = s.replicas
		}
		if stream, err = s.js.UpdateStream(rctx, cfg); err != nil {
			if natsperm.Denied(s.nc, "$JS.API.STREAM.UPDATE."+s.name) {
				return s.notSetUp("update", "not as configured (replicas, size limit or protections)")
			}
			return fmt.Errorf("update stream %s: %w", s.name, err)
		}
	}
	s.stream = stream
	return nil
}

// notSetUp is ErrStreamNotSetUp for the stream, naming what was refused.
func (s *Store) notSetUp(verb, state string) error {
	return domain.Wrap(domain.Unavailable, ErrStreamNotSetUp, fmt.Sprintf(
		"stream %s is %s and these NATS credentials may not %s it (no permission to publish to $JS.API.STREAM.%s.%s): "+
			"run `keyledger setup` with the operator's credentials and the same --stream, --replicas and --stream-max-bytes first",
		s.name, state, verb, strings.ToUpper(verb), s.name))
}

// Pending is an event to append and the stream sequence its aggregate's
// last event must have (0: the aggregate must have no events yet).
type Pending struct {
	Event       domain.Event
	ExpectedSeq uint64
}

// Append stores events, all or none, each only if its aggregate's last
// event is still at its ExpectedSeq (for several events of one aggregate,
// the first one's ExpectedSeq: the others follow it). Events without an ID get a new ULID,
// which is also the JetStream message id, so a retried append stores once.
// It returns each event's stream sequence once JetStream has acknowledged
// it (acknowledged means durable).
//
// Errors: Conflict when an expected sequence no longer holds (another
// writer got there first), Unavailable when JetStream cannot be reached or
// the outcome cannot be determined, Invalid for an event it cannot encode.
func (s *Store) Append(ctx context.Context, events ...Pending) ([]uint64, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if !s.nc.IsConnected() {
		// Fail fast rather than queue behind a reconnect: nothing is
		// written, and the caller can retry.
		return nil, domain.Errorf(domain.Unavailable, "event log unavailable, try again")
	}
	msgs := make([]*nats.Msg, len(events))
	// The hash of each aggregate's latest event in the batch: a later
	// event of the same aggregate chains to it. Its writer could not know
	// that hash, which covers the event's id and the request it keeps.
	type batchLast struct {
		version uint64
		hash    domain.Hash
	}
	lasts := map[string]batchLast{}
	for i := range events {
		e := &events[i].Event
		if e.ID == "" {
			e.ID = ulid.MustNew(ulid.Timestamp(e.Time), rand.Reader).String()
		}
		if !validToken(e.Aggregate) {
			return nil, domain.Errorf(domain.Invalid, "aggregate id %q is not a subject token", e.Aggregate)
		}
		subject := s.Subject(e.Category(), e.Aggregate)
		if prev, ok := lasts[subject]; ok && e.Version == prev.version+1 {
			e.Prev = prev.hash
		}
		data, err := domain.EncodeEvent(*e)
		if err != nil {
			return nil, domain.Wrap(domain.Invalid, err, "cannot encode event")
		}
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		if !repeatsAggregate(events[:i], *e) {
			// A later event of the same aggregate follows the one before
			// it in the batch, which is stored with it or not at all: the
			// first one's expectation guards them all.
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(events[i].ExpectedSeq, 10))
		}
		sum := sha256.Sum256(data)
		lasts[subject] = batchLast{version: e.Version, hash: sum}
		m.Header.Set(HeaderHash, hex.EncodeToString(sum[:]))
		s.sign(m)
		msgs[i] = m
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	last, err := s.publish(ctx, msgs)
	if err != nil {
		if last, err = s.resolve(err, msgs[len(msgs)-1]); err != nil {
			return nil, err
		}
	}
	seqs := make([]uint64, len(msgs))
	for i := range seqs {
		seqs[i] = last - uint64(len(msgs)-1-i)
	}
	return seqs, nil
}

// Waits between publish attempts of one append: short, since the usual
// reason to try again is a stream leader being elected, which answers
// the moment it is.
const (
	retryFirstWait = 25 * time.Millisecond
	retryMaxWait   = 250 * time.Millisecond
	// retryFor bounds the time an append retries, whatever its deadline:
	// well inside the stream's duplicate window (2 minutes), within which
	// JetStream recognises an attempt that was already stored by its
	// message id.
	retryFor = time.Minute
)

// publish publishes msgs (one message, or an atomic batch) and returns the
// stream sequence of the last one. An attempt that fails in a way a later
// one may not - no answer within the attempt timeout, no stream leader to
// answer, the connection moving to another server - is repeated with the
// very same messages until ctx ends or retryFor passes. That is safe
// because every message carries its event's id as Nats-Msg-Id: an attempt
// whose predecessor was stored is acknowledged as a duplicate with the
// stored sequence (a batch's is refused as one, which resolve
// recognises), never stored twice, and its expected sequence is not held
// against it; past the duplicate window that expected sequence would
// refuse it anyway. The error is the last attempt's.
func (s *Store) publish(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	wait := retryFirstWait
	start := time.Now()
	for {
		actx, cancel := context.WithTimeout(ctx, s.attempt)
		last, err := s.publishOnce(actx, msgs)
		cancel()
		if err == nil || ctx.Err() != nil || !retryable(err) || time.Since(start) >= retryFor {
			return last, err
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMaxWait)
	}
}

// publishOnce is one attempt of publish.
func (s *Store) publishOnce(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	if len(msgs) > 1 {
		return s.publishBatch(ctx, msgs)
	}
	// No retries of the client's own: publish makes them, bounded by the
	// same deadline.
	ack, err := s.js.PublishMsg(ctx, msgs[0], jetstream.WithRetryAttempts(0))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// JetStream error codes publish retries on (nats-server's errors.json).
const (
	// errCodeClusterNotLeader: the server asked is no longer the leader.
	errCodeClusterNotLeader = 10009
	// errCodeDuplicateInProcess: an earlier attempt with the same
	// message id is being stored; the next attempt gets its sequence.
	errCodeDuplicateInProcess = 10158
)

// retryable reports whether a failed publish attempt may succeed if sent
// again: it got no answer (timed out, no responders while the stream has
// no leader, the connection between servers), JetStream answered that it
// is not available for now, or an earlier attempt is still being stored.
// A refusal of the message itself (a wrong expected sequence, a full
// stream, a duplicate in a batch) is final.
func retryable(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.ErrorCode == errCodeClusterNotLeader ||
			apiErr.ErrorCode == errCodeDuplicateInProcess
	}
	return !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) &&
		!errors.Is(err, nats.ErrMaxPayload) && !errors.Is(err, jetstream.ErrInvalidOption)
}

// repeatsAggregate reports whether one of before is an event of e's
// aggregate (same category, same id: the same subject).
func repeatsAggregate(before []Pending, e domain.Event) bool {
	for _, p := range before {
		if p.Event.Aggregate == e.Aggregate && p.Event.Category() == e.Category() {
			return true
		}
	}
	return false
}

// publishBatch publishes msgs as one JetStream atomic batch and returns the
// stream sequence of the last one (the batch is stored contiguously).
// Each call is a batch of its own (a new batch id), so that a retry of
// a batch whose first attempt was lost starts afresh.
func (s *Store) publishBatch(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	batchID := ulid.Make().String()
	for i, m := range msgs {
		m.Header.Set("Nats-Batch-Id", batchID)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, err
			}
		}
	}
	commit := msgs[len(msgs)-1]
	commit.Header.Set("Nats-Batch-Commit", "1")
	resp, err := s.nc.RequestMsgWithContext(ctx, commit)
	if err != nil {
		return 0, err
	}
	var ack struct {
		Seq   uint64              `json:"seq"`
		Count int                 `json:"count"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("batch ack: %w", err)
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if ack.Count != len(msgs) {
		return 0, fmt.Errorf("batch ack counts %d messages, sent %d", ack.Count, len(msgs))
	}
	return ack.Seq, nil
}

// resolve turns a publish error into a domain error. The stored message
// decides: a retry of an append that was already stored fails its own
// expected-sequence check (or times out), yet the event is in the log. So
// whenever the aggregate's last message carries our message id, the append
// succeeded; otherwise a failed expectation is a Conflict and anything else
// leaves the outcome unknown (Unavailable). The look-up is bounded by the
// attempt timeout: while the stream has no leader no replica answers it
// (the same wait that failed the append), and an unknown outcome is
// better said at once than after another full timeout.
func (s *Store) resolve(err error, last *nats.Msg) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.attempt)
	defer cancel()
	stored, gerr := s.stream.GetLastMsgForSubject(ctx, last.Subject)
	if gerr == nil && stored.Header.Get(jetstream.MsgIDHeader) == last.Header.Get(jetstream.MsgIDHeader) {
		return stored.Sequence, nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return 0, domain.Wrap(domain.Conflict, err, "concurrent change, try again")
		}
	}
	return 0, domain.Wrap(domain.Unavailable, err, "event log unavailable, try again")
}

// LastSequence returns the stream sequence of the aggregate's last event, or
// 0 if it has none. Errors: Unavailable.
func (s *Store) LastSequence(ctx context.Context, category, aggregate string) (uint64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	m, err := s.stream.GetLastMsgForSubject(ctx, s.Subject(category, aggregate))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	return m.Sequence, nil
}

// Load returns every event of one aggregate, oldest first, and the stream
// sequence of the last message on its subject. Events of unknown types and
// messages the ledger did not sign are skipped.
// Errors: Unavailable, Internal for an undecodable event.
func (s *Store) Load(ctx context.Context, category, aggregate string) ([]domain.Event, uint64, error) {
	last, err := s.LastSequence(ctx, category, aggregate)
	if err != nil || last == 0 {
		return nil, 0, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	subject := s.Subject(category, aggregate)
	var events []domain.Event
	for seq := uint64(1); seq <= last; {
		m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			return nil, 0, domain.Wrap(domain.Unavailable, err, "event log unavailable")
		}
		e, err := s.decode(ctx, m.Sequence, m.Subject, m.Header, m.Data)
		if errors.Is(err, ErrForged) {
			seq = m.Sequence + 1
			continue
		}
		if err == nil {
			e.Sequence = m.Sequence
			events = append(events, e)
		} else if !errors.Is(err, domain.ErrUnknownEventType) {
			return nil, 0, fmt.Errorf("load %s at %d: %w", subject, m.Sequence, err)
		}
		seq = m.Sequence + 1
	}
	return events, last, nil
}

// Head returns the stream sequence of the newest event in the log (0 for an
// empty log). Errors: Unavailable.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	return info.State.LastSeq, nil
}

func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// decode verifies a stored message's signature and that it sits on its
// own aggregate's subject, then decodes it. Errors wrap ErrForged for a
// message the ledger did not write, domain.ErrUnknownEventType for a type
// this code does not know.
func (s *Store) decode(ctx context.Context, seq uint64, subject string, header nats.Header, data []byte) (domain.Event, error) {
	if err := s.verify(ctx, seq, subject, header, data); err != nil {
		return s.fromSubject(subject), err
	}
	e, err := domain.DecodeEvent(data)
	if err == nil && subject != s.Subject(e.Category(), e.Aggregate) {
		return s.fromSubject(subject), fmt.Errorf("%w: %s event of %s stored on %s", ErrForged, e.Type, e.Aggregate, subject)
	}
	return e, err
}

// fromSubject describes a message that cannot be trusted by where it is
// stored: its category and aggregate come from the subject, nothing from
// its payload.
func (s *Store) fromSubject(subject string) domain.Event {
	rest, _ := strings.CutPrefix(subject, s.prefix+".")
	category, aggregate, _ := strings.Cut(rest, ".")
	return domain.Event{Type: category + ".?", Aggregate: aggregate}
}

// validToken reports whether s can be one subject token.
func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n")
}

// versionAtLeast compares dotted versions ("2.15.2" >= "2.12.0"); anything
// unparsable is too old.
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range w {
		if i >= len(h) {
			return false
		}
		hv, err1 := strconv.Atoi(strings.SplitN(h[i], "-", 2)[0])
		wv, err2 := strconv.Atoi(w[i])
		if err1 != nil || err2 != nil {
			return false
		}
		if hv != wv {
			return hv > wv
		}
	}
	return true
}
