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

// TestAdminTeams: keyledger admin teams list, transfer, disable and
// enable act on a team; audit verify then checks every request they
// kept (and an erasure's team removals), and audit state and replay
// show the team, its members and its keys at any instant.
func TestAdminTeams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startCheckpointedServer(t, dir)
	defer ts.Stop(t)
	aliceID := ts.Register(t, "alice@example.com", apptest.Password)
	bobID := ts.Register(t, "bob@example.com", apptest.Password)
	alice := apptest.Bearer(ts.Login(t, "alice@example.com", apptest.Password))
	bob := apptest.Bearer(ts.Login(t, "bob@example.com", apptest.Password))
	r := ts.Do(t, "POST", "/teams", `{"name":"Payments"}`, alice...)
	apptest.WantStatus(t, r, http.StatusCreated)
	team := r.JSON(t)["id"].(string)
	r = ts.Do(t, "POST", "/teams/"+team+"/invitations", `{"role":"developer"}`, alice...)
	apptest.WantStatus(t, r, http.StatusCreated)
	apptest.WantStatus(t, ts.Do(t, "POST", "/teams/join", `{"token":"`+r.JSON(t)["token"].(string)+`"}`, bob...), http.StatusOK)
	r = ts.Do(t, "POST", "/teams/"+team+"/api-keys", `{"name":"ci"}`, bob...)
	apptest.WantStatus(t, r, http.StatusCreated)
	k := apptest.CreatedKey{Key: r.JSON(t)["api_key"].(string), Secret: r.JSON(t)["secret"].(string)}
	beforeDisable := time.Now().UTC()

	wantContains(t, "teams list", mustAdmin(t, ts, "teams", "list"), team, `"Payments"`, "active")
	mustAdmin(t, ts, "teams", "disable", team, "--reason", "abuse report")
	if got := ts.Validate(t, k); got != http.StatusUnauthorized {
		t.Errorf("key of a disabled team: got %d, want 401", got)
	}
	mustAdmin(t, ts, "teams", "enable", team)
	if got := ts.Validate(t, k); got != http.StatusOK {
		t.Errorf("key of a re-enabled team: got %d, want 200", got)
	}
	// The last owner is erased: the team stays, with no owner, and an
	// admin gives it one.
	mustAdmin(t, ts, "users", "erase", aliceID, "--reason", "left")
	mustAdmin(t, ts, "teams", "transfer", team, "--owner", bobID, "--reason", "alice left")
	if r := ts.Do(t, "GET", "/teams/"+team, "", bob...); r.JSON(t)["role"] != "owner" {
		t.Errorf("after the transfer: %s, want bob an owner", r.Body)
	}
	if code, _, stderr := adminCLI(t, ts, "teams", "disable", team); code != 2 || !strings.Contains(stderr, "--reason") {
		t.Errorf("disable without a reason: exit %d, %s", code, stderr)
	}

	verifyArgs := []string{"verify", "--state-dir", ""}
	var report audit.Report
	if err := json.Unmarshal([]byte(mustAudit(t, ts, append(verifyArgs, "--json")...)), &report); err != nil {
		t.Fatal(err)
	}
	// disable, enable, erase (user.erased, the team removal), transfer.
	if !report.OK() || report.AdminRequests < 4 {
		t.Fatalf("audit verify: got problems %v, %d admin requests verified", report.Problems, report.AdminRequests)
	}
	state := mustAudit(t, ts, "state", "--team", team, "--json")
	var st struct {
		Members  map[string]string `json:"members"`
		Disabled bool              `json:"disabled"`
	}
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 1 || st.Members[bobID] != "owner" || st.Disabled {
		t.Errorf("audit state --team now: %s", state)
	}
	state = mustAudit(t, ts, "state", "--team", team, "--at", beforeDisable.Format(time.RFC3339Nano), "--json")
	st.Members = nil
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		t.Fatal(err)
	}
	if st.Members[aliceID] != "owner" || st.Members[bobID] != "developer" {
		t.Errorf("audit state --team --at before: %s, want alice owner and bob developer", state)
	}
	wantContains(t, "audit state --key", mustAudit(t, ts, "state", "--key", k.Key, "--json"), `"owner_type": "team"`, `"owner_id": "`+team+`"`)
	replay := mustAudit(t, ts, "replay", "--team", team)
	wantContains(t, "audit replay --team", replay, "team.created", "team.member_joined", "team.disabled", "team.ownership_transferred",
		`"aggregate":"`+k.Key+`"`)
	if strings.Contains(replay, "example.com") {
		t.Errorf("audit replay --team shows an email: %s", replay)
	}
}
