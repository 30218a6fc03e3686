package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/checkpoint"
	"github.com/keyledger/keyledger/internal/idempotency"
	"github.com/keyledger/keyledger/internal/ledger"
)

// serveFlags registers the flags of serve, which set c.
func serveFlags(fs *flag.FlagSet, c *app.ServeConfig) {
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory for the embedded NATS store and the session signing key")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics over plain HTTP on this address only, e.g. 127.0.0.1:9090 (default: on the HTTP API's listener)")
	fs.StringVar(&c.NATSListen, "nats-listen", "127.0.0.1:4222", "client address of the embedded NATS server (loopback only)")
	fs.StringVar(&c.NATSURL, "nats-url", "", "use this NATS server or cluster instead of the embedded one (comma-separated URLs)")
	fs.IntVar(&c.Replicas, "replicas", 0, "replicas of the event stream, 3 for a replicated log on a cluster (default: 1 for a new stream; an existing stream keeps its count)")
	fs.StringVar(&c.Stream, "stream", eventstore.DefaultStream, "JetStream stream name")
	fs.StringVar(&c.SessionKeyFile, "session-key", "", "Ed25519 PKCS#8 PEM key that signs session tokens, created if missing (default <data-dir>/session-ed25519.pem)")
	fs.StringVar(&c.SigningKeyFile, "signing-key", "", "Ed25519 PKCS#8 PEM key that signs every event the ledger writes, created if missing (default <data-dir>/ledger-ed25519.pem)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", auth.DefaultTTL, "lifetime of session tokens")
	fs.DurationVar(&c.StartTimeout, "start-timeout", app.DefaultStartTimeout, "how long to wait for NATS and the event stream at start")
	fs.IntVar(&c.MaxKeysPerUser, "max-keys-per-user", ledger.DefaultMaxKeysPerUser, "most unrevoked API keys a user may hold (negative: no limit)")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", checkpoint.DefaultInterval, "how often to append a signed Merkle checkpoint of the log when it has grown (negative: never)")
	fs.DurationVar(&c.IdempotencyTTL, "idempotency-ttl", idempotency.DefaultTTL, "how long the response to a request with an Idempotency-Key is kept for its retries (at least 1m)")
	limitsFlags(fs, &c.Limits)
	httpsFlags(fs, &c.HTTPS, false)
	natsClientFlags(fs, &c.NATSClient)
	embeddedTLSFlags(fs, &c.NATSTLS)
	signedFlags(fs, &c.Signed)
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg app.ServeConfig
	return runDaemon(ctx, "serve", args, stderr, func(fs *flag.FlagSet) { serveFlags(fs, &cfg) }, func(logger *slog.Logger) daemon {
		return configErrorsAreUsage{&app.Server{Config: cfg, Logger: logger}}
	})
}

// configErrorsAreUsage reports a daemon's configuration errors as usage
// errors (exit code 2).
type configErrorsAreUsage struct{ daemon }

func (d configErrorsAreUsage) Open(ctx context.Context) error {
	return asUsageError(d.daemon.Open(ctx))
}

// asUsageError turns a configuration error into a usage error; other errors pass.
func asUsageError(err error) error {
	if errors.As(err, new(app.ConfigError)) {
		return usageError{err}
	}
	return err
}

// daemon is a long-running command: serve or validator.
type daemon interface {
	Open(ctx context.Context) error
	Close(ctx context.Context) error
}

// runDaemon parses a daemon's flags (environment, then command line) and
// the log flags, opens it, runs until ctx ends (SIGINT or SIGTERM), and
// shuts it down gracefully within 15 seconds.
func runDaemon(ctx context.Context, name string, args []string, stderr io.Writer, register func(*flag.FlagSet), build func(*slog.Logger) daemon) error {
	fs := newFlagSet(name)
	register(fs)
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return usageError{err}
	}
	d := build(logger)
	if err := d.Open(ctx); err != nil {
		d.Close(context.Background())
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return d.Close(sctx)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
