package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
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
