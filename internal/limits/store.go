package limits

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
)

// DefaultMaxBytes caps the limits bucket. Past it writes are refused, and
// keys with limits are refused with limits_unavailable (fail closed).
const DefaultMaxBytes = 256 << 20

// BucketFor returns the name of the limits bucket beside the stream.
func BucketFor(stream string) string { return stream + "_LIMITS" }

// StreamConfig is the JetStream stream behind the limits bucket of the
// stream named stream: one message per key (history 1), file storage
// (credits spent must survive a restart), replicated like the log, per
// message TTLs allowed (a rate window's record expires after the window),
// no purge, no roll-up, no message delete.
func StreamConfig(stream string, replicas int) jetstream.StreamConfig {
	b := BucketFor(stream)
	return jetstream.StreamConfig{
		Name:              "KV_" + b,
		Description:       "keyledger: rate limit tokens and credits taken by the validation nodes",
		Subjects:          []string{"$KV." + b + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          DefaultMaxBytes,
		MaxMsgSize:        maxRecordBytes,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          max(replicas, 1),
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
		AllowDirect:       true,
		AllowMsgTTL:       true,
		DenyDelete:        true,
		DenyPurge:         true,
	}
}

// SetUp creates the limits bucket (<stream>_LIMITS) beside the event
// stream, with as many replicas as the stream has, or brings an existing
// one to its configuration. It needs the operator's credentials; run again
// it changes nothing.
func SetUp(ctx context.Context, js jetstream.JetStream, stream string) error {
	replicas := 1
	if s, err := js.Stream(ctx, stream); err == nil {
		replicas = s.CachedInfo().Config.Replicas
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("limits bucket: the log's stream %s: %w", stream, err)
	}
	want := StreamConfig(stream, replicas)
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("limits bucket %s: %w", BucketFor(stream), err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("limits bucket %s: %w", BucketFor(stream), err)
	}
	cfg := s.CachedInfo().Config
	if cfg.AllowMsgTTL && cfg.DenyDelete && cfg.DenyPurge && !cfg.AllowRollup && cfg.MaxMsgsPerSubject == 1 &&
		cfg.MaxMsgSize == want.MaxMsgSize {
		return nil
	}
	cfg.AllowMsgTTL, cfg.DenyDelete, cfg.DenyPurge, cfg.AllowRollup = true, true, true, false
	cfg.MaxMsgsPerSubject, cfg.MaxMsgSize = 1, want.MaxMsgSize
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("limits bucket %s: %w", BucketFor(stream), err)
	}
	return nil
}

// rateKey is the bucket key of a key's rate window.
func rateKey(apiKey string, window time.Duration, index int64) string {
	return "rl." + apiKey + "." + strconv.FormatInt(int64(window/time.Second), 10) + "." + strconv.FormatInt(index, 10)
}

// creditsKey is the bucket key of a key's credits.
func creditsKey(apiKey string) string { return "cr." + apiKey }

// store reads and writes records of the bucket with compare-and-set: the
// JetStream stream itself, so that each write may carry its own TTL (the
// KV API sets one on creation only).
type store struct {
	js     jetstream.JetStream
	bucket string

	mu     sync.Mutex
	stream jetstream.Stream // bound on first use
}

// errConflict is a compare-and-set that lost to another node's write.
var errConflict = errors.New("limits record changed meanwhile")

// bind binds to the bucket's stream once.
func (s *store) bind(ctx context.Context) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		return s.stream, nil
	}
	st, err := s.js.Stream(ctx, "KV_"+s.bucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("limits bucket %s is not set up (run keyledger setup): %w", s.bucket, err)
		}
		return nil, err
	}
	s.stream = st
	return st, nil
}

// get returns a record's value and revision; a missing or deleted record
// is nil with the revision to write over (0 when missing).
func (s *store) get(ctx context.Context, key string) ([]byte, uint64, error) {
	st, err := s.bind(ctx)
	if err != nil {
		return nil, 0, err
	}
	m, err := st.GetLastMsgForSubject(ctx, "$KV."+s.bucket+"."+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, m.Sequence, nil
	}
	return m.Data, m.Sequence, nil
}

// put writes a record if its revision is still rev (0: still missing),
// expiring after ttl (0: never). It returns errConflict when another write
// came first.
func (s *store) put(ctx context.Context, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(rev)}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(max(ttl, time.Second)))
	}
	ack, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: "$KV." + s.bucket + "." + key, Data: value}, opts...)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, errConflict
		}
		return 0, err
	}
	return ack.Sequence, nil
}

// Remaining returns a key's credits not spent yet as the limits bucket
// kv (<stream>_LIMITS) counts them at time now under the policy p: the
// pool and the leases nodes hold, which they may still spend (an upper
// bound, current within a lease's life). A key no node has used yet has
// its policy's credits. Errors: a NATS error, or a malformed record.
func Remaining(ctx context.Context, kv jetstream.KeyValue, apiKey string, p domain.CreditPolicy, now time.Time) (uint64, error) {
	return remaining(ctx, kv, apiKey, p, now, (*creditRecord).held)
}

// remaining is Remaining with what the nodes hold counted by held.
func remaining(ctx context.Context, kv jetstream.KeyValue, apiKey string, p domain.CreditPolicy, now time.Time,
	held func(*creditRecord) uint64) (uint64, error) {
	if !domain.ValidAPIKey(apiKey) {
		return 0, fmt.Errorf("limits: %q is not an API key", truncate(apiKey))
	}
	if !validPolicy(p) {
		return 0, errors.New("limits: a refill without an interval")
	}
	e, err := kv.Get(ctx, creditsKey(apiKey))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return freshCredits(p, now).Pool, nil
	}
	if err != nil {
		return 0, err
	}
	r, err := decodeCredits(e.Value())
	if err != nil {
		return 0, err
	}
	r.settle(p, now, now, 0)
	return satAdd(r.Pool, held(&r)), nil
}

// truncate shortens untrusted input for an error message.
func truncate(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.ToValidUTF8(s, "?")
}

// Remaining is the package's Remaining corrected by what this Limiter
// knows of its own lease of the key: only its unspent part counts. A key
// used through one node alone (serve's own /validate) is then exact; the
// other nodes' leases still count whole until they give back what they
// did not spend.
//
// A lease round trip of this node in flight writes the record before the
// node's own count of its lease follows: Remaining waits for it first,
// so that the two agree (a lease just renewed would otherwise count as
// spent).
func (l *Limiter) Remaining(ctx context.Context, kv jetstream.KeyValue, apiKey string, p domain.CreditPolicy, now time.Time) (uint64, error) {
	if v, ok := l.keys.Load(apiKey); ok {
		ks := v.(*keyState)
		ks.mu.Lock()
		var flight chan struct{}
		if ks.cr != nil {
			flight = ks.cr.flight
		}
		ks.mu.Unlock()
		if flight != nil {
			select {
			case <-flight:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	return remaining(ctx, kv, apiKey, p, now, func(r *creditRecord) uint64 {
		i := r.leaseOf(l.leaseID)
		if i < 0 {
			return r.held()
		}
		own := r.Leases[i].Amount
		var avail uint64
		if v, ok := l.keys.Load(apiKey); ok {
			ks := v.(*keyState)
			ks.mu.Lock()
			if c := ks.cr; c != nil && c.held && c.epoch == r.Epoch && c.period == r.Period {
				avail = min(c.avail, own)
			}
			ks.mu.Unlock()
		}
		return r.held() - own + avail
	})
}
