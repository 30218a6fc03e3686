package api_test

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
)

// teamIDs are the team ids a team golden file masks (the other volatile
// parts golden masks itself).
var teamIDs = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`tmi_[0-9A-Z]{26}\.[A-Za-z0-9_-]{43}`), "tmi_ULID.TOKEN"},
	{regexp.MustCompile(`tmi_[0-9A-Z]{26}`), "tmi_ULID"},
	{regexp.MustCompile(`tm_[0-9A-Z]{26}`), "tm_ULID"},
	{regexp.MustCompile(`sa_[0-9A-Z]{26}`), "sa_ULID"},
}

// teamGolden is golden with the team ids masked too.
func teamGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	for _, m := range teamIDs {
		body = m.re.ReplaceAll(body, []byte(m.with))
	}
	golden(t, name, body)
}

// teamsWalkThrough checks the team routes against the document: each
// success and the refusals a member or an outsider meets.
func teamsWalkThrough(t *testing.T, d *openAPIDoc) {
	ts := apptest.StartWith(t, t.TempDir(), func(c *app.ServeConfig) {})
	defer ts.Stop(t)
	do := func(method, docPath, path, body string, headers ...string) apptest.Response {
		t.Helper()
		r := ts.Do(t, method, path, body, headers...)
		d.check(t, method, docPath, r)
		return r
	}
	root := ts.RootAdmin(t)
	signed := func(method, docPath, path, body string) apptest.Response {
		t.Helper()
		return do(method, docPath, path, body, ts.AdminSigned(t, root, method, path, body)...)
	}
	ts.CreateUser(t, "olga@example.com", false)
	bobID := ts.CreateUser(t, "bob@example.com", false)
	ts.CaughtUp(t)
	olga := apptest.Bearer(ts.Login(t, "olga@example.com", apptest.Password))
	bob := apptest.Bearer(ts.Login(t, "bob@example.com", apptest.Password))

	r := do("POST", "/teams", "/teams", `{"name":"Payments"}`, olga...)
	apptest.WantStatus(t, r, http.StatusCreated)
	teamGolden(t, "create_team", r.Body)
	team := r.JSON(t)["id"].(string)
	apptest.WantStatus(t, do("POST", "/teams", "/teams", `{"name":""}`, olga...), http.StatusBadRequest)
	apptest.WantStatus(t, do("GET", "/teams", "/teams", "", olga...), http.StatusOK)
	apptest.WantStatus(t, do("GET", "/teams/{team}", "/teams/"+team, "", olga...), http.StatusOK)
	apptest.WantStatus(t, do("GET", "/teams/{team}", "/teams/"+team, "", bob...), http.StatusNotFound)
	apptest.WantStatus(t, do("GET", "/teams/{team}/members", "/teams/"+team+"/members", "", olga...), http.StatusOK)

	r = do("POST", "/teams/{team}/invitations", "/teams/"+team+"/invitations", `{"role":"developer","expires_in":"1h"}`, olga...)
	apptest.WantStatus(t, r, http.StatusCreated)
	teamGolden(t, "team_invitation", r.Body)
	token := r.JSON(t)["token"].(string)
	apptest.WantStatus(t, do("POST", "/teams/join", "/teams/join", `{"token":"`+token+`"}`, bob...), http.StatusOK)
	apptest.WantStatus(t, do("POST", "/teams/join", "/teams/join", `{"token":"`+token+`"}`, bob...), http.StatusNotFound)
	apptest.WantStatus(t, do("POST", "/teams/{team}/invitations", "/teams/"+team+"/invitations", `{"role":"viewer"}`, bob...), http.StatusForbidden)

	r = do("POST", "/teams/{team}/api-keys", "/teams/"+team+"/api-keys", `{"name":"ci"}`, bob...)
	apptest.WantStatus(t, r, http.StatusCreated)
	apptest.WantStatus(t, do("GET", "/teams/{team}/api-keys", "/teams/"+team+"/api-keys", "", bob...), http.StatusOK)

	r = do("POST", "/teams/{team}/service-accounts", "/teams/"+team+"/service-accounts", `{"name":"deployer"}`, olga...)
	apptest.WantStatus(t, r, http.StatusCreated)
	sa := r.JSON(t)["id"].(string)
	saPath := "/teams/" + team + "/service-accounts/" + sa
	apptest.WantStatus(t, do("GET", "/teams/{team}/service-accounts", "/teams/"+team+"/service-accounts", "", bob...), http.StatusOK)
	r = do("POST", "/teams/{team}/service-accounts/{sa}/api-keys", saPath+"/api-keys", `{"name":"deploy"}`, olga...)
	apptest.WantStatus(t, r, http.StatusCreated)
	teamGolden(t, "create_service_account_key", r.Body)
	saKey, saSecret := r.JSON(t)["api_key"].(string), r.JSON(t)["secret"].(string)
	r = ts.Do(t, "GET", "/validate", "", "X-Api-Key", apptest.Base64(saKey), "X-Api-Secret", apptest.Base64(saSecret))
	apptest.WantStatus(t, r, http.StatusOK)
	teamGolden(t, "validate_service_account_key", r.Body)
	apptest.WantStatus(t, do("POST", "/teams/{team}/service-accounts/{sa}/api-keys", saPath+"/api-keys", `{}`, bob...), http.StatusForbidden)
	apptest.WantStatus(t, do("POST", "/teams/{team}/service-accounts/{sa}/disable", saPath+"/disable", `{"reason":"rotate"}`, olga...), http.StatusNoContent)
	apptest.WantStatus(t, do("POST", "/teams/{team}/service-accounts/{sa}/enable", saPath+"/enable", ``, olga...), http.StatusNoContent)
	apptest.WantStatus(t, do("DELETE", "/teams/{team}/service-accounts/{sa}", saPath, "", olga...), http.StatusNoContent)

	member := "/teams/" + team + "/members/" + bobID
	apptest.WantStatus(t, do("PATCH", "/teams/{team}/members/{user}", member, `{"role":"viewer"}`, olga...), http.StatusOK)
	apptest.WantStatus(t, do("PATCH", "/teams/{team}/members/{user}", member, `{"role":"god"}`, olga...), http.StatusBadRequest)
	apptest.WantStatus(t, do("DELETE", "/teams/{team}/members/{user}", "/teams/"+team+"/members/"+bobID, "", bob...), http.StatusNoContent)

	apptest.WantStatus(t, signed("GET", "/admin/teams", "/admin/teams", ""), http.StatusOK)
	// Every key, the team's with their owner.
	if r := signed("GET", "/admin/keys", "/admin/keys", ""); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"owner":{"type":"team"`)) {
		t.Errorf("GET /admin/keys: got %d %s, want the team's keys with their owner", r.Status, r.Body)
	}
	apptest.WantStatus(t, signed("GET", "/admin/teams/{team}/members", "/admin/teams/"+team+"/members", ""), http.StatusOK)
	apptest.WantStatus(t, signed("POST", "/admin/teams/{team}/transfer", "/admin/teams/"+team+"/transfer", `{"owner":"`+bobID+`"}`), http.StatusNoContent)
	apptest.WantStatus(t, signed("POST", "/admin/teams/{team}/disable", "/admin/teams/"+team+"/disable", `{"reason":"abuse"}`), http.StatusNoContent)
	apptest.WantStatus(t, signed("POST", "/admin/teams/{team}/enable", "/admin/teams/"+team+"/enable", `{}`), http.StatusNoContent)
}
