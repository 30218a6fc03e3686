package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/ledger"
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

// TestAudit_OIDCIdentities: audit replay --user shows the user's
// identity.linked event, without the address or the provider's subject;
// audit verify accepts the log and audit state shows the user.
func TestAudit_OIDCIdentities(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ts.Service().OIDCLogin(ctx, ledger.OIDCLogin{Issuer: "https://id.example.com", Subject: "sub-audit-93b1",
		Email: "audited@example.com"})
	if err != nil || !out.Created {
		t.Fatalf("OIDCLogin: got %+v, %v, want a new user", out, err)
	}
	id := out.User.ID
	var linked []audit.Record
	for _, r := range replay(t, ts, "--user", id) {
		if r.Type == domain.TypeIdentityLinked {
			linked = append(linked, r)
		}
	}
	if len(linked) != 1 || !strings.Contains(string(linked[0].Data), id) {
		t.Fatalf("audit replay --user %s: got %+v, want one identity.linked naming the user", id, linked)
	}
	all := mustAudit(t, ts, "replay")
	for _, s := range []string{"audited@example.com", "sub-audit-93b1"} {
		if strings.Contains(all, s) {
			t.Errorf("audit replay shows %q", s)
		}
	}
	if state := mustAudit(t, ts, "state", "--user", id); !strings.Contains(state, id) {
		t.Errorf("audit state --user: got %q, want the user", state)
	}
	mustAudit(t, ts, "verify", "--state-dir", t.TempDir())
}
