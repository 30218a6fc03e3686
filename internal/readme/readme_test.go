// Package readme holds the tests that run the README's sections verbatim
// and check what it promises against the code.
package readme

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natstest"
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
			`^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"usr_[0-9A-Z]{26}","owner_type":"user","owner_id":"usr_[0-9A-Z]{26}","created_by":"usr_[0-9A-Z]{26}","name":"[^"]*","scopes":\[[^\]]*\],"metadata":\{.*\}\}$`,
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
		want := regexp.MustCompile(`^200 \{"api_key":"` + k.Key + `","user_id":"usr_[0-9A-Z]{26}","owner_type":"user","owner_id":"usr_[0-9A-Z]{26}","created_by":"usr_[0-9A-Z]{26}","name":"[^"]*","scopes":\[[^\]]*\],"metadata":\{.*\}\}$`)
		if got := strings.TrimSpace(string(out)); !want.MatchString(got) {
			t.Errorf("got %q, want %s", got, want)
		}
	})
}

// runSection runs the one sh block of the README section heading against
// ts (its address for http://127.0.0.1:8080) and returns what it printed.
func runSection(t *testing.T, ts *apptest.Server, heading string) string {
	t.Helper()
	blocks := readmeBlocks(t, heading)
	if len(blocks["sh"]) != 1 {
		t.Fatalf("got %d sh blocks, want one", len(blocks["sh"]))
	}
	return runAgainst(t, ts, blocks["sh"][0])
}

// runAgainst runs one sh block of the README against ts (its address for
// http://127.0.0.1:8080) and returns what it printed.
func runAgainst(t *testing.T, ts *apptest.Server, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", strings.ReplaceAll(script, "http://127.0.0.1:8080", ts.Base))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("sh: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	return out.String()
}

// wantLines checks out line by line against the regular expressions want
// and returns its lines.
func wantLines(t *testing.T, out string, want []string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !regexp.MustCompile(w).MatchString(lines[i]) {
			t.Errorf("line %d: got %q, want %s", i+1, lines[i], w)
		}
	}
	return lines
}

// TestREADME_ReliabilityTestsExist: every test the README's Reliability
// and Threat model sections cite as proof exists, in the package named
// before it (a
// backquoted package path, then its tests; a name ending in * needs one
// match).
func TestREADME_ReliabilityTestsExist(t *testing.T) {
	t.Parallel()
	for _, heading := range []string{"Reliability", "Threat model"} {
		t.Run(strings.ReplaceAll(heading, " ", "_"), func(t *testing.T) { citedTestsExist(t, heading) })
	}
}

// citedTestsExist checks the tests one README section cites (see
// TestREADME_ReliabilityTestsExist).
func citedTestsExist(t *testing.T, heading string) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README has no %s section", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	// Tokens in order: a package path in backquotes sets the package of
	// the test names that follow it, up to the end of the table cell.
	tokens := regexp.MustCompile("`([a-z][a-z0-9/]*)`|\\b((?:Test|Fuzz)[A-Z_][A-Za-z0-9_]*\\*?)|(\\|)").FindAllStringSubmatch(section, -1)
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
	if len(cited) < 10 {
		t.Fatalf("found %d test names in the %s section, want at least 10", len(cited), heading)
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
	out := runSection(t, ts, "Walk-through")
	// In order: the registration, the created key, two validations, the
	// listing, the new secret, 401 and 200 for the old and new secret, 204
	// for the revocation, the full 401 answer, and the key shown revoked.
	want := []string{
		`(?m)^\{"id":"usr_[0-9A-Z]{26}","email":"alice@example.com","created_at":"[^"]+"\}$`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","secret":"sk_[0-9A-Za-z]{49}","name":"ci","status":"active",`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"usr_[0-9A-Z]{26}","owner_type":"user","owner_id":"usr_[0-9A-Z]{26}","created_by":"usr_[0-9A-Z]{26}","name":"[^"]*","scopes":\[[^\]]*\],"metadata":\{.*\}\}$`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"usr_[0-9A-Z]{26}","owner_type":"user","owner_id":"usr_[0-9A-Z]{26}","created_by":"usr_[0-9A-Z]{26}","name":"[^"]*","scopes":\[[^\]]*\],"metadata":\{.*\}\}$`,
		`(?m)^\{"keys":\[\{"api_key":"ak_[0-9A-Z]{26}","name":"ci","status":"active"`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","secret":"sk_[0-9A-Za-z]{49}"\}$`,
		`(?m)^401$`, `(?m)^200$`, `(?m)^204$`,
		`(?m)^HTTP/1\.1 401 Unauthorized\r?$`,
		`(?mi)^www-authenticate: ApiKey\r?$`,
		`"status":"revoked"`,
	}
	rest := out
	for _, w := range want {
		loc := regexp.MustCompile(w).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("output lacks %s after what came before; output:\n%s", w, out)
		}
		rest = rest[loc[1]:]
	}
}

// TestREADME_Administration runs the README's "Administration" blocks as a
// reader would: the walk-through first (for B, TOKEN and alice), then
// keygen and serve with --bootstrap-admin, then the admin commands. The
// binary stands in for "go run ./cmd/keyledger", in a directory of its own
// (keygen writes admin.key there and serve keeps ./data there); serve is
// given free ports, and the commands reach it through KEYLEDGER_URL and
// KEYLEDGER_NATS_URL.
func TestREADME_Administration(t *testing.T) {
	t.Parallel()
	ctx, dir, bin := binaryDir(t)
	walk := readmeBlocks(t, "Walk-through")["sh"]
	admin := readmeBlocks(t, "Administration")["sh"]
	if len(walk) != 1 || len(admin) != 2 {
		t.Fatalf("got %d walk-through and %d administration sh blocks, want 1 and 2", len(walk), len(admin))
	}
	setup := strings.Split(strings.TrimSpace(admin[0]), "\n")
	if len(setup) != 2 || !strings.Contains(setup[0], "admin keygen") || !strings.Contains(setup[1], " serve ") {
		t.Fatalf("the first Administration block: got %q, want keygen, then serve", setup)
	}
	goRun := strings.NewReplacer("go run ./cmd/keyledger", bin)
	run := func(script string, env ...string) string {
		t.Helper()
		return runScript(t, ctx, dir, script, env...)
	}
	run(goRun.Replace(setup[0]))

	httpAddr, natsAddr := apptest.FreeAddr(t), apptest.FreeAddr(t)
	fields := strings.Fields(goRun.Replace(strings.TrimSpace(strings.SplitN(setup[1], "#", 2)[0])))
	startProcess(t, dir, "serve", append(fields, "--http-addr", httpAddr, "--nats-listen", natsAddr, "--metrics-addr", apptest.FreeAddr(t)))
	base := "http://" + httpAddr
	waitReady(t, base)

	script := strings.ReplaceAll(walk[0], "http://127.0.0.1:8080", base) + "\n" + goRun.Replace(admin[1])
	out := run(script, "KEYLEDGER_URL="+base, "KEYLEDGER_NATS_URL=nats://"+natsAddr)
	// In order, after the walk-through's own answers: the leaked key
	// revoked, alice disabled and her session refused, enabled again (the
	// session still refused), her sessions revoked, her keys revoked,
	// bob's key enrolled and listed, the admin user created, the one
	// ledger key the log trusts, and alice erased.
	rest := out
	for _, w := range []string{
		`(?m)^revoked ak_[0-9A-Z]{26}$`,
		`(?m)^disabled usr_[0-9A-Z]{26}$`,
		`(?m)^401$`,
		`(?m)^enabled usr_[0-9A-Z]{26}$`,
		`(?m)^401$`, // the session the disable ended stays ended
		`(?m)^revoked the sessions of usr_[0-9A-Z]{26}$`,
		`(?m)^\d+ keys? revoked$`,
		`(?m)^enrolled admin key \S+ for bob$`,
		`(?m)^\S+\s+bob\s+active\s+admin:ops\s`,
		`(?m)^created usr_[0-9A-Z]{26} ops@example\.com \(admin\)$`,
		`(?m)^\S+\s+trusted\s+genesis\s`,
		`(?m)^erased usr_[0-9A-Z]{26}$`,
	} {
		loc := regexp.MustCompile(w).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("output lacks %s after what came before; output:\n%s", w, out)
		}
		rest = rest[loc[1]:]
	}
	for _, f := range []string{"admin.key", "admin.key.pub", "bob.key", "bob.key.pub"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// binaryDir makes a directory of the test's own for the README's commands
// to run in, and builds keyledger into it: the binary stands in for "go run
// ./cmd/keyledger" there. It returns a context for the test's commands
// (five minutes at most), the directory and the binary's path.
func binaryDir(t *testing.T) (context.Context, string, string) {
	t.Helper()
	requireTools(t, "sh", "curl", "sed", "base64", "go")
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	bin := filepath.Join(dir, "keyledger")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/keyledger")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return ctx, dir, bin
}

// startProcess starts argv in dir, as a terminal of the README would, and
// stops it with an interrupt (a kill after 30 s) when the test ends,
// logging its output if the test failed.
func startProcess(t *testing.T, dir, name string, argv []string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	var logs apptest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-stopped
		}
		if t.Failed() {
			t.Logf("%s's output:\n%s", name, logs.String())
		}
	})
}

// waitReady waits until base/readyz answers 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	natstest.Eventually(t, 2*time.Minute, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, base+" ready")
}

// runScript runs script with sh -e in dir, with env added to the
// environment, and returns its standard output; it fails the test if the
// script fails.
func runScript(t *testing.T, ctx context.Context, dir, script string, env ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "sh", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("sh: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", err, script, out.String(), errOut.String())
	}
	return out.String()
}

// TestREADME_ValidationNodes runs the README's "Validation nodes" section:
// serve as the top of the README starts it, the node's command line, then
// the walk-through and the section's shell block against both. As in
// TestREADME_Administration the binary stands in for "go run
// ./cmd/keyledger" in a directory of its own (the node's credentials are
// serve's data/creds there), and both get free ports.
func TestREADME_ValidationNodes(t *testing.T) {
	t.Parallel()
	ctx, dir, bin := binaryDir(t)
	walk := readmeBlocks(t, "Walk-through")["sh"]
	node := readmeBlocks(t, "Validation nodes")["sh"]
	if len(walk) != 1 || len(node) != 2 {
		t.Fatalf("got %d walk-through and %d validation-node sh blocks, want 1 and 2", len(walk), len(node))
	}
	goRun := strings.NewReplacer("go run ./cmd/keyledger", bin)

	httpAddr, natsAddr, nodeAddr := apptest.FreeAddr(t), apptest.FreeAddr(t), apptest.FreeAddr(t)
	startProcess(t, dir, "serve", []string{bin, "serve", "--http-addr", httpAddr, "--nats-listen", natsAddr, "--metrics-addr", apptest.FreeAddr(t)})
	base := "http://" + httpAddr
	waitReady(t, base)

	line := strings.TrimSpace(strings.SplitN(strings.TrimSpace(node[0]), "#", 2)[0])
	line = strings.ReplaceAll(goRun.Replace(line), "nats://127.0.0.1:4222", "nats://"+natsAddr)
	startProcess(t, dir, "validator", append(strings.Fields(line), "--http-addr", nodeAddr, "--metrics-addr", apptest.FreeAddr(t)))
	nodeBase := "http://" + nodeAddr
	waitReady(t, nodeBase)

	script := strings.ReplaceAll(walk[0], "http://127.0.0.1:8080", base) + "\n" +
		strings.ReplaceAll(node[1], "http://127.0.0.1:8081", nodeBase)
	out := runScript(t, ctx, dir, script)
	// In order, after the walk-through's own answers: the node ready, the
	// new key valid on it, the ledger's 204, and the node's 401 at once.
	rest := out[strings.LastIndex(out, `"status":"revoked"`):]
	for _, w := range []string{
		`(?m)^\{"ready":true,"applied_seq":\d+`,
		`(?m)^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"usr_[0-9A-Z]{26}","owner_type":"user","owner_id":"usr_[0-9A-Z]{26}","created_by":"usr_[0-9A-Z]{26}","name":"[^"]*","scopes":\[[^\]]*\],"metadata":\{.*\}\}$`,
		`(?m)^204$`,
		`(?m)^401$`,
	} {
		loc := regexp.MustCompile(w).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("output lacks %s after what came before; output:\n%s", w, out)
		}
		rest = rest[loc[1]:]
	}
}

// TestREADME_KeyPolicies runs the README's "Key policies" shell block
// verbatim (only the server's address changed) against the real serve:
// a scoped key validated with and without its scope, a rotation with a
// grace period where both secrets work, and a disable and enable.
func TestREADME_KeyPolicies(t *testing.T) {
	t.Parallel()
	requireTools(t, "sh", "curl", "sed", "base64")
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	out := runSection(t, ts, "Key policies")
	want := []string{
		`^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"usr_[0-9A-Z]{26}","owner_type":"user","owner_id":"usr_[0-9A-Z]{26}","created_by":"usr_[0-9A-Z]{26}","name":"reporting","scopes":\["orders:read"\],"metadata":\{"plan":"pro"\}\}$`,
		`^403$`, `^200$`, `^200$`, `^204$`, `^401$`, `^204$`, `^200$`,
	}
	wantLines(t, out, want)
}

// TestREADME_Teams runs the "Teams" section's sh block verbatim against
// a real serve: a team key validates as the team's, and keeps validating
// once its creator has left the team.
func TestREADME_Teams(t *testing.T) {
	t.Parallel()
	requireTools(t, "sh", "curl", "sed", "base64")
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	out := runSection(t, ts, "Teams")
	want := []string{
		`^\{"api_key":"ak_[0-9A-Z]{26}","user_id":"(usr_[0-9A-Z]{26})","owner_type":"team","owner_id":"tm_[0-9A-Z]{26}","created_by":"(usr_[0-9A-Z]{26})","name":"checkout","scopes":\[\],"metadata":\{\}\}$`,
		`^204$`, `^200$`, `^404$`,
	}
	wantLines(t, out, want)
}
