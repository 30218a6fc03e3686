package handlers

import (
	"net/http"
	"strings"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// admin lets only admins through; anyone else signed in gets 403.
func (a *API) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if u := userFrom(r.Context()); !u.IsAdmin() {
			writeError(w, r, a.logger, domain.Errorf(domain.Forbidden, "admin role required"))
			return
		}
		next(w, r)
	}
}

// adminActor is the actor recorded for an admin acting over HTTP.
func adminActor(r *http.Request) string { return domain.AdminActor(userIDFrom(r.Context())) }

type reasonRequest struct {
	Reason string `json:"reason"`
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
			case domain.StatusActive, domain.StatusRevoked, domain.StatusExpired:
				statuses = append(statuses, k)
			default:
				writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "status must be active, revoked or expired"))
				return
			}
		}
	}
	keys, err := a.ledger.AdminListKeys(q.Get("user"), statuses)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	out := struct {
		Keys []adminKeyResponse `json:"keys"`
	}{Keys: make([]adminKeyResponse, len(keys))}
	for i, k := range keys {
		out.Keys[i] = adminKeyResponse{keyResponse: a.keyView(k), UserID: k.UserID}
	}
	writeJSON(w, http.StatusOK, out)
}

// adminRevokeKey: DELETE /admin/keys/{key} {"reason"?} -> 204.
func (a *API) adminRevokeKey(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	cmd := ledger.AdminRevokeKey{Actor: adminActor(r), APIKey: r.PathValue("key"), Reason: req.Reason}
	if err := a.ledger.AdminRevokeKey(r.Context(), cmd); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminDisableUser: POST /admin/users/{id}/disable {"reason"?} -> 204.
func (a *API) adminDisableUser(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	cmd := ledger.DisableUser{Actor: adminActor(r), UserID: r.PathValue("id"), Reason: req.Reason}
	if err := a.ledger.DisableUser(r.Context(), cmd); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminRevokeUserKeys: POST /admin/users/{id}/revoke-keys {"reason"?} ->
// 200 {"revoked":[...]}.
func (a *API) adminRevokeUserKeys(w http.ResponseWriter, r *http.Request) {
	var req reasonRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	cmd := ledger.RevokeUserKeys{Actor: adminActor(r), UserID: r.PathValue("id"), Reason: req.Reason}
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
