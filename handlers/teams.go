package handlers

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// TeamLedger is what the team routes need of the use cases. Each command
// type of package ledger lists the error kinds its method returns.
type TeamLedger interface {
	CreateTeam(ctx context.Context, cmd ledger.CreateTeam) (domain.Team, error)
	Teams(userID string) []domain.Team
	Team(userID, teamID string) (domain.Team, error)
	TeamMembers(ctx context.Context, userID, teamID string) ([]ledger.TeamMember, error)
	InviteMember(ctx context.Context, cmd ledger.InviteMember) (ledger.TeamInvite, error)
	JoinTeam(ctx context.Context, cmd ledger.JoinTeam) (domain.Team, error)
	ChangeMemberRole(ctx context.Context, cmd ledger.ChangeMemberRole) error
	RemoveMember(ctx context.Context, cmd ledger.RemoveMember) error
	ListTeamKeys(userID, teamID string, limit int, cursor string) ([]domain.Key, string, error)
	CreateServiceAccount(ctx context.Context, cmd ledger.CreateServiceAccount) (domain.ServiceAccount, error)
	ChangeServiceAccount(ctx context.Context, cmd ledger.ChangeServiceAccount) error
	AdminListTeams() []domain.Team
	AdminTeamMembers(ctx context.Context, teamID string) ([]ledger.TeamMember, error)
	AdminTransferTeam(ctx context.Context, cmd ledger.AdminTransferTeam) error
	AdminSetTeamDisabled(ctx context.Context, cmd ledger.AdminSetTeamDisabled) error
}

type teamRequest struct {
	Name string `json:"name"`
}

type teamResponse struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role,omitempty"` // the caller's; none in admin listings
	Status    string    `json:"status"`         // active or disabled
	CreatedAt time.Time `json:"created_at"`
	Members   int       `json:"members"`
}

type teamsResponse struct {
	Teams []teamResponse `json:"teams"`
}

func teamView(t domain.Team, userID string) teamResponse {
	v := teamResponse{ID: t.ID, Name: t.Name, Status: "active", CreatedAt: t.CreatedAt, Members: len(t.Members)}
	if t.Disabled {
		v.Status = "disabled"
	}
	if role, ok := t.RoleOf(userID); ok {
		v.Role = string(role)
	}
	return v
}

// createTeam: POST /teams {"name"} -> 201 the team; the caller is its
// owner.
func (a *API) createTeam(w http.ResponseWriter, r *http.Request) {
	var req teamRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	t, err := a.teams.CreateTeam(r.Context(), ledger.CreateTeam{UserID: userIDFrom(r.Context()), Name: req.Name})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Location", "/teams/"+t.ID)
	writeJSON(w, http.StatusCreated, teamView(t, userIDFrom(r.Context())))
}

// listTeams: GET /teams -> 200 the caller's teams with their role.
func (a *API) listTeams(w http.ResponseWriter, r *http.Request) {
	user := userIDFrom(r.Context())
	resp := teamsResponse{Teams: []teamResponse{}}
	for _, t := range a.teams.Teams(user) {
		resp.Teams = append(resp.Teams, teamView(t, user))
	}
	writeJSON(w, http.StatusOK, resp)
}

// getTeam: GET /teams/{team} -> 200 the team, 404 for a non-member.
func (a *API) getTeam(w http.ResponseWriter, r *http.Request) {
	user := userIDFrom(r.Context())
	t, err := a.teams.Team(user, r.PathValue("team"))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, teamView(t, user))
}

type memberResponse struct {
	UserID   string    `json:"user_id"`
	Email    string    `json:"email"` // "" once the user is erased
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

type membersResponse struct {
	Members []memberResponse `json:"members"`
}

func membersView(members []ledger.TeamMember) membersResponse {
	resp := membersResponse{Members: make([]memberResponse, len(members))}
	for i, m := range members {
		resp.Members[i] = memberResponse{UserID: m.UserID, Email: m.Email, Role: string(m.Role), JoinedAt: m.JoinedAt}
	}
	return resp
}

// listMembers: GET /teams/{team}/members -> 200 the members, owners first.
func (a *API) listMembers(w http.ResponseWriter, r *http.Request) {
	members, err := a.teams.TeamMembers(r.Context(), userIDFrom(r.Context()), r.PathValue("team"))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, membersView(members))
}

type teamInvitationRequest struct {
	Role string `json:"role"`
	// Email, if set, is where the token is mailed (when the server mails).
	Email string `json:"email"`
	// ExpiresIn is a Go duration ("72h"); empty: 7 days.
	ExpiresIn string `json:"expires_in"`
}

type teamInvitationResponse struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
	Mailed    bool      `json:"mailed"`
	// Token is the invitation's single-use token when it was not mailed:
	// the inviter hands it over.
	Token string `json:"token,omitempty"`
}

// inviteMember: POST /teams/{team}/invitations {"role", "email"?,
// "expires_in"?} -> 201 the invitation (owners and admins).
func (a *API) inviteMember(w http.ResponseWriter, r *http.Request) {
	var req teamInvitationRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	var expiresIn time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "expires_in must be a positive duration such as 72h"))
			return
		}
		expiresIn = d
	}
	inv, err := a.teams.InviteMember(r.Context(), ledger.InviteMember{UserID: userIDFrom(r.Context()), TeamID: r.PathValue("team"),
		Role: domain.TeamRole(req.Role), Email: req.Email, ExpiresIn: expiresIn})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	resp := teamInvitationResponse{ID: inv.ID, Role: string(inv.Role), ExpiresAt: inv.ExpiresAt, Mailed: inv.Mailed}
	if !inv.Mailed {
		resp.Token = inv.Token.Reveal()
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
}

type joinTeamRequest struct {
	Token string `json:"token"`
}

// joinTeam: POST /teams/join {"token"} -> 200 the team joined.
func (a *API) joinTeam(w http.ResponseWriter, r *http.Request) {
	var req joinTeamRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	user := userIDFrom(r.Context())
	t, err := a.teams.JoinTeam(r.Context(), ledger.JoinTeam{UserID: user, Token: req.Token})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, teamView(t, user))
}

type roleRequest struct {
	Role string `json:"role"`
}

// changeMemberRole: PATCH /teams/{team}/members/{user} {"role"} -> 200
// the member.
func (a *API) changeMemberRole(w http.ResponseWriter, r *http.Request) {
	var req roleRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	user, team, member := userIDFrom(r.Context()), r.PathValue("team"), r.PathValue("user")
	err := a.teams.ChangeMemberRole(r.Context(), ledger.ChangeMemberRole{UserID: user, TeamID: team, Member: member,
		Role: domain.TeamRole(req.Role)})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	members, err := a.teams.TeamMembers(r.Context(), user, team)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	i := slices.IndexFunc(members, func(m ledger.TeamMember) bool { return m.UserID == member })
	if i < 0 {
		writeError(w, r, a.logger, domain.Errorf(domain.NotFound, "member not found"))
		return
	}
	writeJSON(w, http.StatusOK, membersView(members[i : i+1]).Members[0])
}

// removeMember: DELETE /teams/{team}/members/{user} -> 204; a member
// leaves with their own id.
func (a *API) removeMember(w http.ResponseWriter, r *http.Request) {
	err := a.teams.RemoveMember(r.Context(), ledger.RemoveMember{UserID: userIDFrom(r.Context()), TeamID: r.PathValue("team"),
		Member: r.PathValue("user")})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createTeamKey: POST /teams/{team}/api-keys (the body of POST /api-keys)
// -> 201 a key of the team, created by the caller (developers and up).
func (a *API) createTeamKey(w http.ResponseWriter, r *http.Request) {
	a.createKeyFor(w, r, r.PathValue("team"), "")
}

// createServiceAccountKey: POST /teams/{team}/service-accounts/{sa}/api-keys
// -> 201 a key of the service account (owners and admins).
func (a *API) createServiceAccountKey(w http.ResponseWriter, r *http.Request) {
	a.createKeyFor(w, r, r.PathValue("team"), r.PathValue("sa"))
}

// listTeamKeys: GET /teams/{team}/api-keys?limit=&cursor= -> 200 the
// team's keys, newest first (any member).
func (a *API) listTeamKeys(w http.ResponseWriter, r *http.Request) {
	a.listKeysOf(w, r, func(limit int, cursor string) ([]domain.Key, string, error) {
		return a.teams.ListTeamKeys(userIDFrom(r.Context()), r.PathValue("team"), limit, cursor)
	})
}

type serviceAccountResponse struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"` // always "service_account"
	Name      string    `json:"name"`
	Status    string    `json:"status"` // active, disabled or deleted
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

type serviceAccountsResponse struct {
	ServiceAccounts []serviceAccountResponse `json:"service_accounts"`
}

func serviceAccountView(sa domain.ServiceAccount) serviceAccountResponse {
	v := serviceAccountResponse{ID: sa.ID, Type: "service_account", Name: sa.Name, Status: "active",
		CreatedBy: sa.CreatedBy, CreatedAt: sa.CreatedAt}
	switch {
	case sa.Deleted:
		v.Status = "deleted"
	case sa.Disabled:
		v.Status = "disabled"
	}
	return v
}

// createServiceAccount: POST /teams/{team}/service-accounts {"name"} ->
// 201 the service account (owners and admins).
func (a *API) createServiceAccount(w http.ResponseWriter, r *http.Request) {
	var req teamRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	sa, err := a.teams.CreateServiceAccount(r.Context(), ledger.CreateServiceAccount{UserID: userIDFrom(r.Context()),
		TeamID: r.PathValue("team"), Name: req.Name})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, serviceAccountView(sa))
}

// listServiceAccounts: GET /teams/{team}/service-accounts -> 200 the
// team's service accounts, deleted ones included (any member).
func (a *API) listServiceAccounts(w http.ResponseWriter, r *http.Request) {
	t, err := a.teams.Team(userIDFrom(r.Context()), r.PathValue("team"))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	resp := serviceAccountsResponse{ServiceAccounts: []serviceAccountResponse{}}
	for _, sa := range t.ServiceAccounts {
		resp.ServiceAccounts = append(resp.ServiceAccounts, serviceAccountView(sa))
	}
	slices.SortFunc(resp.ServiceAccounts, func(x, y serviceAccountResponse) int { return strings.Compare(x.ID, y.ID) })
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) changeServiceAccount(action domain.ServiceAccountAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
			return a.teams.ChangeServiceAccount(ctx, ledger.ChangeServiceAccount{UserID: userIDFrom(ctx), TeamID: r.PathValue("team"),
				ServiceAccount: r.PathValue("sa"), Action: action, Reason: reason})
		})
	}
}

// disableServiceAccount: POST .../service-accounts/{sa}/disable
// {"reason"?} -> 204: its keys stop validating.
func (a *API) disableServiceAccount(w http.ResponseWriter, r *http.Request) {
	a.changeServiceAccount(domain.DisableServiceAccount)(w, r)
}

// enableServiceAccount: POST .../service-accounts/{sa}/enable
// {"reason"?} -> 204.
func (a *API) enableServiceAccount(w http.ResponseWriter, r *http.Request) {
	a.changeServiceAccount(domain.EnableServiceAccount)(w, r)
}

// deleteServiceAccount: DELETE .../service-accounts/{sa} -> 204: its keys
// never validate again.
func (a *API) deleteServiceAccount(w http.ResponseWriter, r *http.Request) {
	a.changeServiceAccount(domain.DeleteServiceAccount)(w, r)
}

// adminListTeams: GET /admin/teams -> 200 every team.
func (a *API) adminListTeams(w http.ResponseWriter, _ *http.Request) {
	resp := teamsResponse{Teams: []teamResponse{}}
	for _, t := range a.teams.AdminListTeams() {
		resp.Teams = append(resp.Teams, teamView(t, ""))
	}
	writeJSON(w, http.StatusOK, resp)
}

// adminListMembers: GET /admin/teams/{team}/members -> 200 the members.
func (a *API) adminListMembers(w http.ResponseWriter, r *http.Request) {
	members, err := a.teams.AdminTeamMembers(r.Context(), r.PathValue("team"))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, membersView(members))
}

type transferRequest struct {
	Owner  string `json:"owner"`
	Reason string `json:"reason"`
}

// adminTransferTeam: POST /admin/teams/{team}/transfer {"owner",
// "reason"?} -> 204: the user becomes an owner.
func (a *API) adminTransferTeam(w http.ResponseWriter, r *http.Request) {
	var req transferRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	err := a.teams.AdminTransferTeam(r.Context(), ledger.AdminTransferTeam{Actor: adminActor(r), Request: adminRequest(r),
		TeamID: r.PathValue("team"), Owner: req.Owner, Reason: req.Reason})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminDisableTeam: POST /admin/teams/{team}/disable {"reason"?} -> 204:
// none of the team's keys validate, anywhere.
func (a *API) adminDisableTeam(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.teams.AdminSetTeamDisabled(ctx, ledger.AdminSetTeamDisabled{Actor: adminActor(r), Request: adminRequest(r),
			TeamID: r.PathValue("team"), Disable: true, Reason: reason})
	})
}

// adminEnableTeam: POST /admin/teams/{team}/enable {"reason"?} -> 204.
func (a *API) adminEnableTeam(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.teams.AdminSetTeamDisabled(ctx, ledger.AdminSetTeamDisabled{Actor: adminActor(r), Request: adminRequest(r),
			TeamID: r.PathValue("team"), Disable: false, Reason: reason})
	})
}
