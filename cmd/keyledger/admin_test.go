package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/audit"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// cliRun runs `keyledger args...` in-process, as main does, and returns
// the exit code and output.
func cliRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// wantExit fails the test unless the exit code is want.
func wantExit(t *testing.T, args []string, code int, stdout, stderr string, want int) {
	t.Helper()
	if code != want {
		t.Fatalf("keyledger %s: got exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
	}
}

// logArgs point an audit command at ts's log.
func logArgs(ts *apptest.Server) []string {
	return []string{"--nats-url", ts.NATSURL(), "--nats-creds", ts.CredsFile(natsauth.Auditor)}
}

// ledgerArgs point an admin ledger-keys command at ts's log, with the
// ledger's signing key.
func ledgerArgs(ts *apptest.Server) []string {
	return []string{"--nats-url", ts.NATSURL(), "--signing-key", ts.Config.SigningKeyFile, "--name", "root"}
}

// adminArgs point an admin command at ts's admin API, signing as the
// bootstrapped admin root.
func adminArgs(t *testing.T, ts *apptest.Server) []string {
	return []string{"--url", ts.Base, "--key", ts.RootAdmin(t).File}
}

// adminCLI runs `keyledger admin args...` against ts.
func adminCLI(t *testing.T, ts *apptest.Server, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	extra := adminArgs(t, ts)
	if len(args) > 0 && args[0] == "ledger-keys" {
		extra = ledgerArgs(ts)
	}
	return cliRun(t, append(append([]string{"admin"}, args...), extra...)...)
}

// mustAdmin is adminCLI that fails the test unless the exit code is 0.
func mustAdmin(t *testing.T, ts *apptest.Server, args ...string) string {
	t.Helper()
	code, stdout, stderr := adminCLI(t, ts, args...)
	wantExit(t, append([]string{"admin"}, args...), code, stdout, stderr, 0)
	return stdout
}

// auditCLI runs `keyledger audit args...` against ts.
func auditCLI(t *testing.T, ts *apptest.Server, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return cliRun(t, append(append([]string{"audit"}, args...), logArgs(ts)...)...)
}

// mustAudit is auditCLI that fails the test unless the exit code is 0.
func mustAudit(t *testing.T, ts *apptest.Server, args ...string) string {
	t.Helper()
	code, stdout, stderr := auditCLI(t, ts, args...)
	wantExit(t, append([]string{"audit"}, args...), code, stdout, stderr, 0)
	return stdout
}

// replay runs `audit replay args...` and decodes its JSON Lines.
func replay(t *testing.T, ts *apptest.Server, args ...string) []audit.Record {
	t.Helper()
	out := mustAudit(t, ts, append([]string{"replay"}, args...)...)
	var recs []audit.Record
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r audit.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("replay %v: line %d is not a record: %v\n%s", args, len(recs)+1, err, out)
		}
		recs = append(recs, r)
	}
	return recs
}

// adminKeys decodes GET /admin/keys into api_key -> the key.
func adminKeys(t *testing.T, r apptest.Response) (order []string, byKey map[string]map[string]any) {
	t.Helper()
	apptest.WantStatus(t, r, http.StatusOK)
	var list struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil || list.Keys == nil {
		t.Fatalf("got %s, want {\"keys\":[...]}", r.Body)
	}
	byKey = map[string]map[string]any{}
	for _, k := range list.Keys {
		id, _ := k["api_key"].(string)
		order = append(order, id)
		byKey[id] = k
	}
	return order, byKey
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestAdmin_HTTP(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	bobID := ts.Register(t, "bob@example.com", apptest.Password)
	aliceToken := ts.Login(t, "alice@example.com", apptest.Password)
	bobToken := ts.Login(t, "bob@example.com", apptest.Password)
	a1 := ts.CreateKey(t, aliceToken, `{"name":"a1"}`)
	a2 := ts.CreateKey(t, aliceToken, `{"name":"a2"}`)
	a3 := ts.CreateKey(t, aliceToken, `{"name":"a3"}`)
	b1 := ts.CreateKey(t, bobToken, `{"name":"b1"}`)
	rootID := ts.CreateUser(t, "root@example.com", true)
	ts.CaughtUp(t)
	rootToken := ts.Login(t, "root@example.com", apptest.Password)
	unknownUser, unknownKey := "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"

	routes := []struct{ method, path, body string }{
		{"GET", "/admin/keys", ""},
		{"GET", "/admin/keys?user=" + bobID + "&status=active", ""},
		{"DELETE", "/admin/keys/" + b1.Key, `{"reason":"mine now"}`},
		{"POST", "/admin/users/" + bobID + "/disable", `{"reason":"mine now"}`},
		{"POST", "/admin/users/" + bobID + "/revoke-keys", ""},
	}
	t.Run("ErrForbidden", func(t *testing.T) {
		head := apptest.StreamHead(t, ts)
		for _, rt := range routes {
			r := ts.Do(t, rt.method, rt.path, rt.body, apptest.Bearer(aliceToken)...)
			apptest.WantStatus(t, r, http.StatusForbidden)
			if code := r.ErrorCode(t); code != "forbidden" {
				t.Errorf("%s %s: got code %q, want forbidden", rt.method, rt.path, code)
			}
			if bytes.Contains(r.Body, []byte(b1.Key)) {
				t.Errorf("%s %s: a 403 shows a key: %s", rt.method, rt.path, r.Body)
			}
		}
		if got := apptest.StreamHead(t, ts); got != head {
			t.Errorf("refused admin requests appended events: head %d -> %d", head, got)
		}
		if ts.Validate(t, b1) != http.StatusOK {
			t.Error("a refused admin request changed bob's key")
		}
		ts.Login(t, "bob@example.com", apptest.Password)
	})

	t.Run("ErrNoSession", func(t *testing.T) {
		for _, rt := range routes {
			r := ts.Do(t, rt.method, rt.path, rt.body)
			apptest.WantStatus(t, r, http.StatusUnauthorized)
			r.ErrorCode(t)
		}
	})

	t.Run("ListKeys", func(t *testing.T) {
		order, byKey := adminKeys(t, ts.Do(t, "GET", "/admin/keys", "", apptest.Bearer(rootToken)...))
		// Users by email, each user's keys newest first.
		if want := []string{a3.Key, a2.Key, a1.Key, b1.Key}; !slices.Equal(order, want) {
			t.Fatalf("got %v, want %v", order, want)
		}
		k := byKey[a1.Key]
		if k["user_id"] != aliceID || k["name"] != "a1" || k["status"] != "active" || k["created_at"] == nil {
			t.Errorf("got %v, want alice's active key a1 with user_id and created_at", k)
		}
		if _, ok := k["secret"]; ok || bytes.Contains(ts.Do(t, "GET", "/admin/keys", "", apptest.Bearer(rootToken)...).Body, []byte("hash")) {
			t.Errorf("got %v, want no secret or hash in a listing", k)
		}
		order, _ = adminKeys(t, ts.Do(t, "GET", "/admin/keys?user="+bobID, "", apptest.Bearer(rootToken)...))
		if !slices.Equal(order, []string{b1.Key}) {
			t.Errorf("user filter: got %v, want [%s]", order, b1.Key)
		}
		order, _ = adminKeys(t, ts.Do(t, "GET", "/admin/keys?status=revoked", "", apptest.Bearer(rootToken)...))
		if len(order) != 0 {
			t.Errorf("status filter: got %v, want no revoked key yet", order)
		}
		for _, q := range []string{"status=bogus", "status=active,bogus", "status=Active"} {
			r := ts.Do(t, "GET", "/admin/keys?"+q, "", apptest.Bearer(rootToken)...)
			apptest.WantStatus(t, r, http.StatusBadRequest)
			r.ErrorCode(t)
		}
	})

	t.Run("RevokeKey", func(t *testing.T) {
		r := ts.Do(t, "DELETE", "/admin/keys/"+a1.Key, `{"reason":"leaked in a public repo"}`, apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusNoContent)
		if got := ts.Validate(t, a1); got != http.StatusUnauthorized {
			t.Fatalf("revoked key: got %d, want 401 at once", got)
		}
		if got := ts.Validate(t, a2); got != http.StatusOK {
			t.Errorf("another key: got %d, want 200", got)
		}
		k := ts.Do(t, "GET", "/api-keys/"+a1.Key, "", apptest.Bearer(aliceToken)...).JSON(t)
		if k["status"] != "revoked" || k["revoked_at"] == nil {
			t.Errorf("the owner sees %v, want status revoked", k)
		}
		order, _ := adminKeys(t, ts.Do(t, "GET", "/admin/keys?user="+aliceID+"&status=revoked", "", apptest.Bearer(rootToken)...))
		if !slices.Equal(order, []string{a1.Key}) {
			t.Errorf("got %v, want [%s]", order, a1.Key)
		}
		order, _ = adminKeys(t, ts.Do(t, "GET", "/admin/keys?status=active", "", apptest.Bearer(rootToken)...))
		if want := []string{a3.Key, a2.Key, b1.Key}; !slices.Equal(order, want) {
			t.Errorf("got %v, want %v", order, want)
		}
		head := apptest.StreamHead(t, ts)
		apptest.WantStatus(t, ts.Do(t, "DELETE", "/admin/keys/"+a1.Key, "", apptest.Bearer(rootToken)...), http.StatusNoContent)
		if got := apptest.StreamHead(t, ts); got != head {
			t.Errorf("revoking a revoked key appended events: head %d -> %d", head, got)
		}
		r = ts.Do(t, "DELETE", "/admin/keys/"+unknownKey, "", apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusNotFound)
		r.ErrorCode(t)
		revoked := replay(t, ts, "--key", a1.Key, "--type", "key.revoked")
		if len(revoked) != 1 || revoked[0].Actor != "admin:"+rootID || !strings.Contains(string(revoked[0].Data), "leaked in a public repo") {
			t.Errorf("got %+v, want one key.revoked by admin:%s with the reason", revoked, rootID)
		}
	})

	t.Run("RevokeUserKeys", func(t *testing.T) {
		r := ts.Do(t, "POST", "/admin/users/"+aliceID+"/revoke-keys", `{"reason":"offboarding"}`, apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
		var body struct {
			Revoked []string `json:"revoked"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if got, want := sortedCopy(body.Revoked), sortedCopy([]string{a2.Key, a3.Key}); !slices.Equal(got, want) {
			t.Fatalf("got revoked %v, want %v (not the key revoked before)", got, want)
		}
		for _, k := range []apptest.CreatedKey{a2, a3} {
			if got := ts.Validate(t, k); got != http.StatusUnauthorized {
				t.Errorf("%s: got %d, want 401", k.Key, got)
			}
		}
		if got := ts.Validate(t, b1); got != http.StatusOK {
			t.Errorf("bob's key: got %d, want 200", got)
		}
		r = ts.Do(t, "POST", "/admin/users/"+aliceID+"/revoke-keys", "", apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
		if m := r.JSON(t); m["revoked"] == nil || len(m["revoked"].([]any)) != 0 {
			t.Errorf("again: got %s, want {\"revoked\":[]}", r.Body)
		}
		r = ts.Do(t, "POST", "/admin/users/"+unknownUser+"/revoke-keys", "", apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusNotFound)
		r.ErrorCode(t)
	})

	t.Run("DisableUser", func(t *testing.T) {
		apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(bobToken)...), http.StatusOK)
		r := ts.Do(t, "POST", "/admin/users/"+bobID+"/disable", `{"reason":"account compromised"}`, apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusNoContent)
		r = ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(bobToken)...)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
		if r.ErrorCode(t) != "unauthorized" {
			t.Errorf("got %s, want code unauthorized", r.Body)
		}
		if got := ts.Validate(t, b1); got != http.StatusUnauthorized {
			t.Errorf("disabled user's key: got %d, want 401", got)
		}
		wrong := ts.Do(t, "POST", "/sessions", `{"email":"alice@example.com","password":"wrong password, long enough"}`)
		disabled := ts.Do(t, "POST", "/sessions", `{"email":"bob@example.com","password":"`+apptest.Password+`"}`)
		apptest.WantStatus(t, disabled, http.StatusUnauthorized)
		if !bytes.Equal(wrong.Body, disabled.Body) {
			t.Errorf("got %s for a disabled user and %s for a wrong password, want the same", disabled.Body, wrong.Body)
		}
		head := apptest.StreamHead(t, ts)
		apptest.WantStatus(t, ts.Do(t, "POST", "/admin/users/"+bobID+"/disable", "", apptest.Bearer(rootToken)...), http.StatusNoContent)
		if got := apptest.StreamHead(t, ts); got != head {
			t.Errorf("disabling a disabled user appended events: head %d -> %d", head, got)
		}
		r = ts.Do(t, "POST", "/admin/users/"+unknownUser+"/disable", "", apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusNotFound)
		r.ErrorCode(t)
		r = ts.Do(t, "POST", "/admin/users/"+aliceID+"/disable", `{"reason":"x","extra":1}`, apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusBadRequest)
	})

	t.Run("DisabledAdminRefused", func(t *testing.T) {
		mustAdmin(t, ts, "users", "disable", rootID, "--reason", "rotating admins")
		ts.CaughtUp(t)
		r := ts.Do(t, "GET", "/admin/keys", "", apptest.Bearer(rootToken)...)
		apptest.WantStatus(t, r, http.StatusUnauthorized)
	})
}

func TestAdmin_CLI(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	carolID := ts.Register(t, "carol@example.com", apptest.Password)
	aliceToken := ts.Login(t, "alice@example.com", apptest.Password)
	carolToken := ts.Login(t, "carol@example.com", apptest.Password)
	a1 := ts.CreateKey(t, aliceToken, `{"name":"a1"}`)
	a2 := ts.CreateKey(t, aliceToken, `{"name":"deploy"}`)
	c1 := ts.CreateKey(t, carolToken, `{"name":"c1"}`)
	rootID := ts.CreateUser(t, "root@example.com", true)
	ts.CaughtUp(t)

	t.Run("UsersCreate", func(t *testing.T) {
		daveID := ts.CreateUser(t, "dave@example.com", false)
		ts.CaughtUp(t)
		r := ts.Do(t, "GET", "/admin/keys", "", apptest.Bearer(ts.Login(t, "dave@example.com", apptest.Password))...)
		apptest.WantStatus(t, r, http.StatusForbidden)
		var regs []audit.Record
		for _, r := range replay(t, ts, "--type", "user.registered") {
			if r.Aggregate == rootID || r.Aggregate == daveID {
				regs = append(regs, r)
			}
		}
		if len(regs) != 2 || regs[0].Actor != "admin:root" || regs[1].Actor != "admin:root" {
			t.Errorf("got %+v, want root and dave registered by admin:root", regs)
		}
		if !strings.Contains(string(regs[0].Data), `"role":"admin"`) || strings.Contains(string(regs[1].Data), `"role":"admin"`) {
			t.Errorf("got %s and %s, want root an admin and dave not", regs[0].Data, regs[1].Data)
		}
		for _, c := range []struct {
			name  string
			args  []string
			stdin string
			want  int
		}{
			{"ErrDuplicate", []string{"--email", "ALICE@example.com"}, apptest.Password + "\n", 1},
			{"ErrShortPassword", []string{"--email", "erin@example.com"}, "short\n", 1},
			{"ErrNoPassword", []string{"--email", "erin@example.com"}, "", 2},
			{"ErrNoEmail", nil, apptest.Password + "\n", 2},
		} {
			t.Run(c.name, func(t *testing.T) {
				var out, errOut bytes.Buffer
				err := runAdmin(context.Background(), append(append([]string{"users", "create"}, c.args...), adminArgs(t, ts)...),
					strings.NewReader(c.stdin), &out, &errOut)
				got := 0
				var exit exitError
				switch {
				case errors.As(err, &exit):
					got = exit.code
				case errors.As(err, new(usageError)):
					got = 2
				case err != nil:
					got = 1
				}
				if got != c.want {
					t.Errorf("got %v (exit %d), want exit %d", err, got, c.want)
				}
			})
		}
	})

	t.Run("UsersList", func(t *testing.T) {
		out := mustAdmin(t, ts, "users", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[0], "USER") || !strings.Contains(lines[0], "EMAIL") {
			t.Fatalf("got\n%s\nwant a header and 4 users", out)
		}
		for i, want := range []string{"alice@example.com", "carol@example.com", "dave@example.com", "root@example.com"} {
			if !strings.Contains(lines[i+1], want) {
				t.Errorf("row %d: got %q, want %s (sorted by email)", i+1, lines[i+1], want)
			}
		}
		if f := strings.Fields(lines[4]); len(f) < 4 || f[0] != rootID || f[2] != "admin" || f[3] != "active" {
			t.Errorf("got %q, want root as an active admin", lines[4])
		}
		var list struct {
			Users []struct {
				ID, Email, Role string
				Disabled        bool
			} `json:"users"`
		}
		if err := json.Unmarshal([]byte(mustAdmin(t, ts, "users", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Users) != 4 || list.Users[0].ID != aliceID || list.Users[0].Role != "user" || list.Users[3].Role != "admin" {
			t.Errorf("got %+v, want alice first (user) and root last (admin)", list.Users)
		}
	})

	t.Run("KeysList", func(t *testing.T) {
		out := mustAdmin(t, ts, "keys", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "API KEY") {
			t.Fatalf("got\n%s\nwant a header and 3 keys", out)
		}
		for i, k := range []apptest.CreatedKey{a2, a1, c1} {
			if f := strings.Fields(lines[i+1]); len(f) < 3 || f[0] != k.Key || f[2] != "active" {
				t.Errorf("row %d: got %q, want %s active", i+1, lines[i+1], k.Key)
			}
		}
		var list struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal([]byte(mustAdmin(t, ts, "keys", "list", "--json", "--user", aliceID)), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Keys) != 2 || list.Keys[0]["api_key"] != a2.Key || list.Keys[0]["user_id"] != aliceID ||
			list.Keys[0]["name"] != "deploy" || list.Keys[0]["status"] != "active" {
			t.Errorf("got %v, want alice's two keys, newest first", list.Keys)
		}
		if out := mustAdmin(t, ts, "keys", "list", "--status", "revoked"); strings.Count(out, "\n") != 1 {
			t.Errorf("got\n%s\nwant only the header", out)
		}
	})

	t.Run("KeysRevoke", func(t *testing.T) {
		node := &app.Node{Config: app.NodeConfig{NATSURL: ts.NATSURL(), HTTPAddr: "127.0.0.1:0",
			NATSClient: app.NATSClientConfig{Creds: ts.CredsFile(natsauth.Validator)}}}
		if err := node.Open(context.Background()); err != nil {
			t.Fatalf("node Open: %v", err)
		}
		defer node.Close(context.Background())
		natstest.Eventually(t, 10*time.Second, func() bool { return node.Validator().Status().Ready }, "validation node ready")
		if _, err := node.Validator().Validate(context.Background(), a1.Key, a1.Secret); err != nil {
			t.Fatalf("node, before: got %v, want a1 valid", err)
		}

		out := mustAdmin(t, ts, "keys", "revoke", a1.Key, "--reason", "leaked in a public repo")
		if out != "revoked "+a1.Key+"\n" {
			t.Errorf("got %q, want revoked %s", out, a1.Key)
		}
		natstest.Eventually(t, 10*time.Second, func() bool {
			_, err := node.Validator().Validate(context.Background(), a1.Key, a1.Secret)
			return errors.Is(err, validator.ErrUnauthorized)
		}, "the validation node refuses the revoked key")
		ts.CaughtUp(t)
		if got := ts.Validate(t, a1); got != http.StatusUnauthorized {
			t.Errorf("serve /validate: got %d, want 401", got)
		}
		if got := ts.Validate(t, a2); got != http.StatusOK {
			t.Errorf("another key: got %d, want 200", got)
		}
		if out := mustAdmin(t, ts, "keys", "list", "--status", "revoked"); !strings.Contains(out, a1.Key) || strings.Count(out, "\n") != 2 {
			t.Errorf("got\n%s\nwant the header and a1", out)
		}
		head := apptest.StreamHead(t, ts)
		mustAdmin(t, ts, "keys", "revoke", a1.Key, "--reason", "again")
		if got := apptest.StreamHead(t, ts); got != head {
			t.Errorf("revoking a revoked key appended events: head %d -> %d", head, got)
		}
		revoked := replay(t, ts, "--type", "key.revoked")
		if len(revoked) != 1 || revoked[0].Aggregate != a1.Key || revoked[0].Actor != "admin:root" ||
			!strings.Contains(string(revoked[0].Data), `"reason":"leaked in a public repo"`) {
			t.Errorf("got %+v, want one key.revoked of a1 by admin:root with the reason", revoked)
		}
	})

	t.Run("UsersDisableEnable", func(t *testing.T) {
		if out := mustAdmin(t, ts, "users", "disable", carolID, "--reason", "account compromised"); out != "disabled "+carolID+"\n" {
			t.Errorf("got %q, want disabled %s", out, carolID)
		}
		ts.CaughtUp(t)
		apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(carolToken)...), http.StatusUnauthorized)
		if got := ts.Validate(t, c1); got != http.StatusUnauthorized {
			t.Errorf("disabled user's key: got %d, want 401", got)
		}
		apptest.WantStatus(t, ts.Do(t, "POST", "/sessions", `{"email":"carol@example.com","password":"`+apptest.Password+`"}`), http.StatusUnauthorized)
		var list struct {
			Users []struct {
				ID       string
				Disabled bool
			} `json:"users"`
		}
		if err := json.Unmarshal([]byte(mustAdmin(t, ts, "users", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		for _, u := range list.Users {
			if u.Disabled != (u.ID == carolID) {
				t.Errorf("got %s disabled %v, want only carol disabled", u.ID, u.Disabled)
			}
		}

		if out := mustAdmin(t, ts, "users", "enable", carolID); out != "enabled "+carolID+"\n" {
			t.Errorf("got %q, want enabled %s", out, carolID)
		}
		ts.CaughtUp(t)
		// The disable ended carol's sessions for good: a new login works.
		apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(carolToken)...), http.StatusUnauthorized)
		if got := ts.Validate(t, c1); got != http.StatusOK {
			t.Errorf("enabled user's key: got %d, want 200", got)
		}
		apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(ts.Login(t, "carol@example.com", apptest.Password))...), http.StatusOK)
		evs := replay(t, ts, "--user", carolID, "--from-seq", "1")
		var types []string
		for _, e := range evs {
			if e.Aggregate == carolID {
				types = append(types, e.Type+" by "+e.Actor)
			}
		}
		if want := []string{"user.registered by " + carolID, "user.disabled by admin:root", "user.enabled by admin:root"}; !slices.Equal(types, want) {
			t.Errorf("got %v, want %v", types, want)
		}
	})

	t.Run("UsersRevokeSessions", func(t *testing.T) {
		token := ts.Login(t, "carol@example.com", apptest.Password)
		if out := mustAdmin(t, ts, "users", "revoke-sessions", carolID, "--reason", "laptop stolen"); out != "revoked the sessions of "+carolID+"\n" {
			t.Errorf("got %q, want revoked the sessions of %s", out, carolID)
		}
		apptest.WantStatus(t, ts.Do(t, "GET", "/api-keys", "", apptest.Bearer(token)...), http.StatusUnauthorized)
		if got := ts.Validate(t, c1); got != http.StatusOK {
			t.Errorf("carol's key after her sessions were revoked: got %d, want 200", got)
		}
		if evs := replay(t, ts, "--user", carolID, "--type", "user.sessions_revoked"); len(evs) != 1 || evs[0].Actor != "admin:root" ||
			!strings.Contains(string(evs[0].Data), "laptop stolen") {
			t.Errorf("got %+v, want one user.sessions_revoked by admin:root with the reason", evs)
		}
	})

	t.Run("UsersRevokeKeys", func(t *testing.T) {
		out := mustAdmin(t, ts, "users", "revoke-keys", aliceID, "--reason", "offboarding")
		if out != "revoked "+a2.Key+"\n1 keys revoked\n" {
			t.Errorf("got %q, want a2 revoked (a1 was already)", out)
		}
		ts.CaughtUp(t)
		if got := ts.Validate(t, a2); got != http.StatusUnauthorized {
			t.Errorf("got %d, want 401", got)
		}
		if got := ts.Validate(t, c1); got != http.StatusOK {
			t.Errorf("carol's key: got %d, want 200", got)
		}
		if out := mustAdmin(t, ts, "users", "revoke-keys", aliceID, "--reason", "again"); out != "0 keys revoked\n" {
			t.Errorf("again: got %q, want 0 keys revoked", out)
		}
		revoked := replay(t, ts, "--key", a2.Key, "--type", "key.revoked")
		if len(revoked) != 1 || revoked[0].Actor != "admin:root" || !strings.Contains(string(revoked[0].Data), "offboarding") {
			t.Errorf("got %+v, want a2 revoked by admin:root for offboarding", revoked)
		}
	})

	t.Run("ExitCodes", func(t *testing.T) {
		unknownUser, unknownKey := "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
		for _, c := range []struct {
			name   string
			args   []string
			after  []string // flags that override those adminArgs sets
			want   int
			stderr string
		}{
			{"RevokeUnknownKey", []string{"keys", "revoke", unknownKey, "--reason", "r"}, nil, 1, "not found"},
			{"DisableUnknownUser", []string{"users", "disable", unknownUser, "--reason", "r"}, nil, 1, "not found"},
			{"EnableUnknownUser", []string{"users", "enable", unknownUser}, nil, 1, "not found"},
			{"RevokeKeysUnknownUser", []string{"users", "revoke-keys", unknownUser, "--reason", "r"}, nil, 1, "not found"},
			{"ReasonTooLong", []string{"keys", "revoke", c1.Key, "--reason", strings.Repeat("r", 501)}, nil, 1, "reason"},
			{"RevokeWithoutReason", []string{"keys", "revoke", c1.Key}, nil, 2, "--reason is required"},
			{"DisableWithoutReason", []string{"users", "disable", carolID}, nil, 2, "--reason is required"},
			{"RevokeKeysWithoutReason", []string{"users", "revoke-keys", carolID}, nil, 2, "--reason is required"},
			{"RevokeWithoutKey", []string{"keys", "revoke", "--reason", "r"}, nil, 2, "missing api key"},
			{"TwoKeys", []string{"keys", "revoke", c1.Key, a1.Key, "--reason", "r"}, nil, 2, "unexpected arguments"},
			{"BadStatus", []string{"keys", "list", "--status", "bogus"}, nil, 2, "--status"},
			{"UnknownFlag", []string{"keys", "list", "--bogus"}, nil, 2, "bogus"},
			{"UnknownSubcommand", []string{"keys", "frobnicate"}, nil, 2, `keyledger admin keys: unknown command "frobnicate"`},
			{"UnknownGroup", []string{"groups", "list"}, nil, 2, `keyledger admin: unknown command "groups"`},
			// Who acts is the admin key's admin: there is no --name to claim another.
			{"NoNameFlag", []string{"users", "list"}, []string{"--name", "mallory"}, 2, "-name"},
			{"MissingAdminKey", []string{"users", "list"}, []string{"--key", t.TempDir() + "/none.key"}, 2, "--key"},
		} {
			t.Run(c.name, func(t *testing.T) {
				args := append(append(append([]string{"admin"}, c.args...), adminArgs(t, ts)...), c.after...)
				code, stdout, stderr := cliRun(t, args...)
				wantExit(t, args, code, stdout, stderr, c.want)
				wantContains(t, "stderr", stderr, c.stderr)
			})
		}
		t.Run("Bare", func(t *testing.T) {
			code, stdout, stderr := cliRun(t, "admin")
			wantExit(t, []string{"admin"}, code, stdout, stderr, 2)
			wantContains(t, "stderr", stderr, "Exit codes")
		})
		t.Run("Help", func(t *testing.T) {
			code, stdout, stderr := cliRun(t, "admin", "keys", "revoke", "-h")
			wantExit(t, []string{"admin", "keys", "revoke", "-h"}, code, stdout, stderr, 0)
			wantContains(t, "stdout", stdout, "--reason")
		})
		if got := ts.Validate(t, c1); got != http.StatusOK {
			t.Errorf("refused commands changed carol's key: got %d, want 200", got)
		}
	})

	// The help shows flags before the id ("revoke <api_key> --reason" and
	// "--reason TEXT <id>" are both accepted); a flag on each side, as in
	// `admin keys revoke --reason r ak_... --nats-url ...`, must work too.
	t.Run("FlagsAroundID", func(t *testing.T) {
		args := append([]string{"admin", "users", "enable", "--reason", "already enabled", carolID}, adminArgs(t, ts)...)
		code, stdout, stderr := cliRun(t, args...)
		wantExit(t, args, code, stdout, stderr, 0)
	})

	t.Run("ErrServeUnreachable", func(t *testing.T) {
		closed := "http://" + apptest.FreeAddr(t)
		for _, args := range [][]string{
			{"admin", "keys", "list", "--url", closed, "--key", ts.RootAdmin(t).File},
			{"admin", "keys", "revoke", a2.Key, "--reason", "r", "--url", closed, "--key", ts.RootAdmin(t).File},
		} {
			code, stdout, stderr := cliRun(t, args...)
			wantExit(t, args, code, stdout, stderr, 3)
		}
	})

	t.Run("ErrLogUnreachable", func(t *testing.T) {
		closed := "nats://" + apptest.FreeAddr(t)
		// They retry the first connection within --start-timeout, then exit.
		for _, args := range [][]string{
			{"admin", "ledger-keys", "list", "--nats-url", closed, "--signing-key", ts.Config.SigningKeyFile, "--start-timeout", "1s"},
			{"audit", "verify", "--nats-url", closed, "--start-timeout", "1s"},
		} {
			done := make(chan struct{})
			var code int
			var stdout, stderr string
			go func() {
				defer close(done)
				code, stdout, stderr = cliRun(t, args...)
			}()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatalf("keyledger %s: still running after 15s, want exit 3 once --start-timeout passed", strings.Join(args, " "))
			}
			wantExit(t, args, code, stdout, stderr, 3)
			wantContains(t, "stderr", stderr, "connect to NATS")
		}
	})
}

// startCluster starts a three-node JetStream cluster on loopback and
// returns its client URLs, comma-separated.
func startCluster(t *testing.T) string {
	t.Helper()
	routes := make([]string, 3)
	ports := make([]int, 3)
	for i := range routes {
		addr := apptest.FreeAddr(t)
		_, p, _ := net.SplitHostPort(addr)
		ports[i], _ = strconv.Atoi(p)
		routes[i] = "nats-route://" + addr
	}
	var urls []string
	for i := range 3 {
		s, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), ServerName: fmt.Sprintf("n%d", i),
			Options: func(o *server.Options) {
				o.Cluster.Name, o.Cluster.Host, o.Cluster.Port = "keyledger-test", "127.0.0.1", ports[i]
				o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// An admin command on a replicated log must leave its replication alone.
func TestAdmin_KeepsReplicas(t *testing.T) {
	t.Parallel()
	urls := startCluster(t)
	dir := t.TempDir()
	s := &app.Server{Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSURL: urls, Replicas: 3,
		Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, CheckpointInterval: -1}}
	if err := s.Open(context.Background()); err != nil {
		s.Close(context.Background())
		t.Fatalf("Open: %v", err)
	}
	defer s.Close(context.Background())
	replicasOf := func(stream string) int {
		nc, err := nats.Connect(urls)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		st, err := js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config.Replicas
	}
	replicas := func() int { return replicasOf("KEYLEDGER") }
	if got := replicas(); got != 3 {
		t.Fatalf("serve --replicas 3: got %d replicas", got)
	}
	if got := replicasOf("KV_KEYLEDGER_IDEMPOTENCY"); got != 3 {
		t.Fatalf("serve --replicas 3: got %d replicas of the idempotency bucket, want 3", got)
	}
	args := []string{"admin", "ledger-keys", "list", "--nats-url", urls, "--signing-key", s.Config.SigningKeyFile}
	code, stdout, stderr := cliRun(t, args...)
	wantExit(t, args, code, stdout, stderr, 0)
	if got := replicas(); got != 3 {
		t.Fatalf("after `keyledger admin ledger-keys list`: got %d replicas, want 3 still", got)
	}
}
