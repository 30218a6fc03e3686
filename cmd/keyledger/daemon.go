package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/internal/app"
)

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

// discardLogger is the logger of commands whose logs nobody reads.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
