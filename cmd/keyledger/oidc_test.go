package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServe_OIDCFlags: a partial OpenID Connect configuration is a usage
// error at start, naming what is missing; the secret file's content never
// shows.
func TestServe_OIDCFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("very-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"issuer alone":  {[]string{"--oidc-issuer", "https://id.example.com"}, "all of --oidc-issuer, --oidc-client-id and --oidc-client-secret-file"},
		"domains alone": {[]string{"--oidc-allowed-domains", "example.com"}, "need --oidc-issuer"},
		"no redirect": {[]string{"--oidc-issuer", "https://id.example.com", "--oidc-client-id", "c", "--oidc-client-secret-file", secret,
			"--http-addr", "0.0.0.0:0", "--registration", "closed"}, "--oidc-redirect-url or --public-url"},
	} {
		args := append([]string{"serve", "--data-dir", filepath.Join(dir, strings.ReplaceAll(name, " ", "-")),
			"--nats-listen", "127.0.0.1:0", "--metrics-addr", "off"}, c.args...)
		code, _, stderr := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: got exit %d, %q, want 2 and %q", name, code, stderr, c.want)
		}
		if strings.Contains(stderr, "very-secret-value") {
			t.Errorf("%s: the client secret shows in %q", name, stderr)
		}
	}
}
