// Package tlsconfig builds the TLS configurations of keyledger's processes:
// HTTPS servers (TLS 1.2 minimum, TLS 1.3 preferred, Mozilla's
// "intermediate" cipher suites for TLS 1.2, a certificate that is reloaded
// when its files change, optional client-certificate authentication) and
// clients of NATS (a CA bundle and, for mutual TLS, a client certificate).
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Source supplies the certificate of each TLS handshake. *Certificate is
// one.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

var _ Source = (*Certificate)(nil)

// CipherSuites returns the TLS 1.2 cipher suites keyledger allows: the
// ECDHE key exchanges with AEAD ciphers of Mozilla's "intermediate"
// profile (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305). TLS 1.3 suites are
// not configurable in Go and are all AEAD.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// ServerOption configures Server.
type ServerOption func(*tls.Config) error

// WithClientCAFile requires every client to present a certificate that
// chains to one of the PEM CA certificates in path
// (tls.RequireAndVerifyClientCert).
func WithClientCAFile(path string) ServerOption {
	return func(c *tls.Config) error {
		pool, err := readPool(path)
		if err != nil {
			return fmt.Errorf("client CA: %w", err)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
		return nil
	}
}

// WithClientCAs is WithClientCAFile with a pool already loaded.
func WithClientCAs(pool *x509.CertPool) ServerOption {
	return func(c *tls.Config) error {
		if pool == nil {
			return errors.New("client CA: nil pool")
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
		return nil
	}
}

// Server returns the TLS configuration of an HTTPS (or NATS) server that
// presents src's current certificate in every handshake: TLS 1.2 at least,
// TLS 1.3 whenever the client offers it, the CipherSuites for TLS 1.2, and
// ALPN for HTTP/2 and HTTP/1.1. Use it as http.Server.TLSConfig with
// ServeTLS(ln, "", ""), or with tls.NewListener; do not add Certificates,
// which would take precedence over src for clients that send no SNI.
func Server(src Source, opts ...ServerOption) (*tls.Config, error) {
	if src == nil {
		return nil, errors.New("server TLS config: nil certificate source")
	}
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   CipherSuites(),
		GetCertificate: src.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("server TLS config: %w", err)
		}
	}
	return c, nil
}

// ClientOption configures Client.
type ClientOption func(*tls.Config) error

// WithRootCAFile trusts only the PEM CA certificates in path to sign the
// server's certificate (instead of the system's roots).
func WithRootCAFile(path string) ClientOption {
	return func(c *tls.Config) error {
		pool, err := readPool(path)
		if err != nil {
			return fmt.Errorf("root CA: %w", err)
		}
		c.RootCAs = pool
		return nil
	}
}

// WithClientCertFiles presents the PEM certificate chain in certFile and
// its key in keyFile when the server asks for one (mutual TLS). They are
// read once, by Client.
func WithClientCertFiles(certFile, keyFile string) ClientOption {
	return func(c *tls.Config) error {
		if certFile == "" || keyFile == "" {
			return errors.New("client certificate: need both a certificate file and a key file")
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("client certificate %s with key %s: %w", certFile, keyFile, err)
		}
		c.Certificates = []tls.Certificate{pair}
		return nil
	}
}

// WithServerName sets the name the server's certificate must match when it
// differs from the host being dialled.
func WithServerName(name string) ClientOption {
	return func(c *tls.Config) error {
		if name == "" {
			return errors.New("empty server name")
		}
		c.ServerName = name
		return nil
	}
}

// Client returns the TLS configuration of a client, such as a NATS
// connection (nats.Secure(cfg)): TLS 1.2 at least and the CipherSuites for
// TLS 1.2, the system's roots unless WithRootCAFile, and no client
// certificate unless WithClientCertFiles.
func Client(opts ...ClientOption) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: CipherSuites()}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("client TLS config: %w", err)
		}
	}
	return c, nil
}

// readPool reads a bundle of PEM certificates.
func readPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, errors.New("no file given")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return pool, nil
}
