package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestCompose_RegistrationNotOpen: the compose stack's API listens on every
// interface of its network, so it must not let anyone who reaches it
// register: invitations, or proven addresses with a mail server.
func TestCompose_RegistrationNotOpen(t *testing.T) {
	t.Parallel()
	cfg := loadDeployment(t).ledger.serve
	switch mode := cfg.SignUp.Registration; mode {
	case "invite", "closed":
	case "verified":
		if cfg.SignUp.SMTPURL == "" {
			t.Errorf("compose: --registration verified without --smtp-url: serve would not start")
		}
	default:
		t.Errorf("compose: serve on %s with --registration %q: anyone who reaches it may register", cfg.HTTPAddr, mode)
	}
}

// TestAdmin_InvitationsCreate: the CLI issues an invitation that lets one
// registration in.
func TestAdmin_InvitationsCreate(t *testing.T) {
	t.Parallel()
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) { c.SignUp.Registration = "invite" })
	defer ts.Stop(t)
	args := []string{"invitations", "create", "--email", "Nina@Example.com", "--expires-in", "2h"}
	code, stdout, stderr := adminCLI(t, ts, args...)
	wantExit(t, args, code, stdout, stderr, 0)
	token := strings.TrimSpace(stdout)
	if !strings.HasPrefix(token, "inv_") || !strings.Contains(stderr, "shown only now") {
		t.Fatalf("got stdout %q, stderr %q, want the token alone on stdout", stdout, stderr)
	}
	register := func(email string) int {
		return ts.Do(t, "POST", "/users", fmt.Sprintf(`{"email":%q,"password":%q,"invitation":%q}`, email, apptest.Password, token)).Status
	}
	if got := register("mallory@example.com"); got != http.StatusForbidden {
		t.Errorf("another address: got %d, want 403", got)
	}
	if got := register("nina@example.com"); got != http.StatusCreated {
		t.Errorf("the invited address: got %d, want 201", got)
	}
	args = []string{"invitations", "create", "--expires-in", "9999h"}
	code, stdout, stderr = adminCLI(t, ts, args...)
	wantExit(t, args, code, stdout, stderr, 1)
	// The invitation events chain and verify like every other aggregate's,
	// and replay shows the registration.
	if out := mustAudit(t, ts, "verify", "--state-dir", ""); !strings.Contains(out, "OK: the log is intact") {
		t.Errorf("audit verify: got %q, want OK", out)
	}
	if out := mustAudit(t, ts, "replay", "--type", "invitation.used"); !strings.Contains(out, "invitation.used") {
		t.Errorf("audit replay --type invitation.used: got %q, want the use", out)
	}
}
