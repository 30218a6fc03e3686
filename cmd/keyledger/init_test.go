package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// TestInit writes a cluster's secrets, runs init again over them, and
// checks what it keeps, refuses and replaces.
func TestInit(t *testing.T) {
	out := filepath.Join(t.TempDir(), "secrets")
	routes := "--routes=nats-1:6222,nats-2:6222,nats-3:6222"
	initRun := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"init", "--out", out}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, output := initRun(routes); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, output)
	}
	want := []string{"nats/auth.conf", "nats/cluster.conf", "operator/operator.creds", "ledger/ledger.creds",
		"validator/validator.creds", "auditor/auditor.creds", "keys/account.nk", "keys/operator.nk", "keys/route-password"}
	snapshot := map[string][]byte{}
	for _, name := range want {
		p := filepath.Join(out, filepath.FromSlash(name))
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, st.Mode().Perm())
		}
		snapshot[name], _ = os.ReadFile(p)
	}
	err := filepath.WalkDir(out, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			if st, _ := e.Info(); st.Mode().Perm() != 0o700 {
				t.Errorf("directory %s: mode %v, want 0700", p, st.Mode().Perm())
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// nats-server reads both includes: an operator, a resolver, and routes
	// that carry the password the cluster requires.
	// (An include is relative to the including file.)
	conf := filepath.Join(out, "nats.conf")
	body := "include nats/auth.conf\ncluster {\n  name: x\n  listen: 127.0.0.1:-1\n  include nats/cluster.conf\n}\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(conf)
	o := &server.Options{}
	if err := o.ProcessConfigFile(conf); err != nil {
		t.Fatalf("nats-server rejects the includes: %v", err)
	}
	password := strings.TrimSpace(string(snapshot["keys/route-password"]))
	if len(o.TrustedOperators) != 1 || o.SystemAccount == "" || o.Cluster.Username != "route" || o.Cluster.Password != password {
		t.Fatalf("parsed: operators %d, system account %q, route user %q: want one operator, a system account, user route with the password",
			len(o.TrustedOperators), o.SystemAccount, o.Cluster.Username)
	}
	if len(o.Routes) != 3 || o.Routes[0].User.Username() != "route" {
		t.Fatalf("routes %v: want three, as user route", len(o.Routes))
	}
	if p, _ := o.Routes[2].User.Password(); p != password || o.Routes[2].Host != "nats-3:6222" {
		t.Fatalf("route to %s does not carry the route password", o.Routes[2].Host)
	}

	t.Run("AgainKeepsEverything", func(t *testing.T) {
		if code, output := initRun(routes); code != 0 || strings.Contains(output, "wrote") {
			t.Fatalf("init again: exit %d, want 0 and nothing written\n%s", code, output)
		}
		for name, data := range snapshot {
			if got, _ := os.ReadFile(filepath.Join(out, filepath.FromSlash(name))); name != "nats/auth.conf" && !bytes.Equal(got, data) {
				t.Errorf("%s changed", name)
			}
		}
	})
	t.Run("NoOverwriteWithoutForce", func(t *testing.T) {
		code, output := initRun("--routes=nats-1:6222,nats-2:6222")
		if code == 0 || !strings.Contains(output, "--force") {
			t.Fatalf("init with other routes: exit %d, want a failure naming --force\n%s", code, output)
		}
		if got, _ := os.ReadFile(filepath.Join(out, "nats", "cluster.conf")); !bytes.Equal(got, snapshot["nats/cluster.conf"]) {
			t.Fatal("cluster.conf replaced without --force")
		}
	})
	t.Run("RotateCredentials", func(t *testing.T) {
		if err := os.Remove(filepath.Join(out, "keys", "validator.creds")); err != nil {
			t.Fatal(err)
		}
		if code, output := initRun(routes); code == 0 {
			t.Fatalf("init after removing a key: exit 0, want a refusal without --force\n%s", output)
		}
		if code, output := initRun(routes, "--force"); code != 0 {
			t.Fatalf("init --force: exit %d\n%s", code, output)
		}
		got, _ := os.ReadFile(filepath.Join(out, "validator", "validator.creds"))
		if bytes.Equal(got, snapshot["validator/validator.creds"]) {
			t.Fatal("init --force kept the old validator credentials")
		}
		if got, _ := os.ReadFile(filepath.Join(out, "ledger", "ledger.creds")); !bytes.Equal(got, snapshot["ledger/ledger.creds"]) {
			t.Fatal("init --force changed the ledger credentials, which were not rotated")
		}
	})
}

// TestInit_UpgradesOutdatedCredentials: credentials an earlier version
// wrote without the admin nonce bucket are signed again for the same user
// with the permissions serve needs now; the copy in the role's directory
// is replaced with --force, like any output that changes.
func TestInit_UpgradesOutdatedCredentials(t *testing.T) {
	out := filepath.Join(t.TempDir(), "secrets")
	initRun := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"init", "--out", out}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, output := initRun(); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, output)
	}
	user := func(path string) *jwt.UserClaims {
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
	// What an earlier version wrote: the same user, no admin nonce bucket.
	kept := filepath.Join(out, "keys", "ledger.creds")
	b, _ := os.ReadFile(kept)
	ukp, err := jwt.ParseDecoratedUserNKey(b)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := os.ReadFile(filepath.Join(out, "keys", "account.nk"))
	accKP, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		t.Fatal(err)
	}
	old := user(kept)
	old.Permissions.Pub.Allow = slices.DeleteFunc(old.Permissions.Pub.Allow, func(s string) bool { return strings.Contains(s, "ADMIN_NONCES") })
	tok, err := old.Encode(accKP)
	if err != nil {
		t.Fatal(err)
	}
	useed, _ := ukp.Seed()
	earlier, err := jwt.FormatUserConfig(tok, useed)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{kept, filepath.Join(out, "ledger", "ledger.creds")} {
		if err := os.WriteFile(p, earlier, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if code, output := initRun(); code == 0 || !strings.Contains(output, "ledger.creds") || !strings.Contains(output, "--force") {
		t.Fatalf("init over outdated credentials: exit %d, want a refusal naming ledger.creds and --force\n%s", code, output)
	}
	if code, output := initRun("--force"); code != 0 {
		t.Fatalf("init --force: exit %d\n%s", code, output)
	}
	now := user(filepath.Join(out, "ledger", "ledger.creds"))
	if now.Subject != old.Subject || !slices.Contains(now.Permissions.Pub.Allow, "$KV.KEYLEDGER_ADMIN_NONCES.*") {
		t.Errorf("ledger.creds after init --force: user %s (want %s), may add admin nonces %v; want the same user, allowed",
			now.Subject, old.Subject, slices.Contains(now.Permissions.Pub.Allow, "$KV.KEYLEDGER_ADMIN_NONCES.*"))
	}
}
