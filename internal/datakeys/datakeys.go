// Package datakeys keeps the secrets that make personal data erasable: one
// data key per user, under which the user's email and password hash are
// sealed in the log (domain.SealPersonal), and the key that email
// reservations are hashed under (domain.EmailAggregate).
//
// The log is append-only and denies deletes, so the keys live beside it in
// a JetStream bucket that can really forget: <stream>_USER_KEYS, one
// message per key (history 1), replicated like the stream. Destroying a
// user's data key erases its message securely (the server overwrites it
// with random bytes), after which no sealed value of that user opens again,
// in any copy of the log.
//
// Only the operator creates the bucket and only the ledger reads and writes
// it: validation nodes and auditors never need personal data, and their
// NATS credentials cannot read it (see internal/natsauth).
package datakeys

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/natsperm"
)

// DefaultBucket is the bucket's name for the default stream, KEYLEDGER.
const DefaultBucket = "KEYLEDGER_USER_KEYS"

// BucketFor returns the bucket's name for a stream.
func BucketFor(stream string) string { return stream + "_USER_KEYS" }

// emailKeyName is the entry of the key email reservations are hashed
// under. User ids start with "usr_", so it cannot collide with one.
const emailKeyName = "email-hash-key"

// DefaultCacheSize bounds the data keys kept in memory.
const DefaultCacheSize = 10000

// ErrNoDataKey is returned (wrapped, of kind NotFound) for a user who has no
// data key: never had one, or was erased.
var ErrNoDataKey = errors.New("no data key")

// ErrBucketNotSetUp is returned (wrapped, of kind Unavailable) when the
// bucket is missing and these NATS credentials may not create it: run
// `keyledger setup` with the operator's credentials first.
var ErrBucketNotSetUp = errors.New("the user keys bucket is not set up and these NATS credentials may not create it")

// Store is the bucket of data keys. It is safe for concurrent use.
type Store struct {
	nc       *nats.Conn
	bucket   string
	replicas int
	storage  jetstream.StorageType
	capacity int
	random   io.Reader
	timeout  time.Duration

	kv     jetstream.KeyValue
	stream jetstream.Stream

	mu       sync.Mutex
	cache    map[string][]byte
	emailKey []byte
}

// Option configures a Store.
type Option func(*Store) error

// WithBucket names the bucket (default DefaultBucket).
func WithBucket(name string) Option {
	return func(s *Store) error {
		if name == "" {
			return errors.New("empty bucket name")
		}
		s.bucket = name
		return nil
	}
}

// WithReplicas sets the replicas of a new bucket (0: those of the stream
// the bucket belongs to, else 1).
func WithReplicas(n int) Option {
	return func(s *Store) error {
		if n < 0 {
			return errors.New("negative replicas")
		}
		s.replicas = n
		return nil
	}
}

// WithMemoryStorage keeps a new bucket in memory (tests).
func WithMemoryStorage() Option {
	return func(s *Store) error { s.storage = jetstream.MemoryStorage; return nil }
}

// WithCacheSize bounds the data keys kept in memory (default
// DefaultCacheSize).
func WithCacheSize(n int) Option {
	return func(s *Store) error {
		if n < 1 {
			return errors.New("cache size must be positive")
		}
		s.capacity = n
		return nil
	}
}

func newStore(nc *nats.Conn, opts []Option) (*Store, error) {
	s := &Store{nc: nc, bucket: DefaultBucket, storage: jetstream.FileStorage, capacity: DefaultCacheSize,
		random: rand.Reader, timeout: 10 * time.Second, cache: make(map[string][]byte)}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, domain.Wrap(domain.Invalid, err, "datakeys: "+err.Error())
		}
	}
	if nc == nil {
		return nil, domain.Errorf(domain.Invalid, "datakeys: nil NATS connection")
	}
	return s, nil
}

// SetUp creates the bucket unless it exists, for the step that holds the
// rights to manage streams (`keyledger setup`, or serve on its embedded
// server). Errors: Invalid, Unavailable.
func SetUp(ctx context.Context, nc *nats.Conn, opts ...Option) error {
	s, err := newStore(nc, opts)
	if err != nil {
		return err
	}
	return s.open(ctx)
}

// Open binds to the bucket, creating it if it is missing and the
// credentials allow. Errors: Invalid, Unavailable (wrapping
// ErrBucketNotSetUp when it is missing and may not be created).
func Open(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	s, err := newStore(nc, opts)
	if err != nil {
		return nil, err
	}
	if err := s.open(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// config is the bucket's stream: a key-value bucket with history 1 that,
// unlike a default one, lets a message be deleted (securely, by the
// ledger), and lets nobody roll up or purge.
func (s *Store) config(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + s.bucket,
		Description:       "keyledger: per-user data keys (destroyed on erasure) and the email hash key",
		Subjects:          []string{"$KV." + s.bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        1024,
		MaxConsumers:      -1,
		Storage:           s.storage,
		Replicas:          replicas,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
		AllowDirect:       true,
		DenyPurge:         true,
	}
}

func (s *Store) open(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return domain.Wrap(domain.Unavailable, err, "jetstream unavailable")
	}
	// A cluster that is still forming answers "no suitable peers" or times
	// out for a while: retry until ctx says stop.
	for attempt := 0; ; attempt++ {
		// A bucket that would not forget is no passing state: no retry.
		if err = s.ensure(ctx, js); err == nil || errors.Is(err, ErrBucketNotSetUp) || domain.KindOf(err) == domain.Internal {
			return err
		}
		select {
		case <-ctx.Done():
			return domain.Wrap(domain.Unavailable, err, "user keys bucket unavailable")
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, time.Second)):
		}
	}
}

func (s *Store) ensure(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	name := "KV_" + s.bucket
	stream, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		replicas := s.replicas
		if replicas == 0 {
			replicas = 1
			if log, err := js.Stream(ctx, logStream(s.bucket)); err == nil {
				replicas = log.CachedInfo().Config.Replicas
			}
		}
		stream, err = js.CreateStream(ctx, s.config(replicas))
		if err != nil && natsperm.Denied(s.nc, "$JS.API.STREAM.CREATE."+name) {
			return domain.Wrap(domain.Unavailable, ErrBucketNotSetUp, fmt.Sprintf(
				"bucket %s is missing and these NATS credentials may not create it (no permission to publish to "+
					"$JS.API.STREAM.CREATE.%s): run `keyledger setup` with the operator's credentials and the same --stream first",
				s.bucket, name))
		}
	}
	if err != nil {
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	if cfg := stream.CachedInfo().Config; cfg.MaxMsgsPerSubject != 1 || cfg.AllowRollup || cfg.DenyDelete {
		// History above 1 would keep destroyed keys; a roll-up or a
		// forbidden delete would leave them on disk.
		return domain.Errorf(domain.Internal, "bucket %s is not configured to forget (history %d, rollup %v, deny delete %v)",
			s.bucket, cfg.MaxMsgsPerSubject, cfg.AllowRollup, cfg.DenyDelete)
	}
	kv, err := js.KeyValue(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	s.kv, s.stream = kv, stream
	return nil
}

// logStream guesses the log's stream from the bucket's name.
func logStream(bucket string) string {
	const suffix = "_USER_KEYS"
	if len(bucket) > len(suffix) && bucket[len(bucket)-len(suffix):] == suffix {
		return bucket[:len(bucket)-len(suffix)]
	}
	return bucket
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// EmailKey returns the key email reservations are hashed under, creating it
// on first use. Concurrent first uses by several instances agree: the first
// create wins and the others read it. Errors: Unavailable, Internal.
func (s *Store) EmailKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	k := s.emailKey
	s.mu.Unlock()
	if k != nil {
		return k, nil
	}
	k, err := s.createOrGet(ctx, emailKeyName)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.emailKey = k
	s.mu.Unlock()
	return k, nil
}

// Create returns the data key of a new user, creating it; a user who has
// one already (a retried registration) gets that one.
// Errors: Invalid, Unavailable, Internal.
func (s *Store) Create(ctx context.Context, userID string) ([]byte, error) {
	if !domain.ValidUserID(userID) {
		return nil, domain.Errorf(domain.Invalid, "malformed user id")
	}
	k, err := s.createOrGet(ctx, userID)
	if err != nil {
		return nil, err
	}
	s.remember(userID, k)
	return k, nil
}

// errDisconnected answers at once while NATS is unreachable, instead of
// after a timeout: a command then fails fast, as appends do.
var errDisconnected = domain.Errorf(domain.Unavailable, "user keys unavailable: not connected to NATS")

func (s *Store) createOrGet(ctx context.Context, name string) ([]byte, error) {
	if !s.nc.IsConnected() {
		return nil, errDisconnected
	}
	k := make([]byte, domain.DataKeySize)
	if _, err := io.ReadFull(s.random, k); err != nil {
		return nil, domain.Wrap(domain.Internal, err, "")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.kv.Create(ctx, name, k)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, domain.Wrap(domain.Unavailable, fmt.Errorf("create %s: %w", name, err), "user keys unavailable")
	}
	return s.get(ctx, name)
}

func (s *Store) get(ctx context.Context, name string) ([]byte, error) {
	e, err := s.kv.Get(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, domain.Wrap(domain.NotFound, ErrNoDataKey, "")
	case err != nil:
		return nil, domain.Wrap(domain.Unavailable, fmt.Errorf("get %s: %w", name, err), "user keys unavailable")
	case len(e.Value()) != domain.DataKeySize:
		return nil, domain.Errorf(domain.Internal, "key %s: %d bytes, want %d", name, len(e.Value()), domain.DataKeySize)
	}
	return e.Value(), nil
}

// Get returns a user's data key, from memory when it can.
// Errors: NotFound (wrapping ErrNoDataKey), Unavailable, Internal.
func (s *Store) Get(ctx context.Context, userID string) ([]byte, error) {
	s.mu.Lock()
	k, ok := s.cache[userID]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	if !domain.ValidUserID(userID) {
		return nil, domain.Wrap(domain.NotFound, ErrNoDataKey, "")
	}
	if !s.nc.IsConnected() {
		return nil, errDisconnected
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	k, err := s.get(ctx, userID)
	if err != nil {
		return nil, err
	}
	s.remember(userID, k)
	return k, nil
}

// remember caches a data key, evicting an arbitrary one when full.
func (s *Store) remember(userID string, k []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= s.capacity {
		for id := range s.cache {
			delete(s.cache, id)
			break
		}
	}
	s.cache[userID] = k
}

// Forget drops a user's data key from memory: the projections call it when
// the user's erasure arrives, on every instance.
func (s *Store) Forget(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.cache[userID]; ok {
		clear(k)
		delete(s.cache, userID)
	}
}

// Cached reports whether a user's data key is in memory (tests).
func (s *Store) Cached(userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.cache[userID]
	return ok
}

// Destroy erases a user's data key for good: from memory, and from the
// bucket, where the server overwrites its message with random bytes. It
// then checks that no message of the key remains. Destroying a key that is
// gone succeeds. Errors: Invalid, Unavailable, Internal.
func (s *Store) Destroy(ctx context.Context, userID string) error {
	if !domain.ValidUserID(userID) {
		return domain.Errorf(domain.Invalid, "malformed user id")
	}
	s.Forget(userID)
	if !s.nc.IsConnected() {
		return errDisconnected
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	subject := "$KV." + s.bucket + "." + userID
	// History is 1, so one message at most; a concurrent create would add
	// one, hence the loop.
	for range 3 {
		m, err := s.stream.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return domain.Wrap(domain.Unavailable, fmt.Errorf("find data key of %s: %w", userID, err), "user keys unavailable")
		}
		if err := s.stream.SecureDeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return domain.Wrap(domain.Unavailable, fmt.Errorf("erase data key of %s: %w", userID, err), "user keys unavailable")
		}
	}
	return domain.Errorf(domain.Internal, "data key of %s still present after erasing it", userID)
}
