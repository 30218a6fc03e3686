package natsauth_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/natsauth"
)

// userOf reads the user JWT of a credentials file.
func userOf(t *testing.T, path string) *jwt.UserClaims {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	return uc
}

// TestPermissions_AdminNonces: the ledger may bind to the admin nonce
// bucket and add keys to it (one token), and nothing more; the readers may
// not touch it.
func TestPermissions_AdminNonces(t *testing.T) {
	l := natsauth.Permissions(natsauth.Ledger, "KEYLEDGER")
	for _, s := range []string{"$JS.API.STREAM.INFO.KV_KEYLEDGER_ADMIN_NONCES", "$KV.KEYLEDGER_ADMIN_NONCES.*"} {
		if !slices.ContainsFunc(l.Pub.Allow, func(pattern string) bool { return subjectMatches(pattern, s) }) {
			t.Errorf("ledger: %s not allowed", s)
		}
	}
	// The ledger reads every stream but this one.
	for _, s := range []string{"$JS.API.DIRECT.GET.KV_KEYLEDGER_ADMIN_NONCES", "$JS.API.DIRECT.GET.KV_KEYLEDGER_ADMIN_NONCES.$KV.KEYLEDGER_ADMIN_NONCES.x",
		"$JS.API.STREAM.MSG.GET.KV_KEYLEDGER_ADMIN_NONCES"} {
		if !slices.ContainsFunc(l.Pub.Deny, func(pattern string) bool { return subjectMatches(pattern, s) }) {
			t.Errorf("ledger: %s not denied", s)
		}
	}
	for _, s := range l.Pub.Allow {
		if s == "$KV.KEYLEDGER_ADMIN_NONCES.>" || s == "$JS.API.DIRECT.GET.KV_KEYLEDGER_ADMIN_NONCES" ||
			s == "$JS.API.CONSUMER.CREATE.KV_KEYLEDGER_ADMIN_NONCES" {
			t.Errorf("ledger: %s allowed, want only INFO and adding keys", s)
		}
	}
	for _, r := range []natsauth.Role{natsauth.Validator, natsauth.Auditor} {
		p := natsauth.Permissions(r, "KEYLEDGER")
		for _, s := range []string{"$KV.KEYLEDGER_ADMIN_NONCES.x", "$JS.API.STREAM.INFO.KV_KEYLEDGER_ADMIN_NONCES",
			"$JS.API.DIRECT.GET.KV_KEYLEDGER_ADMIN_NONCES.$KV.KEYLEDGER_ADMIN_NONCES.x", "$JS.API.STREAM.MSG.GET.KV_KEYLEDGER_ADMIN_NONCES",
			"$JS.API.CONSUMER.CREATE.KV_KEYLEDGER_ADMIN_NONCES.c.$KV.KEYLEDGER_ADMIN_NONCES.>"} {
			if !slices.ContainsFunc(p.Pub.Deny, func(pattern string) bool { return subjectMatches(pattern, s) }) {
				t.Errorf("%s: %s not denied", r, s)
			}
		}
	}
}

// subjectMatches reports whether a NATS subject pattern (with the * and >
// wildcards) covers subject.
func subjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// TestOpen_ReissuesOutdatedCredentials: a role's credentials written with
// an earlier version's permissions are signed again, for the same user,
// with the role's permissions now; up-to-date ones are kept byte for byte.
func TestOpen_ReissuesOutdatedCredentials(t *testing.T) {
	dir := t.TempDir()
	a, err := natsauth.Open(dir, "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	ledgerFile, auditorFile := a.CredsFile(natsauth.Ledger), a.CredsFile(natsauth.Auditor)
	auditor, err := os.ReadFile(auditorFile)
	if err != nil {
		t.Fatal(err)
	}
	// An earlier ledger.creds: the same user, without the admin nonce
	// bucket.
	b, err := os.ReadFile(ledgerFile)
	if err != nil {
		t.Fatal(err)
	}
	ukp, err := jwt.ParseDecoratedUserNKey(b)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := os.ReadFile(filepath.Join(dir, "account.nk"))
	accKP, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		t.Fatal(err)
	}
	old := userOf(t, ledgerFile)
	old.Permissions.Pub.Allow = slices.DeleteFunc(old.Permissions.Pub.Allow, func(s string) bool {
		return bytes.Contains([]byte(s), []byte("ADMIN_NONCES"))
	})
	tok, err := old.Encode(accKP)
	if err != nil {
		t.Fatal(err)
	}
	useed, _ := ukp.Seed()
	earlier, err := jwt.FormatUserConfig(tok, useed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ledgerFile, earlier, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := natsauth.Open(dir, "KEYLEDGER"); err != nil {
		t.Fatal(err)
	}
	now := userOf(t, ledgerFile)
	if now.Subject != old.Subject {
		t.Errorf("user %s, want the same user %s", now.Subject, old.Subject)
	}
	if !slices.Contains(now.Permissions.Pub.Allow, "$KV.KEYLEDGER_ADMIN_NONCES.*") {
		t.Errorf("re-issued ledger credentials still lack the admin nonce bucket: %v", now.Permissions.Pub.Allow)
	}
	if st, err := os.Stat(ledgerFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ledger.creds: %v, mode %v, want 0600", err, st.Mode().Perm())
	}
	if got, _ := os.ReadFile(auditorFile); !bytes.Equal(got, auditor) {
		t.Errorf("auditor.creds changed, want kept as it was")
	}
}

// TestCredentials_FitTheControlLine: every role connects to a server that
// requires credentials, also for a long stream name. A user JWT travels in
// the CONNECT line, which the server caps at 4 KiB: permissions that grow
// past it lock the role out ("maximum control line exceeded").
func TestCredentials_FitTheControlLine(t *testing.T) {
	t.Parallel()
	for _, stream := range []string{"KEYLEDGER", "KEYLEDGER_PRODUCTION_EU_WEST_0001"} {
		a, err := natsauth.Open(t.TempDir(), stream)
		if err != nil {
			t.Fatal(err)
		}
		s, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Auth: a.Configure})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range natsauth.Roles {
			nc, err := nats.Connect(s.ClientURL(), nats.UserCredentials(a.CredsFile(r)), nats.MaxReconnects(0))
			if err != nil {
				t.Errorf("stream %s, role %s: connect: %v", stream, r, err)
				continue
			}
			nc.Close()
		}
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// TestPermissions_LimitsBucket: the validator and the ledger may bind to
// the limits bucket, get and write its keys, and nothing more on it (no
// purge, no message delete, no consumers); the auditor may not touch it.
func TestPermissions_LimitsBucket(t *testing.T) {
	allowed := func(p jwt.Permissions, s string) bool {
		match := func(pattern string) bool { return subjectMatches(pattern, s) }
		return slices.ContainsFunc(p.Pub.Allow, match) && !slices.ContainsFunc(p.Pub.Deny, match)
	}
	use := []string{"$JS.API.STREAM.INFO.KV_KEYLEDGER_LIMITS", "$JS.API.DIRECT.GET.KV_KEYLEDGER_LIMITS.$KV.KEYLEDGER_LIMITS.cr.ak_1",
		"$KV.KEYLEDGER_LIMITS.cr.ak_1", "$KV.KEYLEDGER_LIMITS.rl.ak_1.60.1"}
	never := []string{"$JS.API.STREAM.PURGE.KV_KEYLEDGER_LIMITS", "$JS.API.STREAM.MSG.DELETE.KV_KEYLEDGER_LIMITS",
		"$JS.API.STREAM.UPDATE.KV_KEYLEDGER_LIMITS", "$JS.API.STREAM.DELETE.KV_KEYLEDGER_LIMITS",
		"$JS.API.CONSUMER.CREATE.KV_KEYLEDGER_LIMITS.c.$KV.KEYLEDGER_LIMITS.>"}
	for _, r := range []natsauth.Role{natsauth.Validator, natsauth.Ledger, natsauth.Auditor} {
		p := natsauth.Permissions(r, "KEYLEDGER")
		for _, s := range use {
			if got, want := allowed(p, s), r != natsauth.Auditor; got != want {
				t.Errorf("%s: %s allowed %v, want %v", r, s, got, want)
			}
		}
		for _, s := range never {
			if allowed(p, s) {
				t.Errorf("%s: %s allowed, want denied", r, s)
			}
		}
	}
}
