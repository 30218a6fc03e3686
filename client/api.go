package client

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Key statuses, as in Key.Status and AdminListKeys' filter.
const (
	StatusActive   = "active"
	StatusRevoked  = "revoked"
	StatusExpired  = "expired"
	StatusDisabled = "disabled"
)

// User is a registered account.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

// Session is a signed-in session; pass Token to WithToken or
// (*Client).WithSession.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// JWKS is the JWK Set that verifies session tokens.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one public key of a JWKS: kty OKP, crv Ed25519.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// PublicKey returns the Ed25519 public key k describes, or an error if k
// is not an OKP Ed25519 key.
func (k JWK) PublicKey() (ed25519.PublicKey, error) {
	if k.Kty != "OKP" || k.Crv != "Ed25519" {
		return nil, fmt.Errorf("keyledger: JWK %q is %s/%s, want OKP/Ed25519", k.Kid, k.Kty, k.Crv)
	}
	b, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("keyledger: JWK %q: x is not a base64url Ed25519 public key", k.Kid)
	}
	return ed25519.PublicKey(b), nil
}

// RateLimit allows at most Limit accepted requests in each Window,
// counted across every validation node together. Window is a whole
// number and one unit of s, m, h or d, from "1s" to "1d": "1m", "1h".
type RateLimit struct {
	Limit  uint64 `json:"limit"`
	Window string `json:"window"`
}

// Refill sets a key's remaining credits back up to Amount every
// Interval ("1m" to "366d": "24h", "30d") after they were set.
type Refill struct {
	Amount   uint64 `json:"amount"`
	Interval string `json:"interval"`
}

// Credits are a key's credits as they are set: each accepted validation
// costs one (or the request's cost) until none remain.
type Credits struct {
	Remaining uint64  `json:"remaining"`
	Refill    *Refill `json:"refill,omitempty"`
}

// KeyCredits are a key's credits as its views show them. Remaining is
// live as the validation nodes count it, or, when serve cannot ask them,
// what the key's policy grants with none spent.
type KeyCredits struct {
	Remaining    uint64     `json:"remaining"`
	Refill       *Refill    `json:"refill"`
	NextRefillAt *time.Time `json:"next_refill_at"`
}

// CreateKeyRequest describes a new API key. Every field is optional.
type CreateKeyRequest struct {
	// Name labels the key for its owner.
	Name string
	// ExpiresAt, if set, is when the key stops validating.
	ExpiresAt *time.Time
	// SignedOnly makes a key that refuses its secret in headers: only
	// requests signed with it (see Signer) validate.
	SignedOnly bool
	// Scopes are what the key grants ("orders:read", "orders:*", "*").
	Scopes []string
	// Metadata is a JSON object (at most 4 KiB) that validation returns
	// with the key. It stays in the event log: labels, not personal data.
	Metadata json.RawMessage
	// RateLimit and Credits are the key's limits; nil: none.
	RateLimit *RateLimit
	Credits   *Credits
}

// CreatedKey is a new API key with its secret, which the API shows only
// this once.
type CreatedKey struct {
	APIKey     string          `json:"api_key"`
	Secret     string          `json:"secret"`
	Name       string          `json:"name"`
	Status     string          `json:"status"`
	SignedOnly bool            `json:"signed_only"`
	CreatedAt  time.Time       `json:"created_at"`
	ExpiresAt  *time.Time      `json:"expires_at"`
	Scopes     []string        `json:"scopes"`
	Metadata   json.RawMessage `json:"metadata"`
	RateLimit  *RateLimit      `json:"rate_limit"`
	Credits    *KeyCredits     `json:"credits"`
	Version    uint64          `json:"version"`
	// Owner is set on a team's key only.
	Owner *KeyOwner `json:"owner,omitempty"`
}

// KeyOwner is who owns a team's key: Type "team", the team's ID, the
// member who created it and, for a service account's key, the service
// account.
type KeyOwner struct {
	Type           string `json:"type"`
	ID             string `json:"id"`
	CreatedBy      string `json:"created_by"`
	ServiceAccount string `json:"service_account,omitempty"`
}

// Key is an API key as the API lists it, without its secret.
type Key struct {
	APIKey     string `json:"api_key"`
	Name       string `json:"name"`
	Status     string `json:"status"` // StatusActive, StatusRevoked, StatusExpired or StatusDisabled
	SignedOnly bool   `json:"signed_only"`
	// CanSign is false for a key made before signed requests existed and
	// not regenerated since: the log holds no public key for it.
	CanSign             bool            `json:"can_sign"`
	CreatedAt           time.Time       `json:"created_at"`
	ExpiresAt           *time.Time      `json:"expires_at"`
	RevokedAt           *time.Time      `json:"revoked_at"`
	SecretRegeneratedAt *time.Time      `json:"secret_regenerated_at"`
	Scopes              []string        `json:"scopes"`
	Metadata            json.RawMessage `json:"metadata"`
	// Version counts the key's changes: pass it to EditKey to change the
	// key only if nobody changed it since.
	Version uint64 `json:"version"`
	// PreviousSecretExpiresAt is when the secret replaced by the last
	// regeneration stops validating; nil when it does not.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	// LastUsedAt is the key's last valid use, as precise as the
	// validation nodes' usage interval; nil: never used, or not reported
	// yet.
	LastUsedAt *time.Time `json:"last_used_at"`
	// RateLimit and Credits are the key's limits; nil: none.
	RateLimit *RateLimit  `json:"rate_limit"`
	Credits   *KeyCredits `json:"credits"`
	// UserID is the owner; only AdminListKeys fills it in.
	UserID string `json:"user_id,omitempty"`
	// Owner is set on a team's key only.
	Owner *KeyOwner `json:"owner,omitempty"`
}

// ListOptions page through ListKeys. The zero value asks for the first
// page at the server's default size.
type ListOptions struct {
	// Limit is the page size, 1-200; 0 means the server's default (50).
	Limit int
	// Cursor is a previous page's NextCursor; empty means the first page.
	Cursor string
}

// KeyPage is one page of keys, newest first.
type KeyPage struct {
	Keys []Key `json:"keys"`
	// NextCursor fetches the next page; empty on the last page.
	NextCursor string `json:"next_cursor"`
}

// RegeneratedSecret is a key's new secret, which the API shows only this
// once.
type RegeneratedSecret struct {
	APIKey string `json:"api_key"`
	Secret string `json:"secret"`
}

// Identity is who a validated API key belongs to, and its policy.
// RateLimit and Credits are where a key with limits stands after this
// validation (nil for a key without).
type Identity struct {
	APIKey string `json:"api_key"`
	// UserID is the owner, or for a team's key the member who created it.
	UserID string `json:"user_id"`
	// OwnerType is "user" or "team", OwnerID the user or the team.
	OwnerType string `json:"owner_type"`
	OwnerID   string `json:"owner_id"`
	// CreatedBy is the user who created the key, or for a service
	// account's key the service account (also in ServiceAccount).
	CreatedBy      string             `json:"created_by"`
	ServiceAccount string             `json:"service_account,omitempty"`
	Name           string             `json:"name"`
	Scopes         []string           `json:"scopes"`
	Metadata       json.RawMessage    `json:"metadata"`
	RateLimit      *RateLimitStanding `json:"rate_limit,omitempty"`
	Credits        *CreditsStanding   `json:"credits,omitempty"`
}

// RateLimitStanding is a key's rate limit as a validation leaves it: the
// limit, what is left of it in the window, and the seconds until the
// window ends.
type RateLimitStanding struct {
	Limit     uint64 `json:"limit"`
	Remaining uint64 `json:"remaining"`
	Reset     int64  `json:"reset"`
}

// CreditsStanding is a key's credits as a validation leaves them.
type CreditsStanding struct {
	Remaining uint64 `json:"remaining"`
}

// KeyEdit is a change to a key (see EditKey). Nil fields stay as they
// are; ClearExpiry makes the key never expire.
type KeyEdit struct {
	Name        *string
	Scopes      *[]string        // a pointer to nil or empty: no scope
	Metadata    *json.RawMessage // a pointer to nil: no metadata
	ExpiresAt   *time.Time
	ClearExpiry bool
	// RateLimit sets the key's rate limit; ClearRateLimit removes it.
	RateLimit      *RateLimit
	ClearRateLimit bool
	// Credits sets the key's credits anew (a new credit epoch: what was
	// spent no longer counts); ClearCredits removes them.
	Credits      *Credits
	ClearCredits bool
}

// body is the edit's PATCH body.
func (e KeyEdit) body() map[string]any {
	b := map[string]any{}
	if e.Name != nil {
		b["name"] = *e.Name
	}
	if e.Scopes != nil {
		b["scopes"] = *e.Scopes
		if *e.Scopes == nil {
			b["scopes"] = []string{}
		}
	}
	if e.Metadata != nil {
		b["metadata"] = *e.Metadata
		if *e.Metadata == nil {
			b["metadata"] = nil
		}
	}
	if e.ExpiresAt != nil {
		b["expires_at"] = e.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	if e.ClearExpiry {
		b["expires_at"] = nil
	}
	if e.RateLimit != nil {
		b["rate_limit"] = e.RateLimit
	}
	if e.ClearRateLimit {
		b["rate_limit"] = nil
	}
	if e.Credits != nil {
		b["credits"] = e.Credits
	}
	if e.ClearCredits {
		b["credits"] = nil
	}
	return b
}

// ifMatch is the If-Match header of a version condition (0: none).
func ifMatch(version uint64) http.Header {
	if version == 0 {
		return nil
	}
	return http.Header{"If-Match": {`"` + strconv.FormatUint(version, 10) + `"`}}
}

// Readiness is the server's progress through the event log.
type Readiness struct {
	Ready      bool   `json:"ready"`
	AppliedSeq uint64 `json:"applied_seq"`
	StartSeq   uint64 `json:"start_seq"`
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Register creates an account: POST /users. Errors: *Error with status
// 400 (invalid email or weak password), 409 (email taken), 429.
func (c *Client) Register(ctx context.Context, email, password string) (User, error) {
	var u User
	err := c.do(ctx, request{method: http.MethodPost, path: "/users", body: credentials{email, password}}, &u)
	return u, err
}

// EraseMe erases the session's user for good, confirmed with their
// password: DELETE /users/me. Their email and password hash become
// unreadable everywhere, their keys are revoked, their sessions end, and
// the address may register again. A retry after a lost answer gets 401:
// the first attempt ended the session. Errors: ErrNoSession; *Error with
// status 401 (session), 403 (wrong password), 404, 429.
func (c *Client) EraseMe(ctx context.Context, password string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/users/me",
		body: struct {
			Password string `json:"password"`
		}{password}, auth: true}, nil)
}

// ChangePassword replaces the session user's password, confirmed with the
// current one: POST /users/me/password. Every session of the user ends,
// this client's included: log in again with the new password.
// Errors: ErrNoSession; *Error with status 400 (the new password breaks
// the policy), 401, 403 (wrong current password) or 429.
func (c *Client) ChangePassword(ctx context.Context, current, next string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/users/me/password",
		body: struct {
			CurrentPassword string `json:"current_password"`
			NewPassword     string `json:"new_password"`
		}{current, next}, auth: true}, nil)
}

// RevokeSessions ends every session of the session's user, on every
// serve instance, this client's included: POST /users/me/sessions/revoke.
// Errors: ErrNoSession; *Error with status 401.
func (c *Client) RevokeSessions(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/users/me/sessions/revoke", auth: true}, nil)
}

// Logout ends this client's session on every serve instance: DELETE
// /sessions/current. The user's other sessions hold.
// Errors: ErrNoSession; *Error with status 401.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/sessions/current", auth: true}, nil)
}

// Login signs in: POST /sessions. Errors: *Error with status 401 (wrong
// password or unknown email alike) or 429 (throttled; see RetryAfter).
func (c *Client) Login(ctx context.Context, email, password string) (Session, error) {
	var s Session
	err := c.do(ctx, request{method: http.MethodPost, path: "/sessions", body: credentials{email, password}}, &s)
	return s, err
}

// JWKS returns the JWK Set that verifies session tokens:
// GET /.well-known/jwks.json.
func (c *Client) JWKS(ctx context.Context) (JWKS, error) {
	var set JWKS
	err := c.do(ctx, request{method: http.MethodGet, path: "/.well-known/jwks.json"}, &set)
	return set, err
}

// CreateKey creates an API key for the session's user: POST /api-keys.
// Errors: ErrNoSession; *Error with status 400 (e.g. an expiry in the
// past) or 401.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (CreatedKey, error) {
	return c.createKeyAt(ctx, "/api-keys", req)
}

// createKeyAt creates a key with a POST of req to path.
func (c *Client) createKeyAt(ctx context.Context, path string, req CreateKeyRequest) (CreatedKey, error) {
	body := struct {
		Name       string          `json:"name,omitempty"`
		ExpiresAt  *string         `json:"expires_at,omitempty"`
		SignedOnly bool            `json:"signed_only,omitempty"`
		Scopes     []string        `json:"scopes,omitempty"`
		Metadata   json.RawMessage `json:"metadata,omitempty"`
		RateLimit  *RateLimit      `json:"rate_limit,omitempty"`
		Credits    *Credits        `json:"credits,omitempty"`
	}{Name: req.Name, SignedOnly: req.SignedOnly, Scopes: req.Scopes, Metadata: req.Metadata, RateLimit: req.RateLimit,
		Credits: req.Credits}
	if req.ExpiresAt != nil {
		s := req.ExpiresAt.UTC().Format(time.RFC3339Nano)
		body.ExpiresAt = &s
	}
	var k CreatedKey
	err := c.do(ctx, request{method: http.MethodPost, path: path, body: body, auth: true}, &k)
	return k, err
}

// ListKeys returns one page of the session user's keys, newest first:
// GET /api-keys. Errors: ErrNoSession; *Error with status 400 (bad limit
// or cursor) or 401. See AllKeys to walk every page.
func (c *Client) ListKeys(ctx context.Context, opts ListOptions) (KeyPage, error) {
	if opts.Limit < 0 {
		return KeyPage{}, errors.New("keyledger: ListOptions.Limit must not be negative")
	}
	q := url.Values{}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var p KeyPage
	err := c.do(ctx, request{method: http.MethodGet, path: "/api-keys", query: q, auth: true}, &p)
	return p, err
}

// AllKeys iterates over every key of the session's user, newest first,
// fetching pages of opts.Limit starting at opts.Cursor as it goes. On an
// error it yields a zero Key with the error (as ListKeys returns it) and
// stops.
func (c *Client) AllKeys(ctx context.Context, opts ListOptions) iter.Seq2[Key, error] {
	return func(yield func(Key, error) bool) {
		for {
			page, err := c.ListKeys(ctx, opts)
			if err != nil {
				yield(Key{}, err)
				return
			}
			for _, k := range page.Keys {
				if !yield(k, nil) {
					return
				}
			}
			if page.NextCursor == "" || page.NextCursor == opts.Cursor {
				return
			}
			opts.Cursor = page.NextCursor
		}
	}
}

// GetKey returns one of the session user's keys: GET /api-keys/{api_key}.
// Errors: ErrNoSession; *Error with status 401 or 404 (no such key, or
// someone else's).
func (c *Client) GetKey(ctx context.Context, apiKey string) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodGet, path: "/api-keys/" + escape(apiKey), auth: true}, &k)
	return k, err
}

// RevokeKey revokes one of the session user's keys: DELETE
// /api-keys/{api_key}. Revoking a revoked key succeeds. Errors:
// ErrNoSession; *Error with status 401 or 404.
func (c *Client) RevokeKey(ctx context.Context, apiKey string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/api-keys/" + escape(apiKey), auth: true, waitable: true}, nil)
}

// RegenerateSecret replaces a key's secret; the old one stops validating:
// POST /api-keys/{api_key}/regenerate. Errors: ErrNoSession; *Error with
// status 401, 404 or 409 (the key is revoked or expired).
func (c *Client) RegenerateSecret(ctx context.Context, apiKey string) (RegeneratedSecret, error) {
	var s RegeneratedSecret
	err := c.do(ctx, request{method: http.MethodPost, path: "/api-keys/" + escape(apiKey) + "/regenerate", auth: true, waitable: true}, &s)
	return s, err
}

// RegenerateSecretWithGrace is RegenerateSecret with a grace period: the
// old secret keeps validating for grace (up to 168h) on every node. A
// later regenerate, revoke or disable ends it at once. Errors: as
// RegenerateSecret, and 400 for a grace period out of range.
func (c *Client) RegenerateSecretWithGrace(ctx context.Context, apiKey string, grace time.Duration) (RegeneratedSecret, error) {
	var s RegeneratedSecret
	body := map[string]string{"grace_period": grace.String()}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api-keys/" + escape(apiKey) + "/regenerate", body: body,
		auth: true, waitable: true}, &s)
	return s, err
}

// EditKey changes one of the session user's keys: PATCH
// /api-keys/{api_key}. With ifVersion (not 0) the change is made only if
// the key is still at that Version. It returns the key as it is then.
// Errors: ErrNoSession; *Error with status 400, 401, 404, 409 (revoked)
// or 412 (the key changed since ifVersion).
func (c *Client) EditKey(ctx context.Context, apiKey string, edit KeyEdit, ifVersion uint64) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodPatch, path: "/api-keys/" + escape(apiKey), body: edit.body(),
		header: ifMatch(ifVersion), auth: true, waitable: true}, &k)
	return k, err
}

// AddCredits tops up one of the session user's keys by n credits: POST
// /api-keys/{api_key}/credits. It returns the key as it is then. Errors:
// ErrNoSession; *Error with status 400 (n not 1 to 10^12), 401, 404 or
// 409 (the key has no credits, or is revoked).
func (c *Client) AddCredits(ctx context.Context, apiKey string, n uint64) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodPost, path: "/api-keys/" + escape(apiKey) + "/credits",
		body: struct {
			Add uint64 `json:"add"`
		}{n}, auth: true}, &k)
	return k, err
}

// DisableKey pauses one of the session user's keys, recording reason:
// POST /api-keys/{api_key}/disable. It is refused everywhere until
// EnableKey. Errors: ErrNoSession; *Error with status 400, 401, 404 or
// 409 (revoked).
func (c *Client) DisableKey(ctx context.Context, apiKey, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/api-keys/" + escape(apiKey) + "/disable",
		body: reasonBody{reason}, auth: true, waitable: true}, nil)
}

// EnableKey resumes a disabled key: POST /api-keys/{api_key}/enable.
// Errors: as DisableKey.
func (c *Client) EnableKey(ctx context.Context, apiKey, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/api-keys/" + escape(apiKey) + "/enable",
		body: reasonBody{reason}, auth: true}, nil)
}

// ValidateScopes is Validate for a request that requires scopes: every
// one must be granted. Errors: as Validate, and *Error with status 403
// (IsForbidden) for a valid key lacking one.
func (c *Client) ValidateScopes(ctx context.Context, apiKey, secret string, style HeaderStyle, scopes ...string) (Identity, error) {
	h := http.Header{}
	if err := setCredentials(h, apiKey, secret, style); err != nil {
		return Identity{}, err
	}
	q := url.Values{"scope": scopes}
	var id Identity
	err := c.do(ctx, request{method: http.MethodGet, path: "/validate", query: q, header: h}, &id)
	return id, err
}

// ValidateCost is Validate for a request that costs cost credits (1 to
// 1,000,000; 0 means 1) of a key with credits. Errors: those of Validate,
// and *Error with status 429 (code rate_limited or usage_exceeded, and
// RetryAfter) for a key past its limits.
func (c *Client) ValidateCost(ctx context.Context, apiKey, secret string, style HeaderStyle, cost uint64) (Identity, error) {
	h := http.Header{}
	if err := setCredentials(h, apiKey, secret, style); err != nil {
		return Identity{}, err
	}
	q := url.Values{}
	if cost > 0 {
		q.Set("cost", strconv.FormatUint(cost, 10))
	}
	var id Identity
	err := c.do(ctx, request{method: http.MethodGet, path: "/validate", query: q, header: h}, &id)
	return id, err
}

// Validate checks API-key credentials against /validate, sending them in
// style, and returns whose key it is. It does not send the session token.
// Errors: *Error with status 401 for every bad credential (unknown key,
// wrong secret, revoked, expired, malformed) or 503 when the node cannot
// vouch for its view.
func (c *Client) Validate(ctx context.Context, apiKey, secret string, style HeaderStyle) (Identity, error) {
	h := http.Header{}
	if err := setCredentials(h, apiKey, secret, style); err != nil {
		return Identity{}, err
	}
	var id Identity
	err := c.do(ctx, request{method: http.MethodGet, path: "/validate", header: h}, &id)
	return id, err
}

// Healthz reports whether the server is alive: GET /healthz. Errors:
// *Error for any status but 200.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
}

// Readyz returns the server's progress through the event log: GET
// /readyz. A server still catching up is not an error: its 503 answer
// gives a Readiness with Ready false and a nil error. Errors: *Error for
// any other answer.
func (c *Client) Readyz(ctx context.Context) (Readiness, error) {
	req := request{method: http.MethodGet, path: "/readyz"}
	resp, err := c.send(ctx, req)
	if err != nil {
		return Readiness{}, err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return Readiness{}, parseError(resp)
	}
	var r Readiness
	if err := decodeBody(req, resp, &r); err != nil {
		return Readiness{}, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable && r.Ready {
		// A 503 that claims readiness came from something in between.
		return Readiness{}, &Error{Status: resp.StatusCode, Code: CodeUnavailable, Message: "service unavailable",
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return r, nil
}

type reasonBody struct {
	Reason string `json:"reason,omitempty"`
}

// AdminListKeys lists every key, or one user's if user is not empty, with
// the given statuses (StatusActive, StatusRevoked, StatusExpired; none
// means all): GET /admin/keys. Each Key has its UserID. Errors:
// ErrNoSession; *Error with status 400, 401 or 403 (not an admin).
func (c *Client) AdminListKeys(ctx context.Context, user string, statuses ...string) ([]Key, error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	if len(statuses) > 0 {
		q.Set("status", strings.Join(statuses, ","))
	}
	var out struct {
		Keys []Key `json:"keys"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/admin/keys", query: q, auth: true}, &out)
	return out.Keys, err
}

// AdminRevokeKey revokes anyone's key, recording reason: DELETE
// /admin/keys/{api_key}. Errors: ErrNoSession; *Error with status 401,
// 403 or 404.
func (c *Client) AdminRevokeKey(ctx context.Context, apiKey, reason string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/admin/keys/" + escape(apiKey),
		body: reasonBody{reason}, auth: true, waitable: true}, nil)
}

// AdminEditKey changes anyone's key (its scopes, say): PATCH
// /admin/keys/{api_key}, recorded with the admin as actor. Errors:
// ErrNoSession; *Error with status 400, 401, 403, 404, 409 or 412.
func (c *Client) AdminEditKey(ctx context.Context, apiKey string, edit KeyEdit, ifVersion uint64) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodPatch, path: "/admin/keys/" + escape(apiKey), body: edit.body(),
		header: ifMatch(ifVersion), auth: true, waitable: true}, &k)
	return k, err
}

// AdminAddCredits tops up anyone's key by n credits, recording reason:
// POST /admin/keys/{api_key}/credits. It returns the key as it is then.
// Errors: ErrNoSession; *Error with status 400, 401, 403, 404 or 409.
func (c *Client) AdminAddCredits(ctx context.Context, apiKey string, n uint64, reason string) (Key, error) {
	var k Key
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/keys/" + escape(apiKey) + "/credits",
		body: struct {
			Add    uint64 `json:"add"`
			Reason string `json:"reason,omitempty"`
		}{n, reason}, auth: true}, &k)
	return k, err
}

// AdminDisableKey pauses anyone's key, recording reason: POST
// /admin/keys/{api_key}/disable. Errors: ErrNoSession; *Error with status
// 401, 403, 404 or 409.
func (c *Client) AdminDisableKey(ctx context.Context, apiKey, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/admin/keys/" + escape(apiKey) + "/disable",
		body: reasonBody{reason}, auth: true, waitable: true}, nil)
}

// AdminEnableKey resumes anyone's disabled key: POST
// /admin/keys/{api_key}/enable. Errors: as AdminDisableKey.
func (c *Client) AdminEnableKey(ctx context.Context, apiKey, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/admin/keys/" + escape(apiKey) + "/enable",
		body: reasonBody{reason}, auth: true}, nil)
}

// AdminDisableUser disables a user, recording reason: POST
// /admin/users/{id}/disable. Their logins and sessions are refused and
// their keys stop validating. Errors: ErrNoSession; *Error with status
// 401, 403 or 404.
func (c *Client) AdminDisableUser(ctx context.Context, id, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/admin/users/" + escape(id) + "/disable",
		body: reasonBody{reason}, auth: true}, nil)
}

// AdminRevokeSessions ends every session of a user on every serve
// instance, recording reason: POST /admin/users/{id}/revoke-sessions.
// Errors: ErrNoSession; *Error with status 401, 403 or 404.
func (c *Client) AdminRevokeSessions(ctx context.Context, id, reason string) error {
	return c.do(ctx, request{method: http.MethodPost, path: "/admin/users/" + escape(id) + "/revoke-sessions",
		body: reasonBody{reason}, auth: true}, nil)
}

// AdminRevokeUserKeys revokes every live key of a user, recording reason,
// and returns the keys it revoked: POST /admin/users/{id}/revoke-keys.
// Errors: ErrNoSession; *Error with status 401, 403 or 404.
func (c *Client) AdminRevokeUserKeys(ctx context.Context, id, reason string) ([]string, error) {
	var out struct {
		Revoked []string `json:"revoked"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/admin/users/" + escape(id) + "/revoke-keys",
		body: reasonBody{reason}, auth: true}, &out)
	return out.Revoked, err
}

// UsageBucket is a key's validations in one hour or day from Start.
type UsageBucket struct {
	Start time.Time `json:"start"`
	Valid uint64    `json:"valid"`
	// Refused counts refused validations by reason (wrong_secret,
	// revoked, ...).
	Refused map[string]uint64 `json:"refused"`
}

// UsageQuery selects buckets of KeyUsage: those starting in [From, To)
// (zero: the server's defaults, the last 7 days of hours or 90 of days,
// up to now), of size Bucket ("1h", the default, or "1d").
type UsageQuery struct {
	From, To time.Time
	Bucket   string
}

// KeyUsage returns the usage of one of the session user's keys, oldest
// bucket first, buckets with counts only: GET /api-keys/{api_key}/usage.
// Errors: ErrNoSession; *Error with status 400, 401 or 404.
func (c *Client) KeyUsage(ctx context.Context, apiKey string, uq UsageQuery) ([]UsageBucket, error) {
	q := url.Values{}
	if !uq.From.IsZero() {
		q.Set("from", uq.From.UTC().Format(time.RFC3339))
	}
	if !uq.To.IsZero() {
		q.Set("to", uq.To.UTC().Format(time.RFC3339))
	}
	if uq.Bucket != "" {
		q.Set("bucket", uq.Bucket)
	}
	var out struct {
		Buckets []UsageBucket `json:"buckets"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api-keys/" + escape(apiKey) + "/usage", query: q, auth: true}, &out)
	return out.Buckets, err
}

// BusyKey is one of the busiest keys of AdminUsage.
type BusyKey struct {
	APIKey     string            `json:"api_key"`
	Valid      uint64            `json:"valid"`
	Refused    map[string]uint64 `json:"refused"`
	LastUsedAt *time.Time        `json:"last_used_at"`
}

// AdminUsage returns the top keys with the most validations within window
// (zero: 24h; at most 168h), busiest first (top zero: 20): GET
// /admin/usage. Errors: ErrNoSession; *Error with status 400, 401 or 403.
func (c *Client) AdminUsage(ctx context.Context, window time.Duration, top int) ([]BusyKey, error) {
	q := url.Values{}
	if window != 0 {
		q.Set("window", window.String())
	}
	if top != 0 {
		q.Set("top", strconv.Itoa(top))
	}
	var out struct {
		Keys []BusyKey `json:"keys"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/admin/usage", query: q, auth: true}, &out)
	return out.Keys, err
}
