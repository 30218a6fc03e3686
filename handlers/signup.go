package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ledger"
)

// SignUps is what the sign-up routes need of the use cases; each command
// type of package ledger lists the error kinds its method returns.
type SignUps interface {
	SignUp(ctx context.Context, cmd ledger.SignUp) (ledger.SignedUp, error)
	VerifyEmail(ctx context.Context, cmd ledger.VerifyEmail) error
	ResendVerification(ctx context.Context, cmd ledger.ResendVerification) error
	CreateInvitation(ctx context.Context, cmd ledger.CreateInvitation) (ledger.Invitation, error)
}

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// Invitation is the invitation token, in invite mode.
	Invitation string `json:"invitation"`
}

// pendingResponse answers a registration in verified mode, the same for
// a free address and a taken one.
type pendingResponse struct {
	Email  string `json:"email"`
	Status string `json:"status"`
}

// statusVerificationPending is pendingResponse's Status.
const statusVerificationPending = "verification_pending"

// registerUser: POST /users {"email","password","invitation"?} -> 201 the
// user; in verified mode 202 {"email","status"} whether or not the address
// was free; in closed mode (or invite mode without a working invitation)
// 403.
func (a *API) registerUser(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	// Every attempt takes a token, whatever its outcome: a taken email is
	// a 409 that would otherwise let one client probe addresses at will.
	if !a.takeRegistration(w, r) {
		return
	}
	out, err := a.ledger.SignUp(r.Context(),
		ledger.SignUp{Email: req.Email, Password: req.Password, Invitation: req.Invitation, Preset: presetFrom(r.Context())})
	if err != nil {
		if errors.Is(err, auth.ErrBusy) {
			a.metrics.limited(limitPasswordHashing)
		}
		writeError(w, r, a.logger, err)
		return
	}
	if out.Pending {
		writeJSON(w, http.StatusAccepted, pendingResponse{Email: out.Email, Status: statusVerificationPending})
		return
	}
	u := out.User
	w.Header().Set("Location", "/users/"+u.ID)
	writeJSON(w, http.StatusCreated, userResponse{ID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt})
}

// takeRegistration takes a token of the client address's registration
// budget, or answers 429 and returns false.
func (a *API) takeRegistration(w http.ResponseWriter, r *http.Request) bool {
	if wait := a.registrations.Take(limitKey(a.proxies.ClientAddr(r)), a.ledger.Now()); wait > 0 {
		a.metrics.limited(limitRegistrationAddress)
		writeError(w, r, a.logger, domain.RateLimitedFor(wait, "too many registrations from this address, try again later"))
		return false
	}
	return true
}

type verifyRequest struct {
	Token string `json:"token"`
}

// verifyEmail: POST /users/verify {"token"} -> 204; 400 for a token that
// does not work (unknown, used or expired alike).
func (a *API) verifyEmail(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if err := a.ledger.VerifyEmail(r.Context(), ledger.VerifyEmail{Token: req.Token}); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type resendRequest struct {
	Email string `json:"email"`
}

// resendVerification: POST /users/verify/resend {"email"} -> 202 for any
// well-formed address: a link goes out only to an account waiting for its
// verification. It draws on the registration budget of the client's
// address, since it sends mail.
func (a *API) resendVerification(w http.ResponseWriter, r *http.Request) {
	var req resendRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if !a.takeRegistration(w, r) {
		return
	}
	if err := a.ledger.ResendVerification(r.Context(), ledger.ResendVerification{Email: req.Email}); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	email, _ := domain.NormalizeEmail(req.Email)
	writeJSON(w, http.StatusAccepted, pendingResponse{Email: email, Status: statusVerificationPending})
}

type invitationRequest struct {
	// Email, if set, is the one address the invitation admits.
	Email string `json:"email"`
	// ExpiresIn is a Go duration ("72h"); empty: 7 days.
	ExpiresIn string `json:"expires_in"`
	// Salt keeps the kept digest of a signed request with an email from
	// being a hash anyone can test addresses against.
	Salt string `json:"salt"`
}

type invitationResponse struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// adminCreateInvitation: POST /admin/invitations {"email"?,"expires_in"?,
// "salt"?} -> 201 {"id","token","expires_at"}. The token is shown once.
func (a *API) adminCreateInvitation(w http.ResponseWriter, r *http.Request) {
	var req invitationRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	if adminRequest(r) != nil && req.Email != "" && len(req.Salt) < minSaltLength {
		writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "a signed request naming an email must carry a random salt of at least %d characters", minSaltLength))
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
	inv, err := a.ledger.CreateInvitation(r.Context(), ledger.CreateInvitation{Actor: adminActor(r), Request: adminRequest(r),
		Email: req.Email, ExpiresIn: expiresIn})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, invitationResponse{ID: inv.ID, Token: inv.Token.Reveal(), ExpiresAt: inv.ExpiresAt})
}
