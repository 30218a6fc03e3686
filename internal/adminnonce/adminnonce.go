// Package adminnonce remembers the nonces of accepted admin signatures in
// a JetStream key-value bucket that every serve on the log shares, so that
// a signed admin request is accepted once: not again by another serve, and
// not again by the same serve after a restart.
//
// A nonce is recorded with a publish that expects the key's subject to
// hold no message (Nats-Expected-Last-Subject-Sequence: 0): of two serves
// recording the same nonce at once, exactly one succeeds. That is stricter
// than KeyValue.Create, which writes over a delete marker: whoever may
// write the bucket could put one to replay a request. Here any message on
// the subject - a nonce, a delete marker, an overwrite - refuses the
// nonce until the bucket's MaxAge removes it. The bucket denies purge,
// message deletes and roll-ups, so only MaxAge removes anything, and only
// the operator's credentials, which may change the stream, could empty it
// sooner.
//
// The keys are hex SHA-256 digests of the admin key id and the nonce: no
// caller's text reaches a subject.
package adminnonce

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/natsperm"
)

// Defaults.
const (
	// DefaultBucket is the bucket's name beside the default stream.
	DefaultBucket = "KEYLEDGER_ADMIN_NONCES"
	// DefaultTTL is how long a nonce is kept when WithTTL is not given.
	DefaultTTL = 20 * time.Minute
	// DefaultMaxBytes caps the bucket when WithMaxBytes is not given: at a
	// few hundred bytes a nonce, tens of thousands of admin requests per
	// TTL. A full bucket refuses new nonces, and so admin requests (503),
	// rather than forget one.
	DefaultMaxBytes = 16 << 20
	// DefaultTimeout bounds each JetStream request that has no earlier
	// context deadline.
	DefaultTimeout = 5 * time.Second
	// MaxReplicas is the most replicas JetStream gives a bucket.
	MaxReplicas = 5
)

// maxMsgBytes bounds a stored message: a nonce has no value, only a
// subject and headers.
const maxMsgBytes = 1024

// labelName keeps the keys' hashes apart from any other hash.
const labelName = "keyledger/v1/admin-nonce"

// Errors.
var (
	// ErrReplayed is a nonce recorded before (Unauthorized).
	ErrReplayed = domain.Errorf(domain.Unauthorized, "admin signature replayed")
	// ErrBucketNotSetUp is returned by New (wrapped, of kind Unavailable)
	// when the bucket is missing or differs from its configuration and the
	// NATS credentials may not create or update it: run the set-up step
	// (`keyledger setup`, SetUp) with the operator's credentials first.
	ErrBucketNotSetUp = errors.New("the admin nonce bucket is not set up and these NATS credentials may not create or update it")
)

// Option configures a Store (New) or the set-up step (SetUp).
type Option func(*config) error

type config struct {
	bucket   string
	replicas int
	ttl      time.Duration
	maxBytes int64
	storage  jetstream.StorageType
	timeout  time.Duration
}

// WithBucket sets the bucket's name ("": DefaultBucket).
func WithBucket(name string) Option {
	return func(c *config) error {
		if name == "" {
			return nil
		}
		if !validBucket(name) {
			return fmt.Errorf("bucket %q: letters, digits, - and _ only", name)
		}
		c.bucket = name
		return nil
	}
}

// WithReplicas sets the bucket's replicas, as many as the log's stream (0:
// 1).
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 0 || n > MaxReplicas {
			return fmt.Errorf("replicas %d: want 0 to %d", n, MaxReplicas)
		}
		c.replicas = max(n, 1)
		return nil
	}
}

// WithTTL sets how long a nonce is kept (0: DefaultTTL): at least as long
// as a signature may be accepted, clock differences included.
func WithTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("ttl %v: must be positive, or 0 for the default", d)
		}
		c.ttl = cmp.Or(d, DefaultTTL)
		return nil
	}
}

// WithMaxBytes caps the bucket's size (0: DefaultMaxBytes; negative: no
// cap).
func WithMaxBytes(n int64) Option {
	return func(c *config) error {
		switch {
		case n == 0:
			c.maxBytes = DefaultMaxBytes
		case n < 0:
			c.maxBytes = -1
		default:
			c.maxBytes = n
		}
		return nil
	}
}

// WithMemoryStorage keeps the bucket in memory: for tests where surviving
// a NATS restart is not the point.
func WithMemoryStorage() Option {
	return func(c *config) error {
		c.storage = jetstream.MemoryStorage
		return nil
	}
}

// WithTimeout bounds each JetStream request that has no earlier context
// deadline (0: DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("timeout %v: must be positive, or 0 for the default", d)
		}
		c.timeout = cmp.Or(d, DefaultTimeout)
		return nil
	}
}

func newConfig(opts []Option) (config, error) {
	c := config{bucket: DefaultBucket, replicas: 1, ttl: DefaultTTL, maxBytes: DefaultMaxBytes,
		storage: jetstream.FileStorage, timeout: DefaultTimeout}
	for _, opt := range opts {
		if err := opt(&c); err != nil {
			return config{}, domain.Wrap(domain.Invalid, err, "admin nonces: "+err.Error())
		}
	}
	return c, nil
}

// streamConfig is the bucket's stream as it must be.
func (c config) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + c.bucket,
		Description:       "keyledger: nonces of accepted admin signatures, to refuse their replays on every serve",
		Subjects:          []string{"$KV." + c.bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          c.maxBytes,
		MaxAge:            c.ttl,
		MaxMsgSize:        maxMsgBytes,
		MaxConsumers:      -1,
		Storage:           c.storage,
		Replicas:          c.replicas,
		Discard:           jetstream.DiscardNew,
		Duplicates:        min(2*time.Minute, c.ttl),
		AllowDirect:       true,
		DenyDelete:        true,
		DenyPurge:         true,
	}
}

// matches reports whether an existing stream is configured as c wants in
// everything a replay could hinge on.
func (c config) matches(got jetstream.StreamConfig) bool {
	want := c.streamConfig()
	return got.MaxMsgsPerSubject == want.MaxMsgsPerSubject && got.MaxAge == want.MaxAge &&
		got.MaxBytes == want.MaxBytes && got.MaxMsgSize == want.MaxMsgSize && got.Storage == want.Storage &&
		got.Replicas == want.Replicas && got.Discard == want.Discard && got.DenyDelete && got.DenyPurge &&
		!got.AllowRollup && !got.AllowMsgTTL && !got.Sealed && len(got.Subjects) == 1 && got.Subjects[0] == want.Subjects[0]
}

// Store records nonces. It is safe for concurrent use.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	cfg     config
	subject string // the keys' subject prefix
}

// New binds to the bucket, creating or updating it when it is missing or
// differs from the options and the credentials allow it. Errors: Invalid,
// Unavailable (ErrBucketNotSetUp among them).
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, domain.Errorf(domain.Invalid, "admin nonces: nil NATS connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, domain.Wrap(domain.Unavailable, err, "jetstream unavailable")
	}
	if err := ensure(ctx, nc, js, c); err != nil {
		return nil, err
	}
	return &Store{nc: nc, js: js, cfg: c, subject: "$KV." + c.bucket + "."}, nil
}

// SetUp creates the bucket, or brings it to the options' configuration,
// as New would, without binding to it: the step that holds the rights to
// manage streams, so that serve may run without them. Errors: Invalid,
// Unavailable.
func SetUp(ctx context.Context, nc *nats.Conn, opts ...Option) error {
	c, err := newConfig(opts)
	if err != nil {
		return err
	}
	if nc == nil {
		return domain.Errorf(domain.Invalid, "admin nonces: nil NATS connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return domain.Wrap(domain.Unavailable, err, "jetstream unavailable")
	}
	return ensure(ctx, nc, js, c)
}

// ensure leaves a bucket as configured as it is (no STREAM.UPDATE, which
// the ledger's credentials do not permit) and creates or updates it
// otherwise, retrying while a cluster is still forming until ctx ends.
func ensure(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, c config) error {
	for attempt := 0; ; attempt++ {
		err := ensureOnce(ctx, nc, js, c)
		if err == nil || errors.Is(err, ErrBucketNotSetUp) {
			return err
		}
		select {
		case <-ctx.Done():
			return domain.Wrap(domain.Unavailable, err, "admin nonce bucket unavailable")
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, time.Second)):
		}
	}
}

func ensureOnce(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, c config) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	want := c.streamConfig()
	s, err := js.Stream(ctx, want.Name)
	switch {
	case err == nil:
		got := s.CachedInfo().Config
		if c.matches(got) {
			return nil
		}
		// Keep what JetStream or an operator set that this does not care
		// about (placement, metadata), fix the rest.
		got.Description, got.Subjects, got.MaxMsgsPerSubject, got.MaxMsgs = want.Description, want.Subjects, want.MaxMsgsPerSubject, want.MaxMsgs
		got.MaxBytes, got.MaxAge, got.MaxMsgSize, got.Replicas = want.MaxBytes, want.MaxAge, want.MaxMsgSize, want.Replicas
		got.Discard, got.Duplicates, got.DenyDelete, got.DenyPurge = want.Discard, want.Duplicates, true, true
		got.AllowRollup, got.AllowMsgTTL = false, false
		if got.Storage != want.Storage {
			return fmt.Errorf("bucket %s: stored in %v, want %v: an operator must move it (a stream's storage cannot change)", c.bucket, got.Storage, want.Storage)
		}
		_, err = js.UpdateStream(ctx, got)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = js.CreateStream(ctx, want)
	}
	if err != nil {
		if natsperm.Denied(nc, "$JS.API.STREAM.CREATE."+want.Name, "$JS.API.STREAM.UPDATE."+want.Name, "$JS.API.STREAM.INFO."+want.Name) {
			return domain.Wrap(domain.Unavailable, ErrBucketNotSetUp, fmt.Sprintf(
				"bucket %s is missing or not as configured (replicas or size limit) and these NATS credentials may not create or "+
					"update it (no permission to publish to $JS.API.STREAM.CREATE/UPDATE.%s): run `keyledger setup` with the "+
					"operator's credentials and the same --stream and --replicas first, and use ledger credentials issued by this "+
					"version (`keyledger init` re-issues them)", c.bucket, want.Name))
		}
		return fmt.Errorf("bucket %s: %w", c.bucket, err)
	}
	return nil
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.cfg.bucket }

// Record records that the admin key keyID signed a request with nonce.
// Of any number of calls with the same keyID and nonce, on any Store of
// the bucket, within its TTL, exactly one returns nil. Errors: ErrReplayed
// (Unauthorized: recorded before), Unavailable (NATS or the bucket out of
// reach, or the bucket full: nothing may be assumed recorded).
func (s *Store) Record(ctx context.Context, keyID, nonce string) error {
	if !s.nc.IsConnected() {
		return domain.Errorf(domain.Unavailable, "admin nonce store unavailable, try again")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.timeout)
		defer cancel()
	}
	_, err := s.js.Publish(ctx, s.subject+Key(keyID, nonce), nil,
		jetstream.WithExpectLastSequencePerSubject(0), jetstream.WithExpectStream("KV_"+s.cfg.bucket))
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return ErrReplayed
	}
	return domain.Wrap(domain.Unavailable, fmt.Errorf("record admin nonce in %s: %w", s.cfg.bucket, err),
		"admin nonce store unavailable, try again")
}

// Key is the bucket key of an admin key id and a nonce: hex SHA-256 over
// a label and both, each prefixed with its length, so that no two pairs
// share a key and no caller's text reaches a subject.
func Key(keyID, nonce string) string {
	h := sha256.New()
	for _, f := range []string{labelName, keyID, nonce} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func validBucket(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}
