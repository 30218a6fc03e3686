package validator

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// WithSharedReplayCache makes every node that sets it share the record of
// accepted signed requests, in a JetStream key-value bucket next to the
// stream ("<stream>_NONCES", created if missing, entries expiring after
// twice the signature window; an existing bucket is used as it is, and
// must keep entries that long): a request accepted by one node is then a
// replay on every other. Each signed validation costs a round trip to
// NATS; with NATS out of reach, signed requests are refused with
// Unavailable (fail closed) while plain ones keep validating. The node's
// connection must be allowed to write that bucket, and to create it
// unless it exists (keyledger serve creates it). Without
// this option, each node remembers only the requests it accepted itself.
func WithSharedReplayCache() Option {
	return func(o *options) error {
		o.sharedReplays = true
		return nil
	}
}

// ErrReplayCacheUnavailable is returned for a signed request when the
// shared replay cache cannot be reached: the node cannot tell whether
// another node accepted it already.
var ErrReplayCacheUnavailable = &domain.Error{Kind: domain.Unavailable,
	Message: "signed requests cannot be checked for replays right now, try again", RetryAfter: time.Second}

// sharedReplays is the bucket behind WithSharedReplayCache.
type sharedReplays struct {
	nc      *nats.Conn
	kv      jetstream.KeyValue
	timeout time.Duration
}

// openSharedReplays creates or binds the bucket, with the stream's
// replicas and memory storage: entries matter only for a few minutes.
func openSharedReplays(ctx context.Context, nc *nats.Conn, stream string, ttl time.Duration) (*sharedReplays, error) {
	if nc == nil {
		return nil, errors.New("shared replay cache: needs a NATS connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	bucket := stream + "_NONCES"
	// Bind first: a node's credentials may write the bucket but not create
	// or change it (serve creates it, purge and delete denied).
	kv, err := js.KeyValue(ctx, bucket)
	if err == nil {
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("shared replay cache %s: %w", bucket, err)
		}
		if st.TTL() < ttl {
			return nil, fmt.Errorf("shared replay cache %s keeps entries %v, less than the %v this node needs (twice its signature window)", bucket, st.TTL(), ttl)
		}
		return &sharedReplays{nc: nc, kv: kv, timeout: 2 * time.Second}, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("shared replay cache %s: %w", bucket, err)
	}
	replicas := 1
	if s, err := js.Stream(ctx, stream); err == nil {
		replicas = s.CachedInfo().Config.Replicas
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "keyledger: signed requests accepted, to refuse their replays on every node",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.MemoryStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("shared replay cache %s: %w", bucket, err)
	}
	return &sharedReplays{nc: nc, kv: kv, timeout: 2 * time.Second}, nil
}

// add records the pair; it reports replaySeen when some node did already.
// Errors: ErrReplayCacheUnavailable.
func (s *sharedReplays) add(keyID, nonce string) (int, error) {
	if !s.nc.IsConnected() {
		// Fail fast: the client would hold the write until it reconnects.
		return 0, ErrReplayCacheUnavailable
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	id := replayID(keyID, nonce)
	_, err := s.kv.Create(ctx, hex.EncodeToString(id[:]), nil)
	switch {
	case err == nil:
		return replayFresh, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return replaySeen, nil
	}
	return 0, domain.Wrap(domain.Unavailable, err, domain.MessageOf(ErrReplayCacheUnavailable))
}
