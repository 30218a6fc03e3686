package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyledger/keyledger/client"
)

// The team pages: a user's teams, a team's members and keys, inviting a
// member, creating a team key and joining with an invitation. What a role
// may do is the API's to say; the pages show its answer.

func (c *Console) teamRoutes() {
	c.mux.HandleFunc("GET /console/teams", c.signedIn(c.teams))
	c.mux.HandleFunc("POST /console/teams", c.signedIn(c.createTeam))
	c.mux.HandleFunc("POST /console/teams/join", c.signedIn(c.joinTeam))
	c.mux.HandleFunc("GET /console/teams/{team}", c.signedIn(c.teamPage))
	c.mux.HandleFunc("POST /console/teams/{team}/invitations", c.signedIn(c.inviteMember))
	c.mux.HandleFunc("POST /console/teams/{team}/keys", c.signedIn(c.createTeamKey))
}

type teamsView struct {
	Teams []client.Team
	Name  string
}

func (c *Console) teams(w http.ResponseWriter, r *http.Request, api *client.Client) {
	c.renderTeams(w, r, api, http.StatusOK, "", "", "")
}

func (c *Console) renderTeams(w http.ResponseWriter, r *http.Request, api *client.Client, status int, name, notice, failure string) {
	teams, err := api.ListTeams(r.Context())
	if err != nil {
		c.apiFailed(w, r, "Teams", "message", page{SignedIn: true}, err)
		return
	}
	c.render(w, r, status, "teams", page{Title: "Your teams", SignedIn: true, Notice: notice, Error: failure,
		Data: teamsView{Teams: teams, Name: name}})
}

func (c *Console) createTeam(w http.ResponseWriter, r *http.Request, api *client.Client) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	t, err := api.CreateTeam(r.Context(), name)
	if err != nil {
		c.teamsFailed(w, r, api, name, err)
		return
	}
	http.Redirect(w, r, Prefix+"teams/"+url.PathEscape(t.ID), http.StatusSeeOther)
}

func (c *Console) joinTeam(w http.ResponseWriter, r *http.Request, api *client.Client) {
	t, err := api.JoinTeam(r.Context(), strings.TrimSpace(r.PostForm.Get("token")))
	if err != nil {
		c.teamsFailed(w, r, api, "", err)
		return
	}
	http.Redirect(w, r, Prefix+"teams/"+url.PathEscape(t.ID), http.StatusSeeOther)
}

// teamsFailed shows the teams page with the API's refusal.
func (c *Console) teamsFailed(w http.ResponseWriter, r *http.Request, api *client.Client, name string, err error) {
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status == http.StatusUnauthorized {
		c.apiFailed(w, r, "Teams", "message", page{SignedIn: true}, err)
		return
	}
	c.renderTeams(w, r, api, ae.Status, name, "", ae.Message)
}

type teamView struct {
	Team       client.Team
	Members    []client.TeamMember
	Keys       []client.Key
	Next       string
	Invitation *client.TeamInvitation
	KeyName    string
}

// Manages reports whether the role may invite and manage members.
func (v teamView) Manages() bool {
	return v.Team.Role == client.RoleOwner || v.Team.Role == client.RoleAdmin
}

// Creates reports whether the role may create team keys.
func (v teamView) Creates() bool { return v.Team.Role != client.RoleViewer }

func (c *Console) teamPage(w http.ResponseWriter, r *http.Request, api *client.Client) {
	c.renderTeam(w, r, api, http.StatusOK, teamView{}, "", "")
}

func (c *Console) renderTeam(w http.ResponseWriter, r *http.Request, api *client.Client, status int, v teamView, notice, failure string) {
	id := r.PathValue("team")
	var err error
	if v.Team, err = api.GetTeam(r.Context(), id); err != nil {
		c.apiFailed(w, r, "Team", "message", page{SignedIn: true}, err)
		return
	}
	if v.Members, err = api.TeamMembers(r.Context(), id); err != nil {
		c.apiFailed(w, r, "Team", "message", page{SignedIn: true}, err)
		return
	}
	pg, err := api.ListTeamKeys(r.Context(), id, client.ListOptions{Limit: 50, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		c.apiFailed(w, r, "Team", "message", page{SignedIn: true}, err)
		return
	}
	v.Keys, v.Next = pg.Keys, pg.NextCursor
	c.render(w, r, status, "team", page{Title: "Team " + v.Team.Name, SignedIn: true, Notice: notice, Error: failure, Data: v})
}

// teamFailed shows the team page with the API's refusal of an action.
func (c *Console) teamFailed(w http.ResponseWriter, r *http.Request, api *client.Client, v teamView, err error) {
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusNotFound {
		c.apiFailed(w, r, "Team", "message", page{SignedIn: true}, err)
		return
	}
	c.renderTeam(w, r, api, ae.Status, v, "", ae.Message)
}

// invitationExpiries are the choices the invitation form offers.
var invitationExpiries = map[string]time.Duration{"1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

func (c *Console) inviteMember(w http.ResponseWriter, r *http.Request, api *client.Client) {
	expires, ok := invitationExpiries[r.PostForm.Get("expires")]
	if !ok {
		expires = 7 * 24 * time.Hour
	}
	inv, err := api.InviteMember(r.Context(), r.PathValue("team"), r.PostForm.Get("role"), strings.TrimSpace(r.PostForm.Get("email")), expires)
	if err != nil {
		c.teamFailed(w, r, api, teamView{}, err)
		return
	}
	notice := "The invitation is on its way by mail."
	if !inv.Mailed {
		notice = "Hand the invitation below to the new member: it is shown this once."
	}
	c.renderTeam(w, r, api, http.StatusCreated, teamView{Invitation: &inv}, notice, "")
}

func (c *Console) createTeamKey(w http.ResponseWriter, r *http.Request, api *client.Client) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	f := keyForm{Name: name, Scopes: r.PostForm.Get("scopes")}
	k, err := api.CreateTeamKey(r.Context(), r.PathValue("team"), client.CreateKeyRequest{Name: name, Scopes: f.scopes()})
	if err != nil {
		c.teamFailed(w, r, api, teamView{KeyName: name}, err)
		return
	}
	c.render(w, r, http.StatusCreated, "secret", page{Title: "The team's new key", SignedIn: true,
		Data: secretView{APIKey: k.APIKey, Name: k.Name, Secret: k.Secret}})
}
