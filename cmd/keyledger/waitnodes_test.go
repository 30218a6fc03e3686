package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// TestWaitNodes_PausedAndKilledProcesses runs three `keyledger validator`
// processes against a serve. A revocation asked with ?wait=nodes answers
// only once every node applied it: right after the answer each process
// refuses the key. With one process paused (SIGSTOP), the next answers 202
// naming it once --wait-timeout has passed, while the two others refuse
// the key; killed (SIGKILL), it drops out of the live set after
// --node-liveness, and waits count the two left.
func TestWaitNodes_PausedAndKilledProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it")
	}
	bin := buildKeyledger(t)
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {
		c.Fleet = app.FleetConfig{NodeName: "serve:test", HeartbeatInterval: 100 * time.Millisecond,
			Liveness: 3 * time.Second, WaitTimeout: 3 * time.Second}
	})
	defer ts.Stop(t)
	admin := ts.RootAdmin(t)
	names := []string{"node-1", "node-2", "node-3"}
	var procs []*serveProcess
	var addrs []string
	for _, name := range names {
		addr := apptest.FreeAddr(t)
		procs = append(procs, startProcess(t, bin, "validator", "--nats-url", ts.NATSURL(),
			"--nats-creds", ts.CredsFile(natsauth.Validator), "--http-addr", addr, "--metrics-addr", "off",
			"--state-dir", "", "--node-name", name, "--log-level", "info"))
		addrs = append(addrs, addr)
	}
	live := func() map[string]bool {
		r := ts.AdminDo(t, admin, "GET", "/admin/nodes", "")
		apptest.WantStatus(t, r, http.StatusOK)
		var out struct {
			Nodes []struct {
				Name string `json:"name"`
				Live bool   `json:"live"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, n := range out.Nodes {
			m[n.Name] = n.Live
		}
		return m
	}
	natstest.Eventually(t, 60*time.Second, func() bool {
		m := live()
		return m["node-1"] && m["node-2"] && m["node-3"]
	}, "three validator processes live")

	ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	keys := []apptest.CreatedKey{ts.CreateKey(t, token, ""), ts.CreateKey(t, token, ""), ts.CreateKey(t, token, "")}
	status := func(addr string, k apptest.CreatedKey) int {
		return apptest.Send(t, "GET", "http://"+addr+"/validate", "", apptest.APIKeyAuth(k)...).Status
	}
	for i, addr := range addrs {
		natstest.Eventually(t, 30*time.Second, func() bool { return status(addr, keys[2]) == http.StatusOK },
			fmt.Sprintf("the newest key valid on %s", names[i]))
	}
	revoke := func(k apptest.CreatedKey) apptest.Response {
		return ts.Do(t, "DELETE", "/api-keys/"+k.Key+"?wait=nodes", "", apptest.Bearer(token)...)
	}

	t.Run("EveryNodeApplied", func(t *testing.T) {
		r := revoke(keys[0])
		if r.Status != http.StatusNoContent || r.Header.Get("Keyledger-Nodes-Applied") != "4/4" {
			t.Fatalf("got %d %q %s, want 204 with 4/4", r.Status, r.Header.Get("Keyledger-Nodes-Applied"), r.Body)
		}
		for i, addr := range addrs {
			if got := status(addr, keys[0]); got != http.StatusUnauthorized {
				t.Errorf("%s right after the answer: %d, want 401", names[i], got)
			}
		}
	})

	t.Run("Paused", func(t *testing.T) {
		if err := syscall.Kill(procs[2].cmd.Process.Pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(procs[2].cmd.Process.Pid, syscall.SIGCONT)
		start := time.Now()
		r := revoke(keys[1])
		if r.Status != http.StatusAccepted || r.Header.Get("Keyledger-Nodes-Applied") != "3/4" ||
			!strings.Contains(string(r.Body), `"pending_nodes":["node-3"]`) {
			t.Fatalf("got %d %q %s, want 202 with 3/4 naming node-3", r.Status, r.Header.Get("Keyledger-Nodes-Applied"), r.Body)
		}
		if took := time.Since(start); took < 3*time.Second {
			t.Errorf("202 after %v, want it after --wait-timeout (3s)", took)
		}
		for i, addr := range addrs[:2] {
			if got := status(addr, keys[1]); got != http.StatusUnauthorized {
				t.Errorf("%s right after the answer: %d, want 401", names[i], got)
			}
		}
	})

	t.Run("Killed", func(t *testing.T) {
		procs[2].kill(t)
		natstest.Eventually(t, 30*time.Second, func() bool { return !live()["node-3"] }, "node-3 no longer live")
		r := revoke(keys[2])
		if r.Status != http.StatusNoContent || r.Header.Get("Keyledger-Nodes-Applied") != "3/3" {
			t.Fatalf("got %d %q %s, want 204 with 3/3", r.Status, r.Header.Get("Keyledger-Nodes-Applied"), r.Body)
		}
	})
}
