package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testkeys"
)

// runCLI runs `keyledger args...` in-process with an empty standard input
// and returns the exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// commandPaths lists every command of the tree, groups first, from the
// root ("") down.
func commandPaths() (groupPaths, leafPaths []string) {
	var walk func(path string)
	walk = func(path string) {
		subs, ok := groups[path]
		if !ok {
			leafPaths = append(leafPaths, path)
			return
		}
		groupPaths = append(groupPaths, path)
		for _, s := range subs {
			walk(joinPath(path, s))
		}
	}
	walk("")
	return groupPaths, leafPaths
}

func words(path string) []string { return strings.Fields(path) }

func TestCLI_EveryCommandIsDocumented(t *testing.T) {
	t.Parallel()
	groupPaths, leafPaths := commandPaths()
	all := append(groupPaths, leafPaths...)
	for _, want := range []string{"serve", "validator", "init", "cert csr", "cert selfsigned", "audit verify", "audit replay",
		"audit state", "audit pubkey", "audit trust-root", "admin keys list", "admin keys revoke", "admin users list", "admin users create",
		"admin users disable", "admin users enable", "admin users revoke-keys", "admin ledger-keys list", "admin ledger-keys add",
		"admin ledger-keys retire", "healthcheck", "sign", "bench", "version", "help"} {
		if !slices.Contains(leafPaths, want) {
			t.Errorf("command %q: not in the tree", want)
		}
	}
	for _, path := range all {
		d, ok := docs[path]
		if !ok || d.purpose == "" || d.usage == "" || d.example == "" {
			t.Errorf("command %q: got doc %+v, want a purpose, a usage and an example", path, d)
		}
		if _, isGroup := groups[path]; !isGroup && leafCommand(path) == nil {
			t.Errorf("command %q: nothing runs it", path)
		}
	}
	for path := range docs {
		if !slices.Contains(all, path) {
			t.Errorf("docs[%q]: no such command", path)
		}
	}
}

func TestCLI_Help(t *testing.T) {
	groupPaths, leafPaths := commandPaths()
	for _, path := range append(groupPaths, leafPaths...) {
		d := docs[path]
		firstExample, _, _ := strings.Cut(d.example, "\n")
		for _, args := range [][]string{
			append(words(path), "--help"),
			append(words(path), "-h"),
			append(words(path), "-help"),
			append([]string{"help"}, words(path)...),
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, stdout, stderr := runCLI(t, args...)
				if code != 0 {
					t.Fatalf("got exit %d, want 0\nstdout: %s\nstderr: %s", code, stdout, stderr)
				}
				if stderr != "" {
					t.Errorf("stderr: got %q, want nothing (help goes to stdout)", stderr)
				}
				for _, want := range []string{commandName(path) + ": " + d.purpose, "Usage: " + commandName(path),
					"Example:\n  " + firstExample} {
					if !strings.Contains(stdout, want) {
						t.Errorf("got\n%s\nwant it to contain %q", stdout, want)
					}
				}
				if _, isGroup := groups[path]; isGroup {
					for _, sub := range groups[path] {
						if !strings.Contains(stdout, "  "+sub+" ") {
							t.Errorf("got\n%s\nwant subcommand %q listed", stdout, sub)
						}
					}
				}
			})
		}
	}
	t.Run("FlagsAndEnvironment", func(t *testing.T) {
		_, stdout, _ := runCLI(t, "admin", "keys", "revoke", "--help")
		for _, want := range []string{"Flags:\n", "-reason string", "-url string",
			"KEYLEDGER_CA"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("got\n%s\nwant it to contain %q", stdout, want)
			}
		}
	})
	t.Run("CommandLineOnlyDocumented", func(t *testing.T) {
		for _, c := range []struct{ args []string }{
			{[]string{"cert", "csr", "--help"}},
			{[]string{"admin", "users", "create", "--help"}},
			{[]string{"audit", "pubkey", "--help"}},
		} {
			_, stdout, _ := runCLI(t, c.args...)
			if !strings.Contains(stdout, "Only the command line sets --") {
				t.Errorf("%v: got\n%s\nwant the command-line-only flag named", c.args, stdout)
			}
		}
	})
	t.Run("Version", func(t *testing.T) {
		for _, args := range [][]string{{"--help"}, {"help"}, {}} {
			var out bytes.Buffer
			run(context.Background(), args, &out, &out)
			if !strings.Contains(out.String(), "  version ") {
				t.Errorf("keyledger %v: got\n%s\nwant version listed", args, out.String())
			}
		}
	})
	t.Run("BadEnvironmentStillHelps", func(t *testing.T) {
		t.Setenv("KEYLEDGER_REPLICAS", "three")
		if code, _, stderr := runCLI(t, "serve", "--help"); code != 0 {
			t.Errorf("got exit %d, %q, want 0", code, stderr)
		}
	})
}

// flagLine is a flag as PrintDefaults shows it: "  -name argname".
var flagLine = regexp.MustCompile(`(?m)^  -([a-zA-Z][a-z0-9-]*)(?: (\S+))?$`)

func TestCLI_FlagArgumentNames(t *testing.T) {
	t.Parallel()
	_, leafPaths := commandPaths()
	seen := 0
	for _, path := range leafPaths {
		_, stdout, _ := runCLI(t, append(words(path), "--help")...)
		for _, m := range flagLine.FindAllStringSubmatch(stdout, -1) {
			seen++
			if arg := m[2]; arg == "value" || strings.Contains(arg, "`") || arg == "keyledger" {
				t.Errorf("%s --help: flag -%s shows argument %q, want a meaningful name", path, m[1], arg)
			}
		}
	}
	if seen < 100 {
		t.Fatalf("saw %d flags in all help texts, want the flags of every command", seen)
	}
	_, stdout, _ := runCLI(t, "validator", "--help")
	if !strings.Contains(stdout, "  -ledger-key keys\n") {
		t.Errorf("validator --help: got\n%s\nwant -ledger-key keys", stdout)
	}
}

func TestCLI_UsageErrors(t *testing.T) {
	t.Parallel()
	groupPaths, leafPaths := commandPaths()
	hint := func(path string) string { return "Run '" + commandName(path) + " --help' for usage.\n" }
	for _, path := range groupPaths {
		t.Run("Unknown "+path, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(words(path), "frobnicate")...)
			if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) || !strings.HasSuffix(stderr, hint(path)) {
				t.Errorf("got exit %d, stderr %q, want 2, the error and %q", code, stderr, hint(path))
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
		})
		t.Run("Missing "+path, func(t *testing.T) {
			code, _, stderr := runCLI(t, words(path)...)
			if code != 2 || !strings.Contains(stderr, "missing command") || !strings.HasSuffix(stderr, hint(path)) {
				t.Errorf("got exit %d, stderr %q, want 2, the error and %q", code, stderr, hint(path))
			}
			for _, sub := range groups[path] {
				if !strings.Contains(stderr, "  "+sub+" ") {
					t.Errorf("stderr: got %q, want subcommand %q listed", stderr, sub)
				}
			}
		})
	}
	for _, path := range leafPaths {
		t.Run("UnknownFlag "+path, func(t *testing.T) {
			code, _, stderr := runCLI(t, append(words(path), "--no-such-flag")...)
			if code != 2 || !strings.Contains(stderr, "no-such-flag") || !strings.HasSuffix(stderr, hint(path)) {
				t.Errorf("got exit %d, stderr %q, want 2, the error and %q", code, stderr, hint(path))
			}
		})
	}
	for _, c := range []struct {
		args []string
		want string
		hint string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`, ""},
		{[]string{"admin", "users", "--help", "extra"}, "no command", "admin users"},
		{[]string{"help", "admin", "groups"}, `no command "keyledger admin groups"`, "help"},
		{[]string{"version", "extra"}, "unexpected arguments", "version"},
		{[]string{"audit", "replay", "--from-seq", "minus-one"}, "invalid value", "audit replay"},
		{[]string{"admin", "keys", "revoke", "--reason", "r"}, "missing api key", "admin keys revoke"},
		{[]string{"sign", "--key", "ak_x", "https://a.example/", "https://b.example/"}, "exactly one URL", "sign"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := runCLI(t, c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) || !strings.HasSuffix(stderr, hint(c.hint)) {
				t.Errorf("got exit %d, stderr %q, want 2, %q and %q", code, stderr, c.want, hint(c.hint))
			}
		})
	}
}

func TestCLI_Version(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || !regexp.MustCompile(`(?m)^keyledger \S+\nmodule: +\S+\nrevision: \S+`).MatchString(stdout) ||
			!strings.Contains(stdout, "go:       go1.") {
			t.Errorf("keyledger %v: got exit %d, %q, %q, want the version, module, revision and Go version", args, code, stdout, stderr)
		}
	}
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		want []string
	}{
		{"NoBuildInfo", nil, []string{"keyledger (devel)\n", "revision: unknown\n"}},
		{"NoVCS", &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Path: "github.com/keyledger/keyledger", Version: "(devel)"}},
			[]string{"keyledger (devel)\n", "revision: unknown\n", "go:       go1.99 "}},
		{"Modified", &debug.BuildInfo{Main: debug.Module{Path: "github.com/keyledger/keyledger", Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"},
				{Key: "vcs.time", Value: "2026-11-20T12:00:00Z"}}},
			[]string{"keyledger v1.4.0\n", "revision: 0123abcd (modified)\n", "commit:   2026-11-20T12:00:00Z\n"}},
		{"Clean", &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "false"}}},
			[]string{"revision: 0123abcd\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := versionText(c.bi)
			for _, want := range c.want {
				if !strings.Contains(got, want) {
					t.Errorf("got %q, want it to contain %q", got, want)
				}
			}
		})
	}
}

// TestCLI_Environment: KEYLEDGER_* variables set the flags of audit and
// admin (no more --nats-url on every command), the command line wins, a
// bad value is a usage error naming the variable, and the booleans only
// the command line sets ignore the environment.
func TestCLI_Environment(t *testing.T) {
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := eventstore.New(ctx, nc, eventstore.WithStream("ENVTEST"), eventstore.WithSigningKey(testkeys.Ledger())); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "nats://" + ln.Addr().String() // closed: nothing listens
	ln.Close()

	t.Run("AuditFromEnvironment", func(t *testing.T) {
		t.Setenv("KEYLEDGER_NATS_URL", ns.ClientURL())
		t.Setenv("KEYLEDGER_STREAM", "ENVTEST")
		code, stdout, stderr := runCLI(t, "audit", "verify")
		if code != 0 || !strings.Contains(stdout, "OK: the log is intact") {
			t.Fatalf("got exit %d, %q, %q, want 0 and the log intact", code, stdout, stderr)
		}
	})
	t.Run("CommandLineWins", func(t *testing.T) {
		t.Setenv("KEYLEDGER_NATS_URL", unreachable)
		t.Setenv("KEYLEDGER_STREAM", "ENVTEST")
		t.Setenv("KEYLEDGER_START_TIMEOUT", "1s") // nothing will listen there
		if code, stdout, stderr := runCLI(t, "audit", "replay", "--nats-url", ns.ClientURL()); code != 0 {
			t.Fatalf("--nats-url over the variable: got exit %d, %q, %q, want 0", code, stdout, stderr)
		}
		if code, _, stderr := runCLI(t, "audit", "replay"); code != 3 || !strings.Contains(stderr, unreachable) {
			t.Fatalf("the variable alone: got exit %d, %q, want 3 naming %s", code, stderr, unreachable)
		}
	})
	t.Run("BadValue", func(t *testing.T) {
		t.Setenv("KEYLEDGER_JSON", "maybe")
		code, _, stderr := runCLI(t, "audit", "verify", "--nats-url", ns.ClientURL(), "--stream", "ENVTEST")
		if code != 2 || !strings.Contains(stderr, "KEYLEDGER_JSON") || !strings.HasSuffix(stderr, "Run 'keyledger audit verify --help' for usage.\n") {
			t.Fatalf("got exit %d, %q, want 2 naming KEYLEDGER_JSON and a hint", code, stderr)
		}
	})
	t.Run("AdminFromEnvironment", func(t *testing.T) {
		// Checked before serve is reached: the flags came through.
		t.Setenv("KEYLEDGER_URL", "ftp://example.com")
		if code, _, stderr := runCLI(t, "admin", "users", "list"); code != 2 || !strings.Contains(stderr, "ftp://example.com") {
			t.Errorf("KEYLEDGER_URL: got exit %d, %q, want 2 refusing the URL", code, stderr)
		}
		t.Setenv("KEYLEDGER_URL", "http://127.0.0.1:1")
		t.Setenv("KEYLEDGER_KEY", filepath.Join(t.TempDir(), "none.key"))
		if code, _, stderr := runCLI(t, "admin", "keys", "revoke", "ak_x", "--reason", "r"); code != 2 || !strings.Contains(stderr, "none.key") {
			t.Errorf("KEYLEDGER_KEY: got exit %d, %q, want 2 naming the missing file", code, stderr)
		}
	})
	t.Run("FromStreamCommandLineOnly", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "ledger.pem")
		key, err := auth.LoadOrCreateSigningKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("KEYLEDGER_FROM_STREAM", "true")
		t.Setenv("KEYLEDGER_NATS_URL", unreachable)
		code, stdout, stderr := runCLI(t, "audit", "pubkey", "--signing-key", keyFile)
		if want := eventstore.EncodePublicKey(key.Public().(ed25519.PublicKey)) + "\n"; code != 0 || stdout != want {
			t.Fatalf("got exit %d, %q, %q, want 0 and the key file's public key %q", code, stdout, stderr, want)
		}
	})
	t.Run("ForceCommandLineOnly", func(t *testing.T) {
		dir := t.TempDir()
		keyOut, out := filepath.Join(dir, "private.key"), filepath.Join(dir, "certificate.crt")
		if err := os.WriteFile(keyOut, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("KEYLEDGER_FORCE", "true")
		t.Setenv("KEYLEDGER_SUBJECT", "/CN=from-env.example")
		t.Setenv("KEYLEDGER_KEY_TYPE", "ed25519")
		code, _, stderr := runCLI(t, "cert", "selfsigned", "--key-out", keyOut, "--out", out)
		if b, _ := os.ReadFile(keyOut); code != 1 || string(b) != "keep me" || !strings.Contains(stderr, "--force") {
			t.Fatalf("KEYLEDGER_FORCE: got exit %d, %q, key file %q, want 1, the file kept and a hint at --force", code, stderr, b)
		}
		code, stdout, stderr := runCLI(t, "cert", "selfsigned", "--key-out", keyOut, "--out", out, "--force")
		if code != 0 || !strings.Contains(stdout, "CN=from-env.example") || !strings.Contains(stdout, "Ed25519") {
			t.Fatalf("--force: got exit %d, %q, %q, want 0 and the subject and key type from the environment", code, stdout, stderr)
		}
	})
	t.Run("CmdLineBoolIgnoresEnvironment", func(t *testing.T) {
		t.Setenv("KEYLEDGER_ADMIN", "true")
		fs := newFlagSet("admin users create")
		var isAdmin cmdLineBool
		fs.Var(&isAdmin, "admin", "")
		if err := parseFlags(fs, nil); err != nil || isAdmin {
			t.Fatalf("got %v, admin %v, want no error and false", err, isAdmin)
		}
		if err := parseFlags(fs, []string{"--admin"}); err != nil || !isAdmin {
			t.Fatalf("--admin: got %v, admin %v, want no error and true", err, isAdmin)
		}
		var unused flag.Value = &isAdmin
		if err := unused.Set("perhaps"); err == nil {
			t.Fatal("Set(perhaps): got no error")
		}
	})
}
