package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsproc"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestServe_CrashUnderLoad runs `keyledger serve` as a process of its own
// on its embedded NATS server, kills it with SIGKILL while clients
// register users and create, regenerate and revoke keys, and starts it
// again on the same data directory. Every acknowledged command must be in
// the log exactly once, nothing may be half applied (a registration is an
// email reservation and a user, both or neither; every event folds), the
// auditor must find the log intact, and the restarted server's read
// models must be a fresh fold of the log, also after more commands.
func TestServe_CrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it")
	}
	bin := buildKeyledger(t)
	dir := t.TempDir()
	httpAddr, natsAddr := apptest.FreeAddr(t), apptest.FreeAddr(t)
	args := []string{"serve", "--data-dir", dir, "--http-addr", httpAddr, "--nats-listen", natsAddr, "--metrics-addr", "off",
		"--checkpoint-interval", "500ms", "--max-keys-per-user", "-1", "--log-level", "info",
		// Every client here is on loopback: the limits per address would
		// pace the load this test needs (they are tested on their own).
		"--registrations-per-address", "-1", "--login-failures-per-address", "-1"}

	p := startProcess(t, bin, args...)
	load := apptest.NewCommandLoad(t, "http://"+httpAddr, "crash", 10*time.Millisecond)
	awaitReady(t, load.API)
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		load.AddWorkers(load.AddUser(t, email), 1)
	}
	load.Registrars = 2

	ctx, abandon := context.WithCancel(t.Context())
	stop := load.Run(ctx)
	// Crash in the middle of commands: some requests are in flight.
	natstest.Eventually(t, 60*time.Second, func() bool {
		return load.AckedSince(time.Time{}) >= 60 && load.RegisteredCount() >= 3+5 && load.InFlight.Load() >= 2
	}, "commands and registrations acknowledged, and more in flight, before the crash")
	p.kill(t)
	// What was in flight has no answer and never will: abandon it.
	abandon()
	stop()
	t.Logf("before the crash: %s", load.Summary())

	p = startProcess(t, bin, args...)
	awaitReady(t, load.API)
	// The restarted server takes commands on the keys and users of before.
	restarted := time.Now()
	stop = load.Run(t.Context())
	natstest.Eventually(t, 60*time.Second, func() bool { return load.AckedSince(restarted) >= 30 },
		"commands acknowledged after the restart")
	stop()
	t.Logf("in all: %s", load.Summary())

	nc, err := nats.Connect("nats://"+natsAddr, nats.UserCredentials(filepath.Join(dir, "creds", "auditor.creds")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The fold opens the sealed emails: that takes the ledger's rights.
	ledgerNC, err := nats.Connect("nats://"+natsAddr, nats.UserCredentials(filepath.Join(dir, "creds", "ledger.creds")))
	if err != nil {
		t.Fatal(err)
	}
	defer ledgerNC.Close()
	f := apptest.FoldLog(t, ledgerNC)
	load.CheckLog(t, f)
	apptest.VerifyLog(t, nc)
	natstest.Eventually(t, 30*time.Second, func() bool {
		r, err := load.API.Readyz(t.Context())
		return err == nil && r.AppliedSeq >= f.Head
	}, "the restarted server's read models reach the head of the log")
	load.CheckProjections(t, f)
	checkUsers(t, load, f)
}

// checkUsers holds the server's users against the fold: a sample of the
// acknowledged registrations log in, an address whose registration the
// log does not hold does not, and one it holds cannot be taken again.
func checkUsers(t *testing.T, l *apptest.CommandLoad, f *apptest.LogFold) {
	t.Helper()
	ctx := t.Context()
	inLog := map[string]bool{}
	for _, e := range f.Registrations {
		inLog[e.Data.(domain.UserRegistered).Email] = true
	}
	l.Mu.Lock()
	var acked []string
	for _, email := range l.Registered {
		acked = append(acked, email)
	}
	var missing []string
	for email := range l.RegisterAttempts {
		if !inLog[email] {
			missing = append(missing, email)
		}
	}
	l.Mu.Unlock()
	slices.Sort(acked)
	slices.Sort(missing)
	for _, email := range apptest.Spread(acked, 3) {
		if _, err := l.API.Login(ctx, email, apptest.Password); err != nil {
			t.Errorf("login as %s, whose registration was acknowledged: %v", email, err)
		}
		if _, err := l.API.Register(ctx, email, apptest.Password); !client.IsConflict(err) {
			t.Errorf("register %s again: got %v, want 409", email, err)
		}
	}
	for _, email := range apptest.Spread(missing, 1) {
		if _, err := l.API.Login(ctx, email, apptest.Password); !client.IsUnauthorized(err) {
			t.Errorf("login as %s, whose registration the log does not hold: got %v, want 401", email, err)
		}
	}
}

// serveProcess is a running keyledger process.
type serveProcess struct {
	cmd    *exec.Cmd
	output *apptest.SyncBuffer
	done   chan struct{}
}

// startProcess starts bin with args, its environment stripped of
// KEYLEDGER_* settings. It is killed when the test ends, and its output
// logged if the test failed.
func startProcess(t *testing.T, bin string, args ...string) *serveProcess {
	t.Helper()
	p := &serveProcess{cmd: exec.Command(bin, args...), output: &apptest.SyncBuffer{}, done: make(chan struct{})}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYLEDGER_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		defer close(p.done)
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("keyledger %s (pid %d):\n%s", args[0], p.cmd.Process.Pid, p.output)
		}
	})
	return p
}

// kill sends SIGKILL, unless the process has ended, and waits for it to
// end.
func (p *serveProcess) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill: %v", err)
	}
	<-p.done
}

// awaitReady waits until the server answers /readyz with 200.
func awaitReady(t *testing.T, api *client.Client) {
	t.Helper()
	natstest.Eventually(t, 60*time.Second, func() bool {
		r, err := api.Readyz(t.Context())
		return err == nil && r.Ready
	}, "keyledger serve ready")
}

// buildKeyledger builds this command once per test run into a temporary
// directory (removed by TestMain), with the race detector if this test
// binary has it (it then reuses the test build's compiled packages).
// Without a go command it skips the test, unless CI is set.
func buildKeyledger(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no go command on PATH; CI must have one to build the binary")
		}
		t.Skip("no go command on PATH to build the binary")
	}
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "keyledger-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		bin := filepath.Join(dir, "keyledger")
		args := []string{"build", "-o", bin}
		if raceEnabled() {
			args = append(args, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, goCmd, append(args, ".")...).CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go %s .: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		built.bin = bin
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// built is the binary buildKeyledger built for this test run.
var built struct {
	once     sync.Once
	dir, bin string
	err      error
}

// TestMain removes the binary buildKeyledger built. It lets the bench's
// failover scenario start this test binary as a nats-server process.
func TestMain(m *testing.M) {
	natsproc.Main()
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// raceEnabled reports whether this binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
