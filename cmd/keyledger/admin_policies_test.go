package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/audit"
)

// TestAdmin_KeyPolicies: admin keys set-scopes, disable and enable act on
// any user's key through serve's admin API, in force at once, recorded
// with the admin as actor; audit state shows scopes, metadata, status and
// the grace period at an instant, and audit replay the new event types.
func TestAdmin_KeyPolicies(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	k := ts.CreateKey(t, token, `{"name":"orders","scopes":["orders:read"],"metadata":{"plan":"pro"}}`)
	ts.CaughtUp(t)
	creds := []string{"X-Api-Key", apptest.Base64(k.Key), "X-Api-Secret", apptest.Base64(k.Secret)}

	if out := mustAdmin(t, ts, "keys", "set-scopes", k.Key, "--scopes", "billing:read,orders:*"); out != k.Key+" scopes: billing:read orders:*\n" {
		t.Errorf("set-scopes: got %q", out)
	}
	if r := ts.Do(t, "GET", "/validate?scope=orders:write", "", creds...); r.Status != http.StatusOK {
		t.Errorf("after set-scopes: got %d, want 200", r.Status)
	}
	if code, _, stderr := adminCLI(t, ts, "keys", "set-scopes", k.Key, "--scopes", "orders read,x y z,a*b"); code != 2 {
		t.Errorf("invalid scope: got exit %d (%s), want 2", code, stderr)
	}
	if code, _, _ := adminCLI(t, ts, "keys", "disable", k.Key); code != 2 {
		t.Errorf("disable without --reason: got exit %d, want 2", code)
	}
	if out := mustAdmin(t, ts, "keys", "disable", k.Key, "--reason", "suspicious traffic"); out != "disabled "+k.Key+"\n" {
		t.Errorf("disable: got %q", out)
	}
	if got := ts.Validate(t, k); got != http.StatusUnauthorized {
		t.Errorf("disabled: got %d, want 401", got)
	}
	if code, _, _ := adminCLI(t, ts, "keys", "disable", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", "--reason", "x"); code != 1 {
		t.Errorf("disable an unknown key: got exit %d, want 1", code)
	}
	mustAdmin(t, ts, "keys", "enable", k.Key)
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Errorf("enabled: got %d, want 200", got)
	}
	for _, typ := range []string{"key.scopes_changed", "key.disabled", "key.enabled"} {
		recs := replay(t, ts, "--type", typ)
		if len(recs) != 1 || recs[0].Actor != "admin:root" || recs[0].Aggregate != k.Key {
			t.Errorf("replay %s: got %+v, want one event of %s by admin:root", typ, recs, k.Key)
		}
	}

	r := ts.Do(t, "POST", "/api-keys/"+k.Key+"/regenerate", `{"grace_period":"1h"}`, apptest.Bearer(token)...)
	apptest.WantStatus(t, r, http.StatusOK)
	ts.CaughtUp(t)
	state := func(at time.Time) map[string]any {
		t.Helper()
		var m map[string]any
		out := mustAudit(t, ts, "state", "--key", k.Key, "--at", at.Format(time.RFC3339Nano), "--json")
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("state: %v in %s", err, out)
		}
		return m
	}
	now := state(time.Now())
	deadline, err := time.Parse(time.RFC3339Nano, now["previous_secret_expires_at"].(string))
	if err != nil {
		t.Fatalf("previous_secret_expires_at: %v", err)
	}
	if now["previous_secret_in_grace"] != true || now["status"] != "active" {
		t.Errorf("state now: got %v, want the previous secret in its grace period", now)
	}
	if got, _ := json.Marshal(now["scopes"]); string(got) != `["billing:read","orders:*"]` {
		t.Errorf("state scopes: got %s", got)
	}
	if got, _ := json.Marshal(now["metadata"]); string(got) != `{"plan":"pro"}` {
		t.Errorf("state metadata: got %s", got)
	}
	if later := state(deadline); later["previous_secret_in_grace"] != false {
		t.Errorf("state at the deadline: got %v, want the grace period over", later)
	}
	// Before the admin disabled it... and while it was disabled.
	text := mustAudit(t, ts, "state", "--key", k.Key)
	for _, want := range []string{"scopes:", "orders:*", "metadata:", `{"plan":"pro"}`, "previous_secret_in_grace:", "key.disabled", "by admin:root"} {
		if !strings.Contains(text, want) {
			t.Errorf("state text: got %s, want %q in it", text, want)
		}
	}

	// One signed PATCH of two fields is two events keeping one request:
	// audit verify takes it as one command, not a replay.
	r = ts.AdminDo(t, ts.RootAdmin(t), "PATCH", "/admin/keys/"+k.Key, `{"name":"orders-v2","metadata":{"plan":"team"}}`)
	apptest.WantStatus(t, r, http.StatusOK)
	ts.CaughtUp(t)
	var report audit.Report
	if err := json.Unmarshal([]byte(mustAudit(t, ts, "verify", "--state-dir", "", "--json")), &report); err != nil {
		t.Fatal(err)
	}
	if !report.OK() || report.AdminRequests < 5 {
		t.Errorf("audit verify after the admin's edits: got %d admin requests verified, problems %v; want at least 5 and none", report.AdminRequests, report.Problems)
	}
}
