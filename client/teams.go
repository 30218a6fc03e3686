package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Team roles.
const (
	RoleOwner     = "owner"
	RoleAdmin     = "admin"
	RoleDeveloper = "developer"
	RoleViewer    = "viewer"
)

// Team is a team the caller is a member of (Role is their role; empty in
// AdminListTeams).
type Team struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role,omitempty"`
	Status    string    `json:"status"` // active or disabled
	CreatedAt time.Time `json:"created_at"`
	Members   int       `json:"members"`
}

// TeamMember is a member of a team. Email is empty once the user is
// erased.
type TeamMember struct {
	UserID   string    `json:"user_id"`
	Email    string    `json:"email"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// TeamInvitation is an issued team invitation. Token is set only when it
// was not mailed: hand it to the invitee, who passes it to JoinTeam.
type TeamInvitation struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
	Mailed    bool      `json:"mailed"`
	Token     string    `json:"token,omitempty"`
}

// ServiceAccount is a team's non-human principal (Type "service_account").
type ServiceAccount struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Name      string    `json:"name"`
	Status    string    `json:"status"` // active, disabled or deleted
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

func teamPath(team string, rest ...string) string {
	p := "/teams/" + escape(team)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

type nameBody struct {
	Name string `json:"name"`
}

// CreateTeam creates a team whose owner is the session's user: POST
// /teams. Errors: ErrNoSession; *Error with status 400 or 401.
func (c *Client) CreateTeam(ctx context.Context, name string) (Team, error) {
	var t Team
	err := c.do(ctx, request{method: http.MethodPost, path: "/teams", body: nameBody{name}, auth: true}, &t)
	return t, err
}

// ListTeams returns the session user's teams with their role: GET
// /teams. Errors: ErrNoSession; *Error with status 401.
func (c *Client) ListTeams(ctx context.Context) ([]Team, error) {
	var out struct {
		Teams []Team `json:"teams"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/teams", auth: true}, &out)
	return out.Teams, err
}

// GetTeam returns a team of the session user's: GET /teams/{team}.
// Errors: ErrNoSession; *Error with status 401 or 404 (no such team, or
// not a member).
func (c *Client) GetTeam(ctx context.Context, team string) (Team, error) {
	var t Team
	err := c.do(ctx, request{method: http.MethodGet, path: teamPath(team), auth: true}, &t)
	return t, err
}

// TeamMembers lists a team's members, owners first: GET
// /teams/{team}/members. Errors: as GetTeam.
func (c *Client) TeamMembers(ctx context.Context, team string) ([]TeamMember, error) {
	var out struct {
		Members []TeamMember `json:"members"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: teamPath(team, "members"), auth: true}, &out)
	return out.Members, err
}

// InviteMember issues a single-use invitation to join team with role,
// mailed to email when the server mails (email may be empty): POST
// /teams/{team}/invitations. expiresIn 0: the server's default, 7 days.
// Errors: ErrNoSession; *Error with status 400, 401, 403 (role) or 404.
func (c *Client) InviteMember(ctx context.Context, team, role, email string, expiresIn time.Duration) (TeamInvitation, error) {
	body := struct {
		Role      string `json:"role"`
		Email     string `json:"email,omitempty"`
		ExpiresIn string `json:"expires_in,omitempty"`
	}{Role: role, Email: email}
	if expiresIn != 0 {
		body.ExpiresIn = expiresIn.String()
	}
	var inv TeamInvitation
	err := c.do(ctx, request{method: http.MethodPost, path: teamPath(team, "invitations"), body: body, auth: true}, &inv)
	return inv, err
}

// JoinTeam joins the team an invitation's token is for: POST /teams/join.
// Errors: ErrNoSession; *Error with status 400, 401, 404 (unknown, used or
// expired) or 409 (already a member).
func (c *Client) JoinTeam(ctx context.Context, token string) (Team, error) {
	var t Team
	err := c.do(ctx, request{method: http.MethodPost, path: "/teams/join", body: struct {
		Token string `json:"token"`
	}{token}, auth: true}, &t)
	return t, err
}

// ChangeMemberRole gives a member a new role: PATCH
// /teams/{team}/members/{user}. Errors: ErrNoSession; *Error with status
// 400, 401, 403, 404 or 409 (the last owner).
func (c *Client) ChangeMemberRole(ctx context.Context, team, user, role string) (TeamMember, error) {
	var m TeamMember
	err := c.do(ctx, request{method: http.MethodPatch, path: teamPath(team, "members", escape(user)), body: struct {
		Role string `json:"role"`
	}{role}, auth: true}, &m)
	return m, err
}

// RemoveMember removes a member, or leaves the team when user is the
// session's own id: DELETE /teams/{team}/members/{user}. The team's keys
// stay valid. Errors: as ChangeMemberRole.
func (c *Client) RemoveMember(ctx context.Context, team, user string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: teamPath(team, "members", escape(user)), auth: true}, nil)
}

// CreateTeamKey creates a key owned by the team, created by the session's
// user: POST /teams/{team}/api-keys. Errors: as CreateKey, and 403 (a
// viewer) or 404 (not a member).
func (c *Client) CreateTeamKey(ctx context.Context, team string, req CreateKeyRequest) (CreatedKey, error) {
	return c.createKeyAt(ctx, teamPath(team, "api-keys"), req)
}

// CreateServiceAccountKey creates a key of a team's service account: POST
// /teams/{team}/service-accounts/{sa}/api-keys. Errors: as CreateTeamKey.
func (c *Client) CreateServiceAccountKey(ctx context.Context, team, sa string, req CreateKeyRequest) (CreatedKey, error) {
	return c.createKeyAt(ctx, teamPath(team, "service-accounts", escape(sa), "api-keys"), req)
}

// ListTeamKeys returns one page of a team's keys, newest first: GET
// /teams/{team}/api-keys. Manage them with the key methods (GetKey,
// RevokeKey, ...) as the member's role allows. Errors: ErrNoSession;
// *Error with status 400, 401 or 404.
func (c *Client) ListTeamKeys(ctx context.Context, team string, opts ListOptions) (KeyPage, error) {
	q := url.Values{}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var p KeyPage
	err := c.do(ctx, request{method: http.MethodGet, path: teamPath(team, "api-keys"), query: q, auth: true}, &p)
	return p, err
}

// CreateServiceAccount adds a service account to a team: POST
// /teams/{team}/service-accounts. Errors: ErrNoSession; *Error with
// status 400, 401, 403 or 404.
func (c *Client) CreateServiceAccount(ctx context.Context, team, name string) (ServiceAccount, error) {
	var sa ServiceAccount
	err := c.do(ctx, request{method: http.MethodPost, path: teamPath(team, "service-accounts"), body: nameBody{name}, auth: true}, &sa)
	return sa, err
}

// ListServiceAccounts lists a team's service accounts: GET
// /teams/{team}/service-accounts. Errors: as GetTeam.
func (c *Client) ListServiceAccounts(ctx context.Context, team string) ([]ServiceAccount, error) {
	var out struct {
		ServiceAccounts []ServiceAccount `json:"service_accounts"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: teamPath(team, "service-accounts"), auth: true}, &out)
	return out.ServiceAccounts, err
}

// DisableServiceAccount stops a service account's keys: POST
// /teams/{team}/service-accounts/{sa}/disable. Errors: ErrNoSession;
// *Error with status 401, 403 or 404.
func (c *Client) DisableServiceAccount(ctx context.Context, team, sa, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: teamPath(team, "service-accounts", escape(sa), "disable"),
		body: reasonBody{reason}, auth: true, waitable: true}, nil)
}

// EnableServiceAccount lifts DisableServiceAccount: POST
// /teams/{team}/service-accounts/{sa}/enable. Errors: as
// DisableServiceAccount.
func (c *Client) EnableServiceAccount(ctx context.Context, team, sa, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: teamPath(team, "service-accounts", escape(sa), "enable"),
		body: reasonBody{reason}, auth: true}, nil)
}

// DeleteServiceAccount deletes a service account: its keys never
// validate again. DELETE /teams/{team}/service-accounts/{sa}. Errors: as
// DisableServiceAccount.
func (c *Client) DeleteServiceAccount(ctx context.Context, team, sa string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: teamPath(team, "service-accounts", escape(sa)), auth: true, waitable: true}, nil)
}

// AdminListTeams lists every team: GET /admin/teams. Errors:
// ErrNoSession; *Error with status 401 or 403.
func (c *Client) AdminListTeams(ctx context.Context) ([]Team, error) {
	var out struct {
		Teams []Team `json:"teams"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/admin/teams", auth: true}, &out)
	return out.Teams, err
}

// AdminTransferTeam makes a user an owner of a team: POST
// /admin/teams/{team}/transfer. Errors: ErrNoSession; *Error with status
// 400, 401, 403 or 404.
func (c *Client) AdminTransferTeam(ctx context.Context, team, owner, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/admin/teams/" + escape(team) + "/transfer", body: struct {
		Owner  string `json:"owner"`
		Reason string `json:"reason,omitempty"`
	}{owner, reason}, auth: true}, nil)
}

// AdminDisableTeam stops every key of a team, everywhere: POST
// /admin/teams/{team}/disable. Errors: ErrNoSession; *Error with status
// 401, 403 or 404.
func (c *Client) AdminDisableTeam(ctx context.Context, team, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/admin/teams/" + escape(team) + "/disable",
		body: reasonBody{reason}, auth: true, waitable: true}, nil)
}

// AdminEnableTeam lifts AdminDisableTeam: POST
// /admin/teams/{team}/enable. Errors: as AdminDisableTeam.
func (c *Client) AdminEnableTeam(ctx context.Context, team, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/admin/teams/" + escape(team) + "/enable",
		body: reasonBody{reason}, auth: true}, nil)
}
