package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/tlsconfig"
)

// HTTPSConfig is the HTTPS part of a command's configuration.
type HTTPSConfig struct {
	CertFile   string
	KeyFile    string
	SelfSigned bool
	ClientCA   string
}

func (c *HTTPSConfig) enabled() bool { return c.CertFile != "" || c.KeyFile != "" || c.SelfSigned }

// load builds the server TLS config, or nil for plain HTTP. The returned
// certificate must be stopped when the server closes.
func (c *HTTPSConfig) load(logger *slog.Logger) (*tls.Config, *tlsconfig.Certificate, error) {
	if !c.enabled() {
		if c.ClientCA != "" {
			return nil, nil, ConfigError{errors.New("--tls-client-ca needs HTTPS (--tls-cert and --tls-key, or --tls-self-signed)")}
		}
		return nil, nil, nil
	}
	var cert *tlsconfig.Certificate
	var err error
	switch {
	case c.SelfSigned && (c.CertFile != "" || c.KeyFile != ""):
		return nil, nil, ConfigError{errors.New("--tls-self-signed excludes --tls-cert and --tls-key")}
	case c.SelfSigned:
		if cert, err = tlsconfig.SelfSigned(); err != nil {
			return nil, nil, err
		}
		logger.Warn("serving HTTPS with a self-signed development certificate", "sha256_fingerprint", cert.Fingerprint())
	case c.CertFile == "" || c.KeyFile == "":
		return nil, nil, ConfigError{errors.New("--tls-cert and --tls-key go together")}
	default:
		if cert, err = tlsconfig.Load(c.CertFile, c.KeyFile, tlsconfig.WithLogger(logger)); err != nil {
			return nil, nil, err
		}
	}
	var opts []tlsconfig.ServerOption
	if c.ClientCA != "" {
		opts = append(opts, tlsconfig.WithClientCAFile(c.ClientCA))
	}
	tc, err := tlsconfig.Server(cert, opts...)
	if err != nil {
		cert.Stop()
		return nil, nil, err
	}
	return tc, cert, nil
}

// reloadOnHUP reloads cert on every SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, cert *tlsconfig.Certificate, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := cert.Reload(); err != nil {
				logger.Error("certificate reload failed; keeping the previous one", "err", err)
			} else {
				logger.Info("certificate reloaded", "sha256_fingerprint", cert.Fingerprint())
			}
		}
	}
}

// NATSClientConfig is how a command authenticates to NATS.
type NATSClientConfig struct {
	CA    string
	Cert  string
	Key   string
	Creds string
}

// Options returns the nats.Connect options for TLS and credentials.
func (c *NATSClientConfig) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if (c.Cert == "") != (c.Key == "") {
		return nil, ConfigError{errors.New("--nats-cert and --nats-key go together")}
	}
	if c.CA != "" || c.Cert != "" {
		var topts []tlsconfig.ClientOption
		if c.CA != "" {
			topts = append(topts, tlsconfig.WithRootCAFile(c.CA))
		}
		if c.Cert != "" {
			topts = append(topts, tlsconfig.WithClientCertFiles(c.Cert, c.Key))
		}
		tc, err := tlsconfig.Client(topts...)
		if err != nil {
			return nil, fmt.Errorf("NATS TLS: %w", err)
		}
		opts = append(opts, nats.Secure(tc))
	}
	if c.Creds != "" {
		if _, err := os.Stat(c.Creds); err != nil {
			return nil, fmt.Errorf("--nats-creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	return opts, nil
}

// EmbeddedTLSConfig makes the embedded NATS server listen with TLS.
type EmbeddedTLSConfig struct {
	CertFile string
	KeyFile  string
	ClientCA string
}

// apply sets the embedded server's TLS options; the returned certificate
// (nil without TLS) must be stopped when the server stops.
func (c *EmbeddedTLSConfig) apply(logger *slog.Logger) (func(*server.Options), *tlsconfig.Certificate, error) {
	if c.CertFile == "" && c.KeyFile == "" {
		if c.ClientCA != "" {
			return nil, nil, ConfigError{errors.New("--nats-tls-client-ca needs --nats-tls-cert and --nats-tls-key")}
		}
		return nil, nil, nil
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, nil, ConfigError{errors.New("--nats-tls-cert and --nats-tls-key go together")}
	}
	cert, err := tlsconfig.Load(c.CertFile, c.KeyFile, tlsconfig.WithLogger(logger))
	if err != nil {
		return nil, nil, err
	}
	var opts []tlsconfig.ServerOption
	if c.ClientCA != "" {
		opts = append(opts, tlsconfig.WithClientCAFile(c.ClientCA))
	}
	tc, err := tlsconfig.Server(cert, opts...)
	if err != nil {
		cert.Stop()
		return nil, nil, err
	}
	tc.NextProtos = nil // NATS speaks its own protocol, not HTTP
	return func(o *server.Options) {
		o.TLSConfig, o.TLSVerify, o.TLSTimeout = tc, c.ClientCA != "", 5
	}, cert, nil
}
