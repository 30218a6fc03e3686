// Package embedded runs a nats-server with JetStream inside the process, for
// `keyledger serve` on its defaults and for tests.
package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config describes an embedded server. The zero Config listens on a random
// loopback port with JetStream in a temporary directory chosen by the server.
type Config struct {
	// Listen is the client address, host:port; port 0 or -1 picks a free one.
	Listen string
	// StoreDir is JetStream's storage directory.
	StoreDir string
	// ServerName names the server (required in a cluster).
	ServerName string
	// Logger receives the server's notices, warnings and errors; nil: none.
	Logger *slog.Logger
	// Auth, when set, configures the server's authentication before
	// Options runs (see internal/natsauth).
	Auth func(*server.Options) error
	// Options, when set, adjusts the server options before start (clusters,
	// TLS, limits).
	Options func(*server.Options)
}

// Start starts the server and waits until it accepts clients.
func Start(cfg Config) (*server.Server, error) {
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		ServerName: cfg.ServerName,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < -1 || p > 65535 {
			return nil, fmt.Errorf("nats listen %q: bad port", cfg.Listen)
		}
		if p == 0 {
			p = -1
		}
		opts.Host, opts.Port = host, p
	}
	if cfg.Auth != nil {
		if err := cfg.Auth(opts); err != nil {
			return nil, fmt.Errorf("nats server authentication: %w", err)
		}
	}
	if cfg.Options != nil {
		cfg.Options(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if cfg.Logger != nil {
		s.SetLoggerV2(logger{cfg.Logger}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, errors.New("nats server did not become ready within 15s (port in use?)")
	}
	return s, nil
}

// logger adapts slog to nats-server's logger interface.
type logger struct{ l *slog.Logger }

func (l logger) Noticef(format string, v ...any) { l.l.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Warnf(format string, v ...any)   { l.l.Warn(fmt.Sprintf(format, v...)) }
func (l logger) Fatalf(format string, v ...any)  { l.l.Error(fmt.Sprintf(format, v...)) }
func (l logger) Errorf(format string, v ...any)  { l.l.Error(fmt.Sprintf(format, v...)) }
func (l logger) Debugf(format string, v ...any)  { l.l.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Tracef(format string, v ...any)  { l.l.Debug(fmt.Sprintf(format, v...)) }
