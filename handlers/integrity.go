package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/integrity"
)

// Integrity tells the log's trust root, newest checkpoint and the verdict
// of serve's own verification of the log, and starts one on demand
// (internal/integrity.Monitor).
type Integrity interface {
	Status(ctx context.Context) integrity.Status
	VerifyNow() bool
}

// adminIntegrity: GET /admin/integrity -> 200 {"trust_root","checkpoint",
// "verify"}.
func (a *API) adminIntegrity(w http.ResponseWriter, r *http.Request) {
	if a.integrity == nil {
		writeError(w, r, a.logger, domain.Errorf(domain.Unavailable, "this server does not verify the log"))
		return
	}
	writeJSON(w, http.StatusOK, a.integrity.Status(r.Context()))
}

// adminVerifyLog: POST /admin/integrity/verify -> 202 and the status: a
// verification of the whole log starts (or already runs); GET
// /admin/integrity tells its verdict once "running" is false.
func (a *API) adminVerifyLog(w http.ResponseWriter, r *http.Request) {
	if a.integrity == nil {
		writeError(w, r, a.logger, domain.Errorf(domain.Unavailable, "this server does not verify the log"))
		return
	}
	a.integrity.VerifyNow()
	a.logger.Info("log verification requested", "request_id", requestIDFrom(r), "actor", adminActor(r))
	s := a.integrity.Status(r.Context())
	s.Verify.Running = true
	w.Header().Set("Location", "/admin/integrity")
	writeJSON(w, http.StatusAccepted, s)
}

type meResponse struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// me: GET /users/me -> 200 {"id","email","role","created_at"}: who the
// session is.
func (a *API) me(w http.ResponseWriter, r *http.Request) {
	u, err := a.ledger.RevealUser(r.Context(), userFrom(r.Context()))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	role := u.Role
	if role == "" {
		role = domain.RoleUser
	}
	writeJSON(w, http.StatusOK, meResponse{ID: u.ID, Email: u.Email, Role: string(role),
		CreatedAt: u.CreatedAt})
}
