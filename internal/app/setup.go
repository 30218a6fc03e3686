package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/datakeys"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/usage"
	"github.com/keyledger/keyledger/validator"
)

// SetUp creates on an outside NATS cluster (cfg.NATSURL) what serve would
// create at start, as serve would configure it: the event stream and the
// idempotency, nonce, admin nonce and limits buckets (stream, replicas, size
// limits, TTLs and the signature window from cfg, its other fields
// ignored). It writes no
// event: the genesis is serve's, signed with its key. Run with the
// operator's credentials, it lets serve run with the ledger's, which may
// not create or change a stream; run again, it changes only what differs.
func SetUp(ctx context.Context, cfg ServeConfig, logger *slog.Logger) error {
	if cfg.NATSURL == "" {
		return ConfigError{errors.New("--nats-url: required (the embedded server of serve sets itself up)")}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.StartTimeout = cmp.Or(cfg.StartTimeout, DefaultStartTimeout)
	cfg.Stream = cmp.Or(cfg.Stream, eventstore.DefaultStream)
	natsOpts, err := cfg.NATSClient.Options()
	if err != nil {
		return err
	}
	nc, err := ConnectNATS(ctx, cfg.NATSURL, cfg.StartTimeout, logger, natsOpts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := eventstore.SetUp(ctx, nc, eventstore.WithStream(cfg.Stream), eventstore.WithReplicas(cfg.Replicas),
		eventstore.WithMaxBytes(maxBytes(cfg.StreamMaxBytes, DefaultStreamMaxBytes))); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	if err := idempotency.SetUp(ctx, nc, idempotencyOptions(cfg.Stream, cfg.Replicas, cfg.IdempotencyTTL,
		maxBytes(cfg.IdempotencyMaxBytes, DefaultIdempotencyMaxBytes))...); err != nil {
		return fmt.Errorf("idempotency records: %w", err)
	}
	if err := ensureNonceBucket(ctx, nc, cfg.Stream, cfg.nonceTTL(), maxBytes(cfg.NoncesMaxBytes, DefaultNoncesMaxBytes)); err != nil {
		return err
	}
	if err := setUpAdminNonces(ctx, nc, cfg.Stream); err != nil {
		return err
	}
	if err := datakeys.SetUp(ctx, nc, datakeys.WithBucket(datakeys.BucketFor(cfg.Stream)), datakeys.WithReplicas(cfg.Replicas)); err != nil {
		return fmt.Errorf("user keys: %w", err)
	}
	if err := usage.SetUp(ctx, nc, cfg.usageStream()); err != nil {
		return err
	}
	if err := setUpLimits(ctx, nc, cfg.Stream); err != nil {
		return err
	}
	if err := setUpSnapshots(ctx, nc, cfg.Stream); err != nil {
		return err
	}
	logger.Info("the event stream and its buckets are set up", "stream", cfg.Stream, "replicas", cfg.Replicas)
	return nil
}

// nonceTTL is how long the nonce bucket keeps a signed request's nonce:
// twice the signature window, past which a request is refused anyway.
func (c *ServeConfig) nonceTTL() time.Duration {
	return 2 * cmp.Or(c.Signed.Window, validator.DefaultSignatureWindow)
}

// usageStream is the configuration of the usage stream beside the log.
func (c *ServeConfig) usageStream() jetstream.StreamConfig {
	return usage.StreamConfig(c.Stream, c.Replicas, c.UsageRetention, maxBytes(c.UsageMaxBytes, usage.DefaultMaxBytes))
}
