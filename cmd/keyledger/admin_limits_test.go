package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/audit"
)

// TestAdmin_KeyLimits: an admin changes a key's limits with a signed
// PATCH and tops up its credits with admin keys add-credits, in force at
// once and recorded with the admin as actor; audit verify accepts the
// kept requests, audit state shows the limits and the credits granted,
// audit replay the top-up. Bad numbers are usage errors, a key without
// credits a refusal.
func TestAdmin_KeyLimits(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", apptest.Password)
	token := ts.Login(t, "alice@example.com", apptest.Password)
	k := ts.CreateKey(t, token, `{"name":"metered","credits":{"remaining":100}}`)
	plain := ts.CreateKey(t, token, `{"name":"plain"}`)
	ts.CaughtUp(t)

	r := ts.AdminDo(t, ts.RootAdmin(t), "PATCH", "/admin/keys/"+k.Key,
		`{"rate_limit":{"limit":5,"window":"1m"},"credits":{"remaining":10,"refill":{"amount":10,"interval":"1d"}}}`)
	apptest.WantStatus(t, r, http.StatusOK)
	if got, _ := json.Marshal(r.JSON(t)["rate_limit"]); string(got) != `{"limit":5,"window":"1m"}` {
		t.Errorf("PATCH rate_limit: got %s", got)
	}
	if out := mustAdmin(t, ts, "keys", "add-credits", k.Key, "25", "--reason", "goodwill"); out != "added 25 credits to "+k.Key+": 35 remaining\n" {
		t.Errorf("add-credits: got %q", out)
	}
	r = ts.Do(t, "GET", "/api-keys/"+k.Key, "", apptest.Bearer(token)...)
	if c, _ := r.JSON(t)["credits"].(map[string]any); c == nil || c["remaining"] != float64(35) {
		t.Errorf("owner's view after the top-up: got %s, want 35 remaining", r.Body)
	}
	for _, args := range [][]string{
		{"keys", "add-credits", k.Key},
		{"keys", "add-credits", k.Key, "0"},
		{"keys", "add-credits", k.Key, "-5"},
		{"keys", "add-credits", k.Key, "1000000000001"},
		{"keys", "add-credits", k.Key, "5", "6"},
	} {
		if code, _, stderr := adminCLI(t, ts, args...); code != 2 {
			t.Errorf("%q: got exit %d (%s), want 2", args, code, stderr)
		}
	}
	if code, _, stderr := adminCLI(t, ts, "keys", "add-credits", plain.Key, "5"); code != 1 || !strings.Contains(stderr, "no credits") {
		t.Errorf("a key without credits: got exit %d (%s), want 1 saying it has no credits", code, stderr)
	}
	ts.CaughtUp(t)

	recs := replay(t, ts, "--type", "key.credits_added")
	if len(recs) != 1 || recs[0].Actor != "admin:root" || !strings.Contains(string(recs[0].Data), `"add":25`) ||
		!strings.Contains(string(recs[0].Data), `"reason":"goodwill"`) {
		t.Errorf("replay key.credits_added: got %+v", recs)
	}
	var state map[string]json.RawMessage
	if err := json.Unmarshal([]byte(mustAudit(t, ts, "state", "--key", k.Key, "--json")), &state); err != nil {
		t.Fatal(err)
	}
	var rate struct {
		Limit  uint64
		Window string
	}
	if err := json.Unmarshal(state["rate_limit"], &rate); err != nil || rate.Limit != 5 || rate.Window != "1m" {
		t.Errorf("state rate_limit: got %s", state["rate_limit"])
	}
	var credits struct {
		Granted, Initial, Added, Epoch uint64
		Refill                         *struct{ Amount uint64 }
	}
	if err := json.Unmarshal(state["credits"], &credits); err != nil || credits.Granted != 35 || credits.Initial != 10 ||
		credits.Added != 25 || credits.Epoch != 3 || credits.Refill == nil || credits.Refill.Amount != 10 {
		t.Errorf("state credits: got %s, want 35 granted (10 set at version 3, 25 added), refilled to 10", state["credits"])
	}
	if text := mustAudit(t, ts, "state", "--key", plain.Key); strings.Contains(text, "rate_limit:") || strings.Contains(text, "credits:") {
		t.Errorf("state of a key without limits: got %s, want no rate_limit or credits lines", text)
	}

	var report audit.Report
	if err := json.Unmarshal([]byte(mustAudit(t, ts, "verify", "--state-dir", "", "--json")), &report); err != nil {
		t.Fatal(err)
	}
	// The PATCH (two events, one request) and the top-up.
	if !report.OK() || report.AdminRequests < 3 {
		t.Errorf("audit verify after the admin's edit and top-up: got %d admin requests verified, problems %v; want at least 3 and none",
			report.AdminRequests, report.Problems)
	}
}
