package app

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/oidc"
)

// OIDCConfig is serve's OpenID Connect login: Issuer, ClientID and
// ClientSecretFile all, or none of them.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document names it.
	Issuer   string
	ClientID string
	// ClientSecretFile holds the client secret (read once at start; it
	// should be readable by its owner only).
	ClientSecretFile string
	// AllowedDomains, if any, are the only email domains that may log in.
	AllowedDomains []string
	// RedirectURL is the callback registered at the provider (default:
	// <public URL>/oidc/callback, see SignUpConfig.PublicURL).
	RedirectURL string
}

func (c OIDCConfig) enabled() bool {
	return c.Issuer != "" || c.ClientID != "" || c.ClientSecretFile != ""
}

// oidcFlow builds the OpenID Connect flow of serve (nil without one).
// Login cookies and link tokens are sealed under a key derived from the
// ledger's signing key, which every instance shares, so any instance
// finishes a login another started.
func (c *ServeConfig) oidcFlow(ledgerKey ed25519.PrivateKey, registration ledger.Registration, logger *slog.Logger) (*oidc.Flow, error) {
	o := c.OIDC
	if !o.enabled() {
		if len(o.AllowedDomains) > 0 || o.RedirectURL != "" {
			return nil, ConfigError{errors.New("--oidc-allowed-domains and --oidc-redirect-url need --oidc-issuer, --oidc-client-id and --oidc-client-secret-file")}
		}
		return nil, nil
	}
	if o.Issuer == "" || o.ClientID == "" || o.ClientSecretFile == "" {
		return nil, ConfigError{errors.New("OpenID Connect needs all of --oidc-issuer, --oidc-client-id and --oidc-client-secret-file")}
	}
	fi, err := os.Stat(o.ClientSecretFile)
	if err != nil {
		return nil, ConfigError{fmt.Errorf("--oidc-client-secret-file: %w", err)}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("the OpenID Connect client secret file is readable by others than its owner: chmod 600 it",
			"file", o.ClientSecretFile, "mode", fi.Mode().Perm().String())
	}
	b, err := os.ReadFile(o.ClientSecretFile)
	if err != nil {
		return nil, ConfigError{fmt.Errorf("--oidc-client-secret-file: %w", err)}
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" || strings.ContainsAny(secret, "\r\n") {
		return nil, ConfigError{fmt.Errorf("--oidc-client-secret-file %s: want the secret alone on one line", o.ClientSecretFile)}
	}
	redirect := o.RedirectURL
	if redirect == "" {
		public := c.SignUp.PublicURL
		if public == "" {
			host, port, err := net.SplitHostPort(c.HTTPAddr)
			if ip := net.ParseIP(host); err != nil || host == "" || port == "0" || (ip != nil && ip.IsUnspecified()) {
				return nil, ConfigError{fmt.Errorf("--oidc-redirect-url or --public-url is required with --http-addr %q: "+
					"the provider sends browsers back to the address users reach the API at", c.HTTPAddr)}
			}
			scheme := "http"
			if c.HTTPS.enabled() {
				scheme = "https"
			}
			public = scheme + "://" + c.HTTPAddr
		}
		redirect = strings.TrimSuffix(public, "/") + "/oidc/callback"
	}
	key, err := hkdf.Key(sha256.New, ledgerKey.Seed(), nil, "keyledger/v1/oidc-cookie-key", oidc.KeySize)
	if err != nil {
		return nil, err
	}
	flow, err := oidc.New(oidc.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, RedirectURL: redirect,
		AllowedDomains: o.AllowedDomains, Key: key, Logger: logger.With("component", "oidc")})
	if err != nil {
		return nil, ConfigError{fmt.Errorf("OpenID Connect: %w", err)}
	}
	if registration == ledger.RegistrationInvite && len(o.AllowedDomains) == 0 {
		logger.Warn("registration is by invitation and no --oidc-allowed-domains is set: OpenID Connect logs in existing accounts only")
	}
	logger.Info("OpenID Connect login", "issuer", o.Issuer, "redirect_url", redirect, "allowed_domains", len(o.AllowedDomains))
	return flow, nil
}
