package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/mail"
)

// SignUpConfig is who may register with serve and how sign-up mail goes
// out.
type SignUpConfig struct {
	// Registration is open, verified, invite or closed. Empty: open while
	// the API listens on loopback only and no reverse proxy is trusted
	// (nobody else can reach it), else verified, which needs SMTPURL:
	// serve refuses to start with an API reachable from the network and
	// nothing deciding who may sign up.
	Registration string
	// SMTPURL is the mail server: smtp://[user:password@]host[:port]
	// (STARTTLS required unless host is loopback) or smtps://...
	SMTPURL string
	// SMTPFrom is the sender address of sign-up mail.
	SMTPFrom string
	// SMTPCA, if set, is a PEM file of the CAs that may sign the mail
	// server's certificate (default: the system's).
	SMTPCA string
	// PublicURL is where users reach the API (or its sign-up pages): the
	// verification link is <PublicURL>/verify?token=... Default:
	// http(s)://<HTTPAddr>, unless that is a wildcard address.
	PublicURL string
}

// signUp resolves the registration mode and, with SMTPURL, starts the
// mail outbox (the caller closes it).
func (c *ServeConfig) signUp(logger *slog.Logger) (ledger.Registration, *mail.Outbox, *mail.Notifier, error) {
	su := c.SignUp
	mode := ledger.Registration(su.Registration)
	why := "chosen with --registration"
	if mode == "" {
		// A loopback listener behind a reverse proxy (--trusted-proxy)
		// is reachable from the network all the same.
		switch {
		case !loopbackAddr(c.HTTPAddr):
			mode, why = ledger.RegistrationVerified, fmt.Sprintf("the default, as --http-addr %q is not loopback only", c.HTTPAddr)
		case len(c.Limits.TrustedProxies) > 0:
			mode, why = ledger.RegistrationVerified, "the default behind a --trusted-proxy, which makes a loopback listener reachable from the network"
		default:
			mode = ledger.RegistrationOpen
		}
	}
	if _, err := ledger.ParseRegistration(string(mode)); err != nil {
		return "", nil, nil, ConfigError{fmt.Errorf("--registration: %s", err)}
	}
	if su.SMTPURL == "" {
		if mode == ledger.RegistrationVerified {
			return "", nil, nil, ConfigError{fmt.Errorf("--registration verified (%s) "+
				"mails a link to each new account and needs --smtp-url and --smtp-from; or choose --registration invite, closed or open", why)}
		}
		return mode, nil, nil, nil
	}
	var opts []mail.Option
	if su.SMTPCA != "" {
		pem, err := os.ReadFile(su.SMTPCA)
		if err != nil {
			return "", nil, nil, ConfigError{fmt.Errorf("--smtp-ca: %w", err)}
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return "", nil, nil, ConfigError{fmt.Errorf("--smtp-ca %s: no PEM certificate", su.SMTPCA)}
		}
		opts = append(opts, mail.WithTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	}
	sender, err := mail.New(su.SMTPURL, su.SMTPFrom, opts...)
	if err != nil {
		return "", nil, nil, ConfigError{fmt.Errorf("--smtp-url, --smtp-from: %w", err)}
	}
	public := su.PublicURL
	if public == "" {
		host, _, err := net.SplitHostPort(c.HTTPAddr)
		if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
			return "", nil, nil, ConfigError{fmt.Errorf("--public-url is required with --http-addr %q: "+
				"the links mailed to users need the address they reach the API at", c.HTTPAddr)}
		}
		scheme := "http"
		if c.HTTPS.enabled() {
			scheme = "https"
		}
		public = scheme + "://" + c.HTTPAddr
	}
	outbox, err := mail.NewOutbox(sender, mail.OutboxConfig{Logger: logger.With("component", "mail")})
	if err != nil {
		return "", nil, nil, err
	}
	notifier, err := mail.NewNotifier(outbox, public)
	if err != nil {
		outbox.Close(context.Background())
		return "", nil, nil, ConfigError{fmt.Errorf("--public-url: %w", err)}
	}
	return mode, outbox, notifier, nil
}

// loopbackAddr reports whether a listen address is on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mailerOf is n as a ledger.Mailer: nil (no mailer) when n is nil.
func mailerOf(n *mail.Notifier) ledger.Mailer {
	if n == nil {
		return nil
	}
	return n
}
