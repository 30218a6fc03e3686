// Package readme holds the tests that run the README's sections verbatim
// and check what it promises against the code.
package readme

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app/apptest"
)

// repoRoot is the module's root, where the README is and the commands it
// shows run.
const repoRoot = "../.."

// readmeBlocks returns the fenced code blocks of one README section,
// keyed by their language, in order.
func readmeBlocks(t *testing.T, heading string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README has no section %q", heading)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	blocks := map[string][]string{}
	for {
		_, rest, ok := strings.Cut(section, "\n```")
		if !ok {
			return blocks
		}
		lang, rest, _ := strings.Cut(rest, "\n")
		body, after, ok := strings.Cut(rest, "\n```")
		if !ok {
			t.Fatalf("README section %q: unterminated code block", heading)
		}
		blocks[lang] = append(blocks[lang], body+"\n")
		section = after
	}
}

// requireTools fails under CI, or skips, when a command the README uses is
// missing.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required under CI: %v", name, err)
			}
			t.Skipf("%s not installed: %v", name, err)
		}
	}
}

// TestREADME_SignedRequests runs the README's "Signed requests" shell block
// verbatim (only the server's address changed) with sh, keyledger sign
// and curl, and its Go program with go run, against the real serve.
func TestREADME_SignedRequests(t *testing.T) {
	t.Parallel()
	requireTools(t, "sh", "curl", "sed", "base64", "go")
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	blocks := readmeBlocks(t, "Signed requests")
	if len(blocks["sh"]) != 1 || len(blocks["go"]) != 1 {
		t.Fatalf("got %d sh and %d go blocks, want one of each", len(blocks["sh"]), len(blocks["go"]))
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("Shell", func(t *testing.T) {
		script := strings.ReplaceAll(blocks["sh"][0], "http://127.0.0.1:8080", ts.Base)
		cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
		cmd.Dir = root
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("sh: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		}
		want := []string{
			`^401$`,
			`^X-Api-Key: [A-Za-z0-9+/=]+$`,
			`^Content-Type: application/json$`,
			`^Content-Digest: sha-256=:[A-Za-z0-9+/=]+:$`,
			`^Signature-Input: sig1=\("@method" "@target-uri" "content-type" "content-digest"\);created=\d+;expires=\d+;keyid="ak_[0-9A-Z]{26}";nonce="[^"]+";alg="ed25519";tag="keyledger-v1"$`,
			`^Signature: sig1=:[A-Za-z0-9+/=]+:$`,
			`^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"usr_[0-9A-Z]{26}"\}$`,
			`^401$`,
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != len(want) {
			t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
		}
		for i, w := range want {
			if !regexp.MustCompile(w).MatchString(lines[i]) {
				t.Errorf("line %d: got %q, want %s", i+1, lines[i], w)
			}
		}
		if strings.Contains(out.String(), "sk_") || strings.Contains(errOut.String(), "sk_") {
			t.Errorf("the secret appears in the output")
		}
	})

	t.Run("Go", func(t *testing.T) {
		ts.Register(t, "carol@example.com", "correct horse battery staple")
		token := ts.Login(t, "carol@example.com", "correct horse battery staple")
		k := ts.CreateKey(t, token, `{"signed_only":true}`)
		dir, err := os.MkdirTemp(root, ".readme-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(blocks["go"][0]), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, "go", "run", "./"+filepath.Base(dir))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "B="+ts.Base, "KEY="+k.Key, "KEYLEDGER_API_SECRET="+k.Secret)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go run: %v\n%s", err, out)
		}
		want := regexp.MustCompile(`^200 \{"api_key":"` + k.Key + `","user_id":"usr_[0-9A-Z]{26}"\}$`)
		if got := strings.TrimSpace(string(out)); !want.MatchString(got) {
			t.Errorf("got %q, want %s", got, want)
		}
	})
}

// TestREADME_ReliabilityTestsExist: every test the README's Reliability
// section cites as proof exists, in the package named before it (a
// backquoted package path, then its tests; a name ending in * needs one
// match).
func TestREADME_ReliabilityTestsExist(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Reliability\n")
	if !ok {
		t.Fatal("README has no Reliability section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	// Tokens in order: a package path in backquotes sets the package of
	// the test names that follow it, up to the end of the table cell.
	tokens := regexp.MustCompile("`([a-z][a-z0-9/]*)`|\\b((?:Test|Fuzz)[A-Za-z0-9_]+\\*?)|(\\|)").FindAllStringSubmatch(section, -1)
	type citation struct{ pkg, name string }
	var cited []citation
	pkg := ""
	for _, m := range tokens {
		switch {
		case m[1] != "":
			pkg = m[1]
		case m[2] != "":
			if pkg == "" {
				t.Errorf("the README cites %s without naming its package first", m[2])
				continue
			}
			cited = append(cited, citation{pkg, m[2]})
		default:
			pkg = ""
		}
	}
	if len(cited) < 20 {
		t.Fatalf("found %d test names in the Reliability section, want at least 20", len(cited))
	}
	funcs := map[string][]string{} // package directory -> its test functions
	testFunc := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)\w+)\(`)
	for _, c := range cited {
		if _, done := funcs[c.pkg]; done {
			continue
		}
		files, err := filepath.Glob(filepath.Join(repoRoot, c.pkg, "*_test.go"))
		if err != nil {
			t.Fatal(err)
		}
		funcs[c.pkg] = []string{}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range testFunc.FindAllStringSubmatch(string(src), -1) {
				funcs[c.pkg] = append(funcs[c.pkg], m[1])
			}
		}
	}
	for _, c := range cited {
		prefix, wild := strings.CutSuffix(c.name, "*")
		found := false
		for _, f := range funcs[c.pkg] {
			if f == c.name || wild && strings.HasPrefix(f, prefix) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the README cites %s in %s, which defines no such test", c.name, c.pkg)
		}
	}
}

// TestREADME_WalkThrough runs the README's walk-through verbatim (only the
// server's address changed) with sh and curl against the real serve, and
// checks the answers its comments promise.
func TestREADME_WalkThrough(t *testing.T) {
	t.Parallel()
	requireTools(t, "sh", "curl", "sed", "base64")
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	blocks := readmeBlocks(t, "Walk-through")
	if len(blocks["sh"]) != 1 {
		t.Fatalf("got %d sh blocks, want one", len(blocks["sh"]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", strings.ReplaceAll(blocks["sh"][0], "http://127.0.0.1:8080", ts.Base))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("sh: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	// In order: the registration, the created key, two validations, the
	// listing, the new secret, 401 and 200 for the old and new secret, 204
	// for the revocation, the full 401 answer, and the key shown revoked.
	want := []string{
		`(?m)^\{"id":"usr_[0-9A-Z]{26}","email":"alice@example.com","created_at":"[^"]+"\}$`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","secret":"sk_[0-9A-Za-z]{49}","name":"ci","status":"active",`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"usr_[0-9A-Z]{26}"\}$`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"usr_[0-9A-Z]{26}"\}$`,
		`(?m)^\{"keys":\[\{"api_key":"ak_[0-9A-Z]{26}","name":"ci","status":"active"`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","secret":"sk_[0-9A-Za-z]{49}"\}$`,
		`(?m)^401$`, `(?m)^200$`, `(?m)^204$`,
		`(?m)^HTTP/1\.1 401 Unauthorized\r?$`,
		`(?mi)^www-authenticate: ApiKey\r?$`,
		`"status":"revoked"`,
	}
	rest := out.String()
	for _, w := range want {
		loc := regexp.MustCompile(w).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("output lacks %s after what came before; output:\n%s", w, out.String())
		}
		rest = rest[loc[1]:]
	}
}
