package client

import (
	"context"
	"net/http"
	"time"
)

// Me is who a session is: GET /users/me.
type Me struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"` // "user" or "admin"
	CreatedAt time.Time `json:"created_at"`
}

// IsAdmin reports whether the session is an admin's.
func (m Me) IsAdmin() bool { return m.Role == "admin" }

// Me returns who the session is: GET /users/me. Errors: ErrNoSession;
// *Error with status 401.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var out Me
	err := c.do(ctx, request{method: http.MethodGet, path: "/users/me", auth: true}, &out)
	return out, err
}

// AdminUser is a user as an admin sees it.
type AdminUser struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"` // empty once erased
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	Erased    bool      `json:"erased"`
	CreatedAt time.Time `json:"created_at"`
}

// AdminListUsers returns every user: GET /admin/users. Errors:
// ErrNoSession; *Error with status 401 or 403.
func (c *Client) AdminListUsers(ctx context.Context) ([]AdminUser, error) {
	var out struct {
		Users []AdminUser `json:"users"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/admin/users", auth: true}, &out)
	return out.Users, err
}

// AdminEnableUser lets a disabled user in again, recording reason: POST
// /admin/users/{id}/enable. Errors: ErrNoSession; *Error with status 401,
// 403 or 404.
func (c *Client) AdminEnableUser(ctx context.Context, id, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/admin/users/" + escape(id) + "/enable",
		body: reasonBody{reason}, auth: true}, nil)
}

// Integrity is GET /admin/integrity: the log's trust root, its newest
// checkpoint, and the verdict of serve's last verification of the log.
type Integrity struct {
	TrustRoot *struct {
		Fingerprint string `json:"fingerprint"`
		Seq         uint64 `json:"seq"`
	} `json:"trust_root"`
	Checkpoint *struct {
		Seq  uint64    `json:"seq"`
		Size uint64    `json:"size"`
		Root string    `json:"root"`
		Time time.Time `json:"time"`
	} `json:"checkpoint"`
	CheckpointError string        `json:"checkpoint_error"`
	Verify          VerifyVerdict `json:"verify"`
}

// VerifyVerdict is the outcome of serve's last verification of the log.
type VerifyVerdict struct {
	// State is "never", "running" (the first one runs), "ok", "failed"
	// (problems found) or "error" (it could not finish).
	State         string     `json:"state"`
	Running       bool       `json:"running"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	Seconds       float64    `json:"seconds"`
	Messages      uint64     `json:"messages"`
	LastSeq       uint64     `json:"last_seq"`
	VerifiedUpTo  uint64     `json:"verified_up_to"`
	Checkpoints   int        `json:"checkpoints"`
	AdminRequests uint64     `json:"admin_requests_verified"`
	ProblemCount  int        `json:"problem_count"`
	Problems      []string   `json:"problems"`
	Truncated     bool       `json:"problems_truncated"`
	Error         string     `json:"error"`
	NextAt        *time.Time `json:"next_at"`
}

// AdminIntegrity returns the log's integrity status: GET
// /admin/integrity. Errors: ErrNoSession; *Error with status 401, 403 or
// 503.
func (c *Client) AdminIntegrity(ctx context.Context) (Integrity, error) {
	var out Integrity
	err := c.do(ctx, request{method: http.MethodGet, path: "/admin/integrity", auth: true}, &out)
	return out, err
}

// AdminVerifyLog starts a verification of the whole log (or joins the one
// running): POST /admin/integrity/verify. AdminIntegrity tells its
// verdict once Verify.Running is false. Errors: as AdminIntegrity.
func (c *Client) AdminVerifyLog(ctx context.Context) (Integrity, error) {
	var out Integrity
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/integrity/verify", auth: true}, &out)
	return out, err
}
