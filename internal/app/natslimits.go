package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/adminnonce"
	"github.com/keyledger/keyledger/internal/natsperm"
)

// Size limits of the stream and the buckets beside it, when ServeConfig
// leaves them zero. JetStream discards nothing: once one is full, new
// writes to it are refused, and keyledger_stream_bytes against
// keyledger_stream_max_bytes warns before that.
const (
	DefaultStreamMaxBytes      = 8 << 30
	DefaultIdempotencyMaxBytes = 1 << 30
	DefaultNoncesMaxBytes      = 64 << 20
)

// maxBytes is a size limit as the configuration gives it: 0 the default,
// negative no cap (0 for eventstore and idempotency, -1 for JetStream).
func maxBytes(configured, def int64) int64 {
	switch {
	case configured == 0:
		return def
	case configured < 0:
		return 0
	}
	return configured
}

// ensureNonceBucket creates the bucket of the shared replay cache
// (<stream>_NONCES) or brings it to this configuration: entries live ttl,
// at most maxBytes (0: no cap), in memory, and neither purge, roll-ups nor
// message deletes are allowed, so that whoever may write it (validation
// nodes) cannot empty it to replay signed requests. serve does this
// because nodes have no right to create or change the bucket.
func ensureNonceBucket(ctx context.Context, nc *nats.Conn, stream string, ttl time.Duration, maxBytes int64) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	bucket := stream + "_NONCES"
	replicas := 1
	if s, err := js.Stream(ctx, stream); err == nil {
		replicas = s.CachedInfo().Config.Replicas
	}
	want := jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       "keyledger: signed requests accepted, to refuse their replays on every node",
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          cmp.Or(maxBytes, -1),
		MaxAge:            ttl,
		MaxMsgSize:        1024,
		MaxConsumers:      -1,
		Storage:           jetstream.MemoryStorage,
		Replicas:          replicas,
		Discard:           jetstream.DiscardNew,
		Duplicates:        min(2*time.Minute, ttl),
		AllowDirect:       true,
		DenyDelete:        true,
		DenyPurge:         true,
	}
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if err != nil {
			return nonceBucketError(nc, bucket, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("nonce bucket %s: %w", bucket, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.DenyDelete && cfg.DenyPurge && !cfg.AllowRollup && cfg.MaxAge == want.MaxAge && cfg.MaxBytes == want.MaxBytes {
		return nil
	}
	cfg.DenyDelete, cfg.DenyPurge, cfg.AllowRollup = true, true, false
	cfg.MaxAge, cfg.MaxBytes, cfg.Duplicates = want.MaxAge, want.MaxBytes, want.Duplicates
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return nonceBucketError(nc, bucket, err)
	}
	return nil
}

// adminNonceOptions are the settings of the bucket of admin nonces
// (<stream>_ADMIN_NONCES): as many replicas as the log's stream, kept for
// handlers.AdminNonceTTL, the default size cap.
func adminNonceOptions(ctx context.Context, nc *nats.Conn, stream string) ([]adminnonce.Option, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("admin nonce bucket: the log's stream %s: %w", stream, err)
	}
	return []adminnonce.Option{adminnonce.WithBucket(stream + "_ADMIN_NONCES"),
		adminnonce.WithReplicas(s.CachedInfo().Config.Replicas), adminnonce.WithTTL(handlers.AdminNonceTTL)}, nil
}

// openAdminNonces binds to (or, with the rights to, creates) the bucket
// that refuses replayed admin signatures on every serve of the log.
func openAdminNonces(ctx context.Context, nc *nats.Conn, stream string) (*adminnonce.Store, error) {
	opts, err := adminNonceOptions(ctx, nc, stream)
	if err != nil {
		return nil, err
	}
	store, err := adminnonce.New(ctx, nc, opts...)
	if err != nil {
		return nil, fmt.Errorf("admin nonces: %w", err)
	}
	return store, nil
}

// setUpAdminNonces creates the bucket of admin nonces or brings it to its
// configuration (`keyledger setup`).
func setUpAdminNonces(ctx context.Context, nc *nats.Conn, stream string) error {
	opts, err := adminNonceOptions(ctx, nc, stream)
	if err != nil {
		return err
	}
	if err := adminnonce.SetUp(ctx, nc, opts...); err != nil {
		return fmt.Errorf("admin nonces: %w", err)
	}
	return nil
}

// nonceBucketError says what to do when the credentials may not create or
// update the nonce bucket.
func nonceBucketError(nc *nats.Conn, bucket string, err error) error {
	if natsperm.Denied(nc, "$JS.API.STREAM.CREATE.KV_"+bucket, "$JS.API.STREAM.UPDATE.KV_"+bucket) {
		return fmt.Errorf("nonce bucket %s is missing or not as configured (TTL or size limit) and these NATS credentials may not "+
			"create or update it (no permission to publish to $JS.API.STREAM.CREATE/UPDATE.KV_%s): run `keyledger setup` "+
			"with the operator's credentials and the same --stream, --signature-window and --nonces-max-bytes first", bucket, bucket)
	}
	return fmt.Errorf("nonce bucket %s: %w", bucket, err)
}

// streamSizes reports, on every scrape, how full the log's stream and the
// buckets beside it are.
type streamSizes struct {
	js      jetstream.JetStream
	streams []string
	bytes   *prometheus.Desc
	max     *prometheus.Desc
	msgs    *prometheus.Desc
}

func newStreamSizes(nc *nats.Conn, streams ...string) (*streamSizes, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	labels := []string{"stream"}
	return &streamSizes{js: js, streams: streams,
		bytes: prometheus.NewDesc("keyledger_stream_bytes",
			"Bytes stored in the JetStream stream (the log, or a bucket's stream).", labels, nil),
		max: prometheus.NewDesc("keyledger_stream_max_bytes",
			"The stream's size limit (absent: no limit); writes are refused once keyledger_stream_bytes reaches it.", labels, nil),
		msgs: prometheus.NewDesc("keyledger_stream_messages",
			"Messages stored in the JetStream stream.", labels, nil),
	}, nil
}

// Describe implements prometheus.Collector.
func (c *streamSizes) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.max
	ch <- c.msgs
}

// Collect implements prometheus.Collector: a stream that cannot be read
// now (NATS out of reach) is left out of the scrape.
func (c *streamSizes) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.streams {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := c.js.Stream(ctx, name)
		cancel()
		if err != nil {
			continue
		}
		info := s.CachedInfo()
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(info.State.Bytes), name)
		ch <- prometheus.MustNewConstMetric(c.msgs, prometheus.GaugeValue, float64(info.State.Msgs), name)
		if info.Config.MaxBytes > 0 {
			ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(info.Config.MaxBytes), name)
		}
	}
}
