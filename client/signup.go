package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"
)

// StatusVerificationPending is SignUpResult.Status for a registration that
// waits for its email verification.
const StatusVerificationPending = "verification_pending"

// SignUpRequest is a registration. Invitation is the token of an admin's
// invitation, needed when the server runs in invite mode.
type SignUpRequest struct {
	Email      string `json:"email"`
	Password   string `json:"password"`
	Invitation string `json:"invitation,omitempty"`
}

// SignUpResult is the answer to a registration: the new user (open and
// invite modes), or, in verified mode, Status StatusVerificationPending and
// no user, whether or not the address was free (a message went to it
// either way).
type SignUpResult struct {
	User
	Status string `json:"status"`
}

// Pending reports whether the account waits for its email verification.
func (r SignUpResult) Pending() bool { return r.Status == StatusVerificationPending }

// SignUp registers: POST /users. Errors: *Error with status 400 (bad email
// or password), 403 (registration closed, or invite mode without a working
// invitation), 409 (address taken, in open and invite modes) or 429.
func (c *Client) SignUp(ctx context.Context, req SignUpRequest) (SignUpResult, error) {
	var r SignUpResult
	err := c.do(ctx, request{method: http.MethodPost, path: "/users", body: req}, &r)
	return r, err
}

// VerifyEmail proves an address with the token mailed to it: POST
// /users/verify. Errors: *Error with status 400 (a token that does not
// work: unknown, used or expired alike).
func (c *Client) VerifyEmail(ctx context.Context, token string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/users/verify",
		body: struct {
			Token string `json:"token"`
		}{token}}, nil)
}

// ResendVerification asks for a new verification link: POST
// /users/verify/resend. It answers the same for every address. Errors:
// *Error with status 400 (not an address) or 429.
func (c *Client) ResendVerification(ctx context.Context, email string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/users/verify/resend",
		body: struct {
			Email string `json:"email"`
		}{email}}, nil)
}

// InvitationRequest describes an invitation; both fields are optional.
type InvitationRequest struct {
	// Email, if set, is the one address the invitation admits.
	Email string
	// ExpiresIn is how long it works (0: the server's default, 7 days).
	ExpiresIn time.Duration
}

// Invitation is an issued invitation. Token is shown only this once: hand
// it to the person invited, who passes it to SignUp.
type Invitation struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AdminCreateInvitation issues a single-use invitation to register: POST
// /admin/invitations. Errors: ErrNoSession; *Error with status 400, 401 or
// 403.
func (c *Client) AdminCreateInvitation(ctx context.Context, req InvitationRequest) (Invitation, error) {
	body := struct {
		Email     string `json:"email,omitempty"`
		ExpiresIn string `json:"expires_in,omitempty"`
		Salt      string `json:"salt,omitempty"`
	}{Email: req.Email}
	if req.ExpiresIn != 0 {
		body.ExpiresIn = req.ExpiresIn.String()
	}
	if req.Email != "" {
		// The salt keeps the digest of a signed body, which the server
		// keeps in the log, from being a hash of the address.
		var salt [24]byte
		if _, err := rand.Read(salt[:]); err != nil {
			return Invitation{}, err
		}
		body.Salt = base64.RawURLEncoding.EncodeToString(salt[:])
	}
	var inv Invitation
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/invitations", body: body, auth: true}, &inv)
	return inv, err
}
