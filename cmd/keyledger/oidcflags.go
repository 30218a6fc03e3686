package main

import (
	"flag"

	"github.com/keyledger/keyledger/internal/app"
)

// oidcFlags registers serve's OpenID Connect flags, which set c.
func oidcFlags(fs *flag.FlagSet, c *app.OIDCConfig) {
	fs.StringVar(&c.Issuer, "oidc-issuer", "", "OpenID provider's issuer `URL`, exactly as its discovery document names it, for logins through GET /oidc/login (with --oidc-client-id and --oidc-client-secret-file; default: none)")
	fs.StringVar(&c.ClientID, "oidc-client-id", "", "keyledger's client `id` at the OpenID provider")
	fs.StringVar(&c.ClientSecretFile, "oidc-client-secret-file", "", "`file` holding keyledger's client secret at the OpenID provider (mode 0600; read once at start)")
	fs.Var((*listFlag)(&c.AllowedDomains), "oidc-allowed-domains", "email `domains` that may log in through the OpenID provider, comma-separated or repeated (exact match; default: any); with --registration invite, the domains whose first login creates an account")
	fs.StringVar(&c.RedirectURL, "oidc-redirect-url", "", "the callback `URL` registered at the OpenID provider (default <public-url>/oidc/callback)")
}
