package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledger"
)

type credentialsRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type userResponse struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

type eraseRequest struct {
	Password string `json:"password"`
}

// eraseMe: DELETE /users/me {"password"} -> 204: the user's personal data
// is erased, their keys revoked, their sessions end. A wrong password is a
// 403 (the session is good, the confirmation is not).
func (a *API) eraseMe(w http.ResponseWriter, r *http.Request) {
	var req eraseRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	err := a.ledger.EraseMe(r.Context(), ledger.EraseMe{UserID: userFrom(r.Context()).ID, Password: req.Password})
	if err != nil {
		if errors.Is(err, auth.ErrBusy) {
			a.metrics.limited(limitPasswordHashing)
		}
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword: POST /users/me/password {"current_password",
// "new_password"} -> 204: the new password holds and every session of the
// user ends, this one included. A wrong current password is a 403 (the
// session is good, the confirmation is not) and changes nothing.
func (a *API) changePassword(w http.ResponseWriter, r *http.Request) {
	var req changePasswordRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	err := a.ledger.ChangePassword(r.Context(), ledger.ChangePassword{UserID: userIDFrom(r.Context()),
		CurrentPassword: req.CurrentPassword, NewPassword: req.NewPassword})
	if err != nil {
		if errors.Is(err, auth.ErrBusy) {
			a.metrics.limited(limitPasswordHashing)
		}
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeMySessions: POST /users/me/sessions/revoke -> 204: every session
// of the user ends, this one included.
func (a *API) revokeMySessions(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	id := userIDFrom(r.Context())
	if err := a.ledger.RevokeSessions(r.Context(), ledger.RevokeSessions{Actor: id, UserID: id}); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// endSession: DELETE /sessions/current -> 204: this session token ends
// on every instance (a logout); the user's other sessions hold.
func (a *API) endSession(w http.ResponseWriter, r *http.Request) {
	if err := a.ledger.EndSession(r.Context(), ledger.EndSession{Session: sessionFrom(r.Context())}); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type sessionResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createSession: POST /sessions {"email","password"} -> 200 a session token.
func (a *API) createSession(w http.ResponseWriter, r *http.Request) {
	var req credentialsRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	// The address's budget of failures is checked before the email's, so
	// an address over it cannot push anyone's email into the throttle.
	addr := limitKey(a.proxies.ClientAddr(r))
	if wait := a.loginFailures.Attempt(addr, a.ledger.Now()); wait > 0 {
		a.metrics.limited(limitLoginAddress)
		writeError(w, r, a.logger, domain.RateLimitedFor(wait, "too many failed logins from this address, try again later"))
		return
	}
	u, err := a.ledger.Login(r.Context(), ledger.Login{Email: req.Email, Password: req.Password, Client: addr})
	if err != nil {
		switch kind := domain.KindOf(err); {
		case kind == domain.Unauthorized:
			// A failed guess: it stays counted against the address.
		case kind == domain.RateLimited:
			a.loginFailures.Forgive(addr)
			a.metrics.limited(limitLoginEmail)
		case errors.Is(err, auth.ErrBusy):
			a.loginFailures.Forgive(addr)
			a.metrics.limited(limitPasswordHashing)
		default:
			a.loginFailures.Forgive(addr)
		}
		writeError(w, r, a.logger, err)
		return
	}
	a.loginFailures.Forgive(addr)
	token, exp, err := a.sessions.Issue(u.ID, u.SessionEpoch, a.ledger.Now())
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sessionResponse{Token: token, ExpiresAt: exp})
}

type userIDKey struct{}

// errAmbiguousSession refuses a request that names its caller twice.
var errAmbiguousSession = domain.Errorf(domain.Unauthorized,
	"ambiguous credentials: send one Authorization: Bearer header, or an admin signature, not both nor a header twice")

// isSigned reports whether r carries HTTP message signature fields.
func isSigned(r *http.Request) bool {
	return len(r.Header.Values("Signature-Input")) > 0 || len(r.Header.Values("Signature")) > 0
}

// authenticated requires a valid session token (Authorization: Bearer) and
// passes the user id on in the request context. The token must be the one
// credential of the request: a second Authorization field or a signature
// beside it is refused as ambiguous, and the scheme is compared in ASCII.
func (a *API) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if n := len(r.Header.Values("Authorization")); n > 1 || n == 1 && isSigned(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyledger", error="invalid_request"`)
			writeError(w, r, a.logger, errAmbiguousSession)
			return
		}
		scheme, token, ok := cutScheme(r.Header.Get("Authorization"))
		if !ok || !domain.EqualFoldASCII(scheme, "bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyledger"`)
			writeError(w, r, a.logger, domain.Errorf(domain.Unauthorized, "missing bearer session token"))
			return
		}
		sess, err := a.sessions.Verify(token)
		var u domain.User
		if err == nil {
			// Ended sessions (password change, disable, erase, revocation,
			// logout) are refused at once, on every instance.
			u, err = a.ledger.SessionUser(sess)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyledger", error="invalid_token"`)
			writeError(w, r, a.logger, err)
			return
		}
		next(w, r.WithContext(withSession(withUser(r.Context(), u), sess)))
	}
}
