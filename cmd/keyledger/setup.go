package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/validator"
)

// setupFlags registers the flags of setup: serve's flags that configure
// the stream and its buckets, with serve's defaults, so that serve finds
// them as it wants them.
func setupFlags(fs *flag.FlagSet, c *app.ServeConfig) {
	fs.StringVar(&c.NATSURL, "nats-url", "", "the NATS server or cluster serve will use (comma-separated URLs)")
	fs.IntVar(&c.Replicas, "replicas", 0, "replicas of the event stream and the idempotency bucket, as serve's --replicas (default: 1 for a new stream; an existing stream keeps its count)")
	fs.StringVar(&c.Stream, "stream", eventstore.DefaultStream, "JetStream stream name")
	fs.DurationVar(&c.StartTimeout, "start-timeout", app.DefaultStartTimeout, "how long to wait for NATS and the stream")
	fs.Int64Var(&c.StreamMaxBytes, "stream-max-bytes", app.DefaultStreamMaxBytes, "as serve's --stream-max-bytes")
	fs.Int64Var(&c.IdempotencyMaxBytes, "idempotency-max-bytes", app.DefaultIdempotencyMaxBytes, "as serve's --idempotency-max-bytes")
	fs.Int64Var(&c.NoncesMaxBytes, "nonces-max-bytes", app.DefaultNoncesMaxBytes, "as serve's --nonces-max-bytes")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", idempotency.DefaultTTL, "as serve's --idempotency-ttl")
	usageStreamFlags(fs, c)
	fs.DurationVar(&c.Signed.Window, "signature-window", validator.DefaultSignatureWindow, "as serve's --signature-window (the nonce bucket keeps entries twice that)")
	natsClientFlags(fs, &c.NATSClient)
}

// runSetup creates the event stream and its buckets on an outside NATS
// cluster, with the operator's credentials, so that serve may run with the
// ledger's.
func runSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg app.ServeConfig
	fs := newFlagSet("setup")
	setupFlags(fs, &cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := asUsageError(app.SetUp(ctx, cfg, logger)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "set up   stream %s and buckets %s_IDEMPOTENCY, %s_NONCES, %s_ADMIN_NONCES, %s_USER_KEYS\n", cfg.Stream, cfg.Stream, cfg.Stream, cfg.Stream, cfg.Stream)
	return nil
}
