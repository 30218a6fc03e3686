// Package idempotency keeps a record of requests that carry an
// Idempotency-Key, in a JetStream key-value bucket, so that a retried
// request is answered once and run at most once.
//
// A record goes through two states. Begin creates it "pending", holding
// the values the command will run with (its plan: event ids, new ids, a
// new secret) and a lease; Complete turns it "done", holding the response.
// A request that finds a done record gets that response again; one that
// finds a pending record with a live lease is told to retry later; one
// that finds the lease expired (the first request's server died) takes the
// record over and runs the command again with the same plan, which the
// ledger recognises as a repeat. Every write is a compare-and-set on the
// key's revision, so of concurrent requests exactly one holds the record.
//
// Records are encrypted: the bucket alone, without the server's secret and
// the client's Idempotency-Key, reveals neither a response nor a plan.
//
// Options keep their default when given the zero value of their argument
// (the Default constants), so a caller may pass a configuration field
// through unchecked; any other value outside an option's range makes New
// fail with Invalid.
package idempotency

import (
	"cmp"
	"context"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/natsperm"
)

// Defaults.
const (
	DefaultBucket = "KEYLEDGER_IDEMPOTENCY"
	// DefaultTTL is how long a record is kept after its last write: a
	// retry later than that runs as a new request.
	DefaultTTL = 24 * time.Hour
	// DefaultLease is how long a pending record belongs to the request that
	// wrote it; a retry after that takes it over.
	DefaultLease = 30 * time.Second
	// DefaultTimeout bounds each JetStream request that has no earlier
	// context deadline.
	DefaultTimeout = 5 * time.Second
	// MinTTL is the shortest TTL WithTTL accepts: a record must outlast a
	// client's retries.
	MinTTL = time.Minute
	// MaxReplicas is the most replicas JetStream gives a bucket.
	MaxReplicas = 5
)

// maxValueBytes bounds a record: a response body is at most a few hundred
// bytes here, and requests' bodies are never stored.
const maxValueBytes = 256 << 10

// maxAttempts bounds Begin's re-reads when the record changes under it.
const maxAttempts = 5

// Errors Begin and Complete return, matched with errors.Is.
var (
	// ErrReused is an Idempotency-Key sent with another request than the
	// one that created its record.
	ErrReused = domain.Errorf(domain.IdempotencyKeyReused,
		"this Idempotency-Key was used for a different request (body, path, method or caller); use a new key")
	// ErrInProgress is an Idempotency-Key whose first request still holds
	// its record.
	ErrInProgress = &domain.Error{Kind: domain.IdempotencyKeyInUse,
		Message: "a request with this Idempotency-Key is in progress; retry later", RetryAfter: time.Second}
	// ErrClaimLost is a Complete or Release of a record that another
	// request has taken over since (the claim's lease ran out).
	ErrClaimLost = domain.Errorf(domain.Conflict, "idempotency record taken over by another request")
)

// Key names a record: who asks (the authenticated user id, or a fixed
// scope for anonymous routes) and the Idempotency-Key they sent.
type Key struct {
	Scope string
	Value string
}

// Response is a stored response: what a replay sends.
type Response struct {
	Status int               `json:"status"`
	Header map[string]string `json:"header,omitempty"`
	Body   []byte            `json:"body,omitempty"`
}

// Claim is the outcome of Begin: either a response to replay, or the right
// to run the command with Plan until LeaseUntil, ended by Complete or
// Release.
type Claim struct {
	// Replay, when set, is the response to the first request: send it and
	// run nothing.
	Replay *Response
	// Plan is what the command must run with: the caller's own for a new
	// record, the stored one for a record taken over.
	Plan []byte
	// TakenOver reports that an earlier request began this record and did
	// not finish: the command may have taken effect already.
	TakenOver bool
	// LeaseUntil is when another request may take the record over.
	LeaseUntil time.Time

	name        string
	aead        cipher.AEAD
	fingerprint []byte
	revision    uint64
}

// record is a record's plaintext.
type record struct {
	State       string    `json:"state"`
	Fingerprint []byte    `json:"fingerprint"`
	LeaseUntil  time.Time `json:"lease_until,omitzero"`
	Plan        []byte    `json:"plan,omitempty"`
	Response    *Response `json:"response,omitempty"`
}

const (
	statePending = "pending"
	stateDone    = "done"
)

// Store keeps records in a JetStream key-value bucket. It is safe for
// concurrent use.
type Store struct {
	nc       *nats.Conn
	kv       jetstream.KeyValue
	secret   []byte
	bucket   string
	replicas int
	storage  jetstream.StorageType
	ttl      time.Duration
	maxBytes int64
	lease    time.Duration
	timeout  time.Duration
	now      func() time.Time
}

// Option configures a Store.
type Option func(*Store) error

// WithBucket sets the bucket name ("": DefaultBucket).
func WithBucket(name string) Option {
	return func(s *Store) error {
		if name == "" {
			return nil
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			return fmt.Errorf("bucket name %q: want letters, digits, '_' and '-' only", name)
		}
		s.bucket = name
		return nil
	}
}

// WithReplicas sets the bucket's replica count (1 to MaxReplicas). 0, the
// default, creates a bucket with 1 replica and leaves an existing bucket's
// count alone.
func WithReplicas(n int) Option {
	return func(s *Store) error {
		if n < 0 || n > MaxReplicas {
			return fmt.Errorf("replicas %d: must be 1 to %d, or 0 to keep the bucket's", n, MaxReplicas)
		}
		s.replicas = n
		return nil
	}
}

// WithMaxBytes caps the bucket's size in bytes (0: no cap); once full,
// new records are refused, never old ones dropped.
func WithMaxBytes(n int64) Option {
	return func(s *Store) error {
		if n < 0 {
			return fmt.Errorf("max bytes %d: must be positive, or 0 for no cap", n)
		}
		s.maxBytes = n
		return nil
	}
}

// WithTTL sets how long a record is kept after its last write (0:
// DefaultTTL; else at least MinTTL). It must outlast any client's retries.
func WithTTL(d time.Duration) Option {
	return func(s *Store) error {
		if d == 0 {
			return nil
		}
		if d < MinTTL {
			return fmt.Errorf("idempotency TTL %v: must be at least %v, or 0 for the default", d, MinTTL)
		}
		s.ttl = d
		return nil
	}
}

// WithLease sets how long a pending record belongs to the request that
// wrote it (0: DefaultLease). It should outlast a command.
func WithLease(d time.Duration) Option {
	return func(s *Store) error {
		if d < 0 {
			return fmt.Errorf("lease %v: must be positive, or 0 for the default", d)
		}
		if d == 0 {
			return nil
		}
		s.lease = d
		return nil
	}
}

// WithMemoryStorage keeps the bucket in memory: for tests where
// persistence is not the point.
func WithMemoryStorage() Option {
	return func(s *Store) error {
		s.storage = jetstream.MemoryStorage
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

// WithClock sets the clock leases are read against (nil: time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Store) error {
		if now != nil {
			s.now = now
		}
		return nil
	}
}

// New creates the bucket if it does not exist (or brings its TTL and
// replicas up to date) and returns a Store. secret is the server-held key
// (32 bytes) every record's encryption key is derived from; every server
// sharing the bucket needs the same one. Errors: Invalid, Unavailable.
func New(ctx context.Context, nc *nats.Conn, secret []byte, opts ...Option) (*Store, error) {
	s := &Store{nc: nc, bucket: DefaultBucket, storage: jetstream.FileStorage, ttl: DefaultTTL,
		lease: DefaultLease, timeout: DefaultTimeout, now: time.Now}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, domain.Wrap(domain.Invalid, err, "idempotency: "+err.Error())
		}
	}
	if nc == nil {
		return nil, domain.Errorf(domain.Invalid, "idempotency: nil NATS connection")
	}
	if len(secret) != SecretSize {
		return nil, domain.Errorf(domain.Invalid, "idempotency: secret must be %d bytes", SecretSize)
	}
	s.secret = append([]byte(nil), secret...)
	if err := s.open(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SetUp creates the bucket, or brings its settings up to date, as New
// would, without the secret and without writing a record: the step that
// holds the rights to manage streams, so that the ledger itself may run
// without them (New then binds to the bucket as it is and changes
// nothing). Errors: Invalid, Unavailable.
func SetUp(ctx context.Context, nc *nats.Conn, opts ...Option) error {
	s := &Store{nc: nc, bucket: DefaultBucket, storage: jetstream.FileStorage, ttl: DefaultTTL,
		lease: DefaultLease, timeout: DefaultTimeout, now: time.Now}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return domain.Wrap(domain.Invalid, err, "idempotency: "+err.Error())
		}
	}
	if nc == nil {
		return domain.Errorf(domain.Invalid, "idempotency: nil NATS connection")
	}
	return s.open(ctx)
}

// ErrBucketNotSetUp is returned by New (wrapped, of kind Unavailable) when
// the bucket is missing or differs from its configuration and the NATS
// credentials may not create or update it: run the set-up step (`keyledger
// setup`, SetUp) with the operator's credentials first.
var ErrBucketNotSetUp = errors.New("the idempotency bucket is not set up and these NATS credentials may not create or update it")

// open binds to the bucket, creating or updating it when it is missing or
// differs.
func (s *Store) open(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return domain.Wrap(domain.Unavailable, err, "jetstream unavailable")
	}
	// A cluster that is still forming answers "no suitable peers" or times
	// out for a while: retry until ctx says stop.
	for attempt := 0; ; attempt++ {
		if err = s.ensureBucket(ctx, js); err == nil {
			return nil
		}
		if errors.Is(err, ErrBucketNotSetUp) {
			return err
		}
		select {
		case <-ctx.Done():
			return domain.Wrap(domain.Unavailable, err, "idempotency bucket unavailable")
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, time.Second)):
		}
	}
}

func (s *Store) ensureBucket(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	replicas := max(s.replicas, 1)
	stream, err := js.Stream(ctx, "KV_"+s.bucket)
	switch {
	case err == nil:
		// A bucket already as configured is bound to as it is: no
		// STREAM.UPDATE, which the ledger's credentials do not permit.
		cfg := stream.CachedInfo().Config
		if s.replicas == 0 {
			replicas = cfg.Replicas
		}
		if cfg.MaxMsgsPerSubject == 1 && cfg.MaxAge == s.ttl && cfg.MaxMsgSize == maxValueBytes &&
			cfg.MaxBytes == cmp.Or(s.maxBytes, -1) && cfg.Storage == s.storage && cfg.Replicas == replicas {
			kv, err := js.KeyValue(ctx, s.bucket)
			if err != nil {
				return fmt.Errorf("bucket %s: %w", s.bucket, err)
			}
			s.kv = kv
			return nil
		}
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       s.bucket,
		Description:  "keyledger idempotency records (encrypted)",
		History:      1,
		TTL:          s.ttl,
		MaxValueSize: maxValueBytes,
		MaxBytes:     cmp.Or(s.maxBytes, -1),
		Storage:      s.storage,
		Replicas:     replicas,
	})
	if err != nil {
		if natsperm.Denied(s.nc, "$JS.API.STREAM.CREATE.KV_"+s.bucket, "$JS.API.STREAM.UPDATE.KV_"+s.bucket) {
			return domain.Wrap(domain.Unavailable, ErrBucketNotSetUp, fmt.Sprintf(
				"bucket %s is missing or not as configured (replicas, TTL or size limit) and these NATS credentials may not create or update it "+
					"(no permission to publish to $JS.API.STREAM.CREATE/UPDATE.KV_%s): run `keyledger setup` with the operator's credentials "+
					"and the same --stream, --replicas, --idempotency-ttl and --idempotency-max-bytes first", s.bucket, s.bucket))
		}
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	s.kv = kv
	return nil
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// Begin claims the record of key for a request whose fingerprint is fp,
// offering plan as the values to run the command with. It returns a Claim
// to run (Plan set: the caller's for a new record, the stored one for an
// abandoned record taken over) or to replay (Replay set).
//
// Errors: ErrReused (the record is another request's), ErrInProgress (its
// first request holds it; retry later), Unavailable (nothing recorded, or
// a pending record that a retry takes over once its lease ends), and
// IdempotencyKeyReused also for a record this server cannot decrypt (its
// secret changed).
func (s *Store) Begin(ctx context.Context, key Key, fp [32]byte, plan []byte) (*Claim, error) {
	if !s.nc.IsConnected() {
		return nil, domain.Errorf(domain.Unavailable, "idempotency store unavailable, try again")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	c, err := s.claim(key, fp)
	if err != nil {
		return nil, err
	}
	for range maxAttempts {
		now := s.now()
		fresh := record{State: statePending, Fingerprint: fp[:], LeaseUntil: now.Add(s.lease), Plan: plan}
		value, err := c.seal(fresh)
		if err != nil {
			return nil, err
		}
		rev, err := s.kv.Create(ctx, c.name, value)
		if err == nil {
			c.revision, c.Plan, c.LeaseUntil = rev, plan, fresh.LeaseUntil
			return c, nil
		}
		if !casFailed(err) {
			return nil, unavailable(err)
		}
		entry, err := s.kv.Get(ctx, c.name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // gone since (expired): create it again
		}
		if err != nil {
			return nil, unavailable(err)
		}
		old, err := c.open(entry.Value())
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(old.Fingerprint, fp[:]) != 1 {
			return nil, ErrReused
		}
		switch old.State {
		case stateDone:
			c.Replay = old.Response
			if c.Replay == nil {
				c.Replay = &Response{}
			}
			return c, nil
		case statePending:
			if now.Before(old.LeaseUntil) {
				return nil, ErrInProgress
			}
			old.LeaseUntil = now.Add(s.lease)
			if value, err = c.seal(old); err != nil {
				return nil, err
			}
			rev, err := s.kv.Update(ctx, c.name, value, entry.Revision())
			if err == nil {
				c.revision, c.Plan, c.LeaseUntil, c.TakenOver = rev, old.Plan, old.LeaseUntil, true
				return c, nil
			}
			if !casFailed(err) {
				return nil, unavailable(err)
			}
			// Another request took it over or finished it: read again.
		default:
			return nil, domain.Errorf(domain.Internal, "idempotency record in unknown state %q", old.State)
		}
	}
	return nil, ErrInProgress // the record kept changing: others are at it
}

// Complete stores the response of a claimed request: retries replay it.
// Errors: ErrClaimLost, Unavailable (the record stays pending, and a retry
// runs the command again with the same plan once the lease ends).
func (s *Store) Complete(ctx context.Context, c *Claim, resp Response) error {
	return s.write(ctx, c, record{State: stateDone, Fingerprint: c.fingerprint, Response: &resp})
}

// Release gives up a claim without a response to keep (the command failed
// in a way a retry may not: unavailable, internal): the record stays
// pending with its plan but without a lease, so the next retry runs the
// command again at once, with the same plan. Errors: ErrClaimLost,
// Unavailable (the record is then released when its lease ends).
func (s *Store) Release(ctx context.Context, c *Claim) error {
	return s.write(ctx, c, record{State: statePending, Fingerprint: c.fingerprint, Plan: c.Plan})
}

func (s *Store) write(ctx context.Context, c *Claim, rec record) error {
	if c == nil || c.Replay != nil || c.revision == 0 {
		return domain.Errorf(domain.Internal, "idempotency: not a claim to run")
	}
	if !s.nc.IsConnected() {
		return domain.Errorf(domain.Unavailable, "idempotency store unavailable")
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	value, err := c.seal(rec)
	if err != nil {
		return err
	}
	rev, err := s.kv.Update(ctx, c.name, value, c.revision)
	if casFailed(err) {
		return ErrClaimLost
	}
	if err != nil {
		return unavailable(err)
	}
	c.revision = rev
	return nil
}

func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// casFailed reports a failed compare-and-set: the key exists (Create) or
// has another revision (Update), whatever error code the stream's
// replication gives it.
func casFailed(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func unavailable(err error) error {
	return domain.Wrap(domain.Unavailable, err, "idempotency store unavailable, try again")
}

// decode parses a record's plaintext.
func decode(b []byte) (record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, domain.Wrap(domain.Internal, err, "")
	}
	return r, nil
}
