package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/oidc"
)

// OIDCLedger is what the OpenID Connect routes need of the use cases.
type OIDCLedger interface {
	OIDCLogin(ctx context.Context, cmd ledger.OIDCLogin) (ledger.OIDCOutcome, error)
	LinkIdentity(ctx context.Context, cmd ledger.LinkIdentity) (domain.User, error)
}

// OIDCConfig is the OpenID Connect login: the flow against the provider
// and the use cases that create, link and log in users.
type OIDCConfig struct {
	Flow   *oidc.Flow
	Ledger OIDCLedger
}

// errNoOIDC answers the OpenID Connect routes of a serve configured
// without a provider.
var errNoOIDC = domain.Errorf(domain.NotFound, "OpenID Connect login is not configured on this server")

// oidcSessionResponse is the answer of a finished OpenID Connect login:
// the session of POST /sessions, and whose it is.
type oidcSessionResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	UserID    string    `json:"user_id"`
}

// linkRequiredResponse is the 409 of a callback whose verified address
// belongs to an account that must confirm the link with its password.
type linkRequiredResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	LinkToken string    `json:"link_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// oidcLogin: GET /oidc/login -> 302 to the provider, with the login cookie.
func (a *API) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		writeError(w, r, a.logger, errNoOIDC)
		return
	}
	st, err := a.oidc.Flow.Start(r.Context())
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	http.SetCookie(w, st.Cookie)
	w.Header().Set("Cache-Control", "no-store")
	// No body: http.Redirect would add an HTML one.
	w.Header().Set("Location", st.URL)
	w.WriteHeader(http.StatusFound)
}

// oidcCallback: GET /oidc/callback?code&state -> 200 a session, 409 a
// link token, or 401/403. The login cookie ends with it, whatever the
// outcome.
func (a *API) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		writeError(w, r, a.logger, errNoOIDC)
		return
	}
	flow := a.oidc.Flow
	http.SetCookie(w, flow.ClearCookie())
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	cb := oidc.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error")}
	if c, err := r.Cookie(oidc.CookieName); err == nil {
		cb.Cookie = c.Value
	}
	// A refused callback is a failed login of the client's address: an
	// address that keeps sending made-up codes is blocked before serve
	// asks the provider about each.
	addr := limitKey(a.proxies.ClientAddr(r))
	if wait := a.loginFailures.Attempt(addr, a.ledger.Now()); wait > 0 {
		a.metrics.limited(limitLoginAddress)
		writeError(w, r, a.logger, domain.RateLimitedFor(wait, "too many failed logins from this address, try again later"))
		return
	}
	id, err := flow.Finish(r.Context(), cb)
	if domain.KindOf(err) != domain.Unauthorized {
		a.loginFailures.Forgive(addr)
	}
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	out, err := a.oidc.Ledger.OIDCLogin(r.Context(), ledger.OIDCLogin{Issuer: id.Issuer, Subject: id.Subject,
		Email: id.Email, DomainAllowed: id.DomainAllowed})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if out.LinkTo != "" {
		tok, err := flow.LinkToken(oidc.Link{Identity: id, UserID: out.LinkTo})
		if err != nil {
			writeError(w, r, a.logger, err)
			return
		}
		var body linkRequiredResponse
		body.Error.Code = string(domain.Conflict)
		body.Error.Message = "an account with this email address exists: confirm with its password (POST /oidc/link) to log in through the provider"
		body.LinkToken, body.ExpiresAt = tok, a.ledger.Now().Add(oidc.LinkTTL).UTC()
		writeJSON(w, http.StatusConflict, body)
		return
	}
	a.issueOIDCSession(w, r, out.User)
}

type linkRequest struct {
	LinkToken string `json:"link_token"`
	Password  string `json:"password"`
}

// oidcLink: POST /oidc/link {"link_token","password"} -> 200 a session:
// the identity logs in as the account from now on. A wrong password is a
// failed login, throttled alike.
func (a *API) oidcLink(w http.ResponseWriter, r *http.Request) {
	if a.oidc == nil {
		writeError(w, r, a.logger, errNoOIDC)
		return
	}
	var req linkRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	addr := limitKey(a.proxies.ClientAddr(r))
	if wait := a.loginFailures.Attempt(addr, a.ledger.Now()); wait > 0 {
		a.metrics.limited(limitLoginAddress)
		writeError(w, r, a.logger, domain.RateLimitedFor(wait, "too many failed logins from this address, try again later"))
		return
	}
	l, err := a.oidc.Flow.OpenLinkToken(req.LinkToken)
	if err != nil {
		a.loginFailures.Forgive(addr) // no password was tried
		writeError(w, r, a.logger, err)
		return
	}
	u, err := a.oidc.Ledger.LinkIdentity(r.Context(), ledger.LinkIdentity{Issuer: l.Issuer, Subject: l.Subject,
		Email: l.Email, UserID: l.UserID, Password: req.Password, Client: addr})
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
	a.issueOIDCSession(w, r, u)
}

// issueOIDCSession answers 200 with a new session of u, as POST /sessions
// does, and its user id.
func (a *API) issueOIDCSession(w http.ResponseWriter, r *http.Request, u domain.User) {
	token, exp, err := a.sessions.Issue(u.ID, u.SessionEpoch, a.ledger.Now())
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, oidcSessionResponse{Token: token, ExpiresAt: exp, UserID: u.ID})
}
