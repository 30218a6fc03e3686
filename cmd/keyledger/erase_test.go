package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestAdmin_UsersErase: `admin users erase` erases a user and prints the
// keys it revoked; afterwards `audit replay` and `audit state` (with the
// auditor's credentials) show the user erased and no email anywhere, and
// `audit verify` still passes.
func TestAdmin_UsersErase(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	const email = "dana.deleted@example.com"
	dana := ts.Register(t, email, apptest.Password)
	k := ts.CreateKey(t, ts.Login(t, email, apptest.Password), "")

	code, stdout, stderr := adminCLI(t, ts, "users", "erase", dana)
	wantExit(t, []string{"admin", "users", "erase", dana}, code, stdout, stderr, 2)
	wantContains(t, "erase without --reason", stderr, "--reason is required")

	out := mustAdmin(t, ts, "users", "erase", dana, "--reason", "erasure request 12")
	if want := "revoked " + k.Key + "\n1 keys revoked\nerased " + dana + "\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	ts.CaughtUp(t)
	if got := ts.Validate(t, k); got != http.StatusUnauthorized {
		t.Errorf("the erased user's key: got %d, want 401", got)
	}
	code, stdout, stderr = adminCLI(t, ts, "users", "erase", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "--reason", "r")
	wantExit(t, []string{"admin", "users", "erase", "unknown"}, code, stdout, stderr, 1)

	m := stateJSON(t, ts, "--user", dana)
	if m["erased"] != true || m["disabled"] != true || m["email"] != "" {
		t.Errorf("audit state: got %v, want erased, disabled, no email", m)
	}
	recs := replay(t, ts, "--user", dana)
	if len(recs) == 0 || recs[len(recs)-1].Type != "key.revoked" {
		t.Fatalf("audit replay --user: got %+v, want the user's events ending with the keys' revocation", recs)
	}
	erased := false
	for _, r := range recs {
		if strings.Contains(string(r.Data), email) || strings.Contains(string(r.Data), "dana.deleted") {
			t.Errorf("audit replay: record %d holds the email: %s", r.Seq, r.Data)
		}
		if r.Type == "user.erased" && strings.Contains(string(r.Data), "erasure request 12") && r.Actor == "admin:root" {
			erased = true
		}
	}
	if !erased {
		t.Errorf("audit replay: got %+v, want a user.erased by admin:root with the reason", recs)
	}
	wantContains(t, "verify", mustAudit(t, ts, "verify"), "OK: the log is intact")
}
