package handlers

import (
	"context"
	"time"

	"net/http"
	"strings"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

type reasonRequest struct {
	Reason string `json:"reason"`
}

// reasonCommand runs a command whose body is an optional {"reason"} and
// answers 204.
func (a *API) reasonCommand(w http.ResponseWriter, r *http.Request, run func(ctx context.Context, reason string) error) {
	var req reasonRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if err := run(r.Context(), req.Reason); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type adminKeyResponse struct {
	keyResponse
	UserID string `json:"user_id"`
}

// adminListKeys: GET /admin/keys?user=&status= -> every key (of one user).
func (a *API) adminListKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var statuses []domain.KeyStatus
	if s := q.Get("status"); s != "" {
		for _, st := range strings.Split(s, ",") {
			switch k := domain.KeyStatus(strings.TrimSpace(st)); k {
			case domain.StatusActive, domain.StatusRevoked, domain.StatusExpired, domain.StatusDisabled:
				statuses = append(statuses, k)
			default:
				writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "status must be active, revoked, expired or disabled"))
				return
			}
		}
	}
	keys, err := a.ledger.AdminListKeys(r.Context(), q.Get("user"), statuses)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	out := struct {
		Keys []adminKeyResponse `json:"keys"`
	}{Keys: make([]adminKeyResponse, len(keys))}
	ctx, cancel := context.WithTimeout(r.Context(), CreditsListTimeout)
	defer cancel()
	for i, k := range keys {
		out.Keys[i] = adminKeyResponse{keyResponse: a.keyView(ctx, k), UserID: k.UserID}
	}
	writeJSON(w, http.StatusOK, out)
}

// adminRevokeKey: DELETE /admin/keys/{key} {"reason"?} -> 204.
func (a *API) adminRevokeKey(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.AdminRevokeKey(ctx, ledger.AdminRevokeKey{Actor: adminActor(r), Request: adminRequest(r), APIKey: r.PathValue("key"), Reason: reason})
	})
}

// adminEditKey: PATCH /admin/keys/{key} {"name"?, "scopes"?, "metadata"?,
// "expires_at"?, "rate_limit"?, "credits"?} with an optional If-Match -> 200 the key.
func (a *API) adminEditKey(w http.ResponseWriter, r *http.Request) {
	edit, version, err := readEdit(w, r)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	k, err := a.ledger.AdminEditKey(r.Context(), ledger.AdminEditKey{Actor: adminActor(r), Request: adminRequest(r),
		APIKey: r.PathValue("key"), Edit: edit, IfVersion: version})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	a.writeKey(w, r, k)
}

// adminDisableKey: POST /admin/keys/{key}/disable {"reason"?} -> 204.
func (a *API) adminDisableKey(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.AdminDisableKey(ctx, ledger.AdminDisableKey{Actor: adminActor(r), Request: adminRequest(r), APIKey: r.PathValue("key"), Reason: reason})
	})
}

// adminEnableKey: POST /admin/keys/{key}/enable {"reason"?} -> 204.
func (a *API) adminEnableKey(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.AdminEnableKey(ctx, ledger.AdminEnableKey{Actor: adminActor(r), Request: adminRequest(r), APIKey: r.PathValue("key"), Reason: reason})
	})
}

// adminDisableUser: POST /admin/users/{id}/disable {"reason"?} -> 204.
func (a *API) adminDisableUser(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.DisableUser(ctx, ledger.DisableUser{Actor: adminActor(r), Request: adminRequest(r), UserID: r.PathValue("id"), Reason: reason})
	})
}

// errEraseSignedOnly refuses an erasure asked for with a session: it
// cannot be undone, so only an admin's key may ask for it, and the
// signature is kept in the log.
var errEraseSignedOnly = domain.Errorf(domain.Forbidden, "users are erased only by requests signed with an admin key")

// adminEraseUser: POST /admin/users/{id}/erase {"reason"?} (signed requests
// only) -> 200 {"revoked":[...]}: the user's personal data is erased and
// their keys revoked.
func (a *API) adminEraseUser(w http.ResponseWriter, r *http.Request) {
	if adminRequest(r) == nil {
		writeError(w, r, a.logger, errEraseSignedOnly)
		return
	}
	var req reasonRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	cmd := ledger.EraseUser{Actor: adminActor(r), Request: adminRequest(r), UserID: r.PathValue("id"), Reason: req.Reason}
	revoked, err := a.ledger.EraseUser(r.Context(), cmd)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if revoked == nil {
		revoked = []string{}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"revoked": revoked})
}

// adminRevokeUserKeys: POST /admin/users/{id}/revoke-keys {"reason"?} ->
// 200 {"revoked":[...]}.
func (a *API) adminRevokeUserKeys(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	cmd := ledger.RevokeUserKeys{Actor: adminActor(r), Request: adminRequest(r), UserID: r.PathValue("id"), Reason: req.Reason}
	revoked, err := a.ledger.RevokeUserKeys(r.Context(), cmd)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if revoked == nil {
		revoked = []string{}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"revoked": revoked})
}

// adminRevokeSessions: POST /admin/users/{id}/revoke-sessions
// {"reason"?} -> 204: every session of the user ends, on every instance.
func (a *API) adminRevokeSessions(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.RevokeSessions(ctx, ledger.RevokeSessions{Actor: adminActor(r), Request: adminRequest(r), UserID: r.PathValue("id"), Reason: reason})
	})
}

type adminUserResponse struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	Erased    bool      `json:"erased,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func adminUserView(u domain.User) adminUserResponse {
	return adminUserResponse{ID: u.ID, Email: u.Email, Role: string(u.Role), Disabled: u.Disabled, Erased: u.Erased,
		CreatedAt: u.CreatedAt}
}

// adminListUsers: GET /admin/users -> 200 {"users":[...]}, by email
// (erased users, who have none, first).
func (a *API) adminListUsers(w http.ResponseWriter, r *http.Request) {
	users, err := a.ledger.ListUsers(r.Context())
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	out := struct {
		Users []adminUserResponse `json:"users"`
	}{Users: make([]adminUserResponse, len(users))}
	for i, u := range users {
		out.Users[i] = adminUserView(u)
	}
	writeJSON(w, http.StatusOK, out)
}

// minSaltLength is the shortest salt a signed POST /admin/users takes: the
// body's digest, which holds the password, is kept in the log with the
// signature, so it must not be a hash anyone can test guesses against.
const minSaltLength = 22

type createUserRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
	// Salt is random text that keeps the kept digest of a signed request
	// from being a password hash; required when the request is signed.
	Salt string `json:"salt"`
}

// adminCreateUser: POST /admin/users {"email","password","role"?,"salt"}
// -> 201 {"id","email","role",...}.
func (a *API) adminCreateUser(w http.ResponseWriter, r *http.Request) {
	var req createUserRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if adminRequest(r) != nil && len(req.Salt) < minSaltLength {
		writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "a signed request must carry a random salt of at least %d characters", minSaltLength))
		return
	}
	role := domain.Role(req.Role)
	if role == "" {
		role = domain.RoleUser
	}
	cmd := ledger.CreateUser{Actor: adminActor(r), Request: adminRequest(r), Email: req.Email, Password: req.Password, Role: role}
	u, err := a.ledger.CreateUser(r.Context(), cmd)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, adminUserView(u))
}

// adminEnableUser: POST /admin/users/{id}/enable {"reason"?} -> 204.
func (a *API) adminEnableUser(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.EnableUser(ctx, ledger.EnableUser{Actor: adminActor(r), Request: adminRequest(r), UserID: r.PathValue("id"), Reason: reason})
	})
}

type adminKeyView struct {
	KeyID      string           `json:"key_id"`
	Admin      string           `json:"admin"`
	Key        domain.PublicKey `json:"key"`
	Revoked    bool             `json:"revoked"`
	EnrolledAt time.Time        `json:"enrolled_at"`
	EnrolledBy string           `json:"enrolled_by"`
}

// adminListAdminKeys: GET /admin/admin-keys -> 200 {"admin_keys":[...]}.
func (a *API) adminListAdminKeys(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Keys []adminKeyView `json:"admin_keys"`
	}{Keys: []adminKeyView{}}
	for _, ad := range a.ledger.ListAdmins() {
		for _, k := range ad.Keys {
			out.Keys = append(out.Keys, adminKeyView{KeyID: k.ID, Admin: ad.Name, Key: k.Key, Revoked: k.Revoked,
				EnrolledAt: k.EnrolledAt, EnrolledBy: k.EnrolledBy})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type enrollRequest struct {
	Name   string           `json:"name"`
	Key    domain.PublicKey `json:"key"`
	Reason string           `json:"reason"`
}

// errSignedOnly refuses admin-key changes made with a session: only an
// admin's key may vouch for another admin key.
var errSignedOnly = domain.Errorf(domain.Forbidden, "admin keys are enrolled and revoked only by requests signed with an admin key")

// adminEnrollKey: POST /admin/admin-keys {"name","key","reason"?} (signed
// requests only) -> 201 {"key_id","admin"}.
func (a *API) adminEnrollKey(w http.ResponseWriter, r *http.Request) {
	if adminRequest(r) == nil {
		writeError(w, r, a.logger, errSignedOnly)
		return
	}
	var req enrollRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	cmd := ledger.EnrollAdminKey{Actor: adminActor(r), Request: adminRequest(r), Name: req.Name, Key: req.Key, Reason: req.Reason}
	id, err := a.ledger.EnrollAdminKey(r.Context(), cmd)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"key_id": id, "admin": req.Name})
}

// adminRevokeAdminKey: DELETE /admin/admin-keys/{id} {"reason"?} (signed
// requests only) -> 204.
func (a *API) adminRevokeAdminKey(w http.ResponseWriter, r *http.Request) {
	if adminRequest(r) == nil {
		writeError(w, r, a.logger, errSignedOnly)
		return
	}
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.RevokeAdminKey(ctx, ledger.RevokeAdminKey{Actor: adminActor(r), Request: adminRequest(r), KeyID: r.PathValue("id"), Reason: reason})
	})
}
