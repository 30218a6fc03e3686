package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

type createKeyRequest struct {
	Name       string         `json:"name"`
	ExpiresAt  *string        `json:"expires_at"`
	SignedOnly bool           `json:"signed_only"`
	Scopes     []string       `json:"scopes"`
	Metadata   jsontext.Value `json:"metadata,omitempty"`
	RateLimit  jsontext.Value `json:"rate_limit,omitempty"`
	Credits    jsontext.Value `json:"credits,omitempty"`
}

type createKeyResponse struct {
	APIKey     string            `json:"api_key"`
	Secret     string            `json:"secret"`
	Name       string            `json:"name"`
	Status     string            `json:"status"`
	SignedOnly bool              `json:"signed_only"`
	CreatedAt  time.Time         `json:"created_at"`
	ExpiresAt  *time.Time        `json:"expires_at"`
	Scopes     []string          `json:"scopes"`
	Metadata   jsontext.Value    `json:"metadata"`
	RateLimit  *domain.RateLimit `json:"rate_limit"`
	Credits    *creditsView      `json:"credits"`
	Version    uint64            `json:"version"`
	// Owner is set on a team's key only: a user's own key has none.
	Owner *keyOwnerView `json:"owner,omitempty"`
}

// keyOwnerView is who owns a team's key, as its views show it.
type keyOwnerView struct {
	Type           string `json:"type"` // always "team"
	ID             string `json:"id"`   // the team
	CreatedBy      string `json:"created_by"`
	ServiceAccount string `json:"service_account,omitempty"`
}

// ownerView is a team key's owner view; nil for a user's own key.
func ownerView(k domain.Key) *keyOwnerView {
	if k.TeamID == "" {
		return nil
	}
	return &keyOwnerView{Type: "team", ID: k.TeamID, CreatedBy: k.UserID, ServiceAccount: k.ServiceAccount}
}

type keyResponse struct {
	APIKey                  string         `json:"api_key"`
	Name                    string         `json:"name"`
	Status                  string         `json:"status"`
	SignedOnly              bool           `json:"signed_only"`
	CanSign                 bool           `json:"can_sign"`
	CreatedAt               time.Time      `json:"created_at"`
	ExpiresAt               *time.Time     `json:"expires_at"`
	RevokedAt               *time.Time     `json:"revoked_at"`
	SecretRegeneratedAt     *time.Time     `json:"secret_regenerated_at"`
	Scopes                  []string       `json:"scopes"`
	Metadata                jsontext.Value `json:"metadata"`
	Version                 uint64         `json:"version"`
	PreviousSecretExpiresAt *time.Time     `json:"previous_secret_expires_at"`
	// LastUsedAt is the key's last valid use, as precise as the nodes'
	// usage interval; null: never used (or not yet reported).
	LastUsedAt *time.Time `json:"last_used_at"`
	// RateLimit and Credits are the key's limits; null: none.
	RateLimit *domain.RateLimit `json:"rate_limit"`
	Credits   *creditsView      `json:"credits"`
	// Owner is set on a team's key only: a user's own key has none.
	Owner *keyOwnerView `json:"owner,omitempty"`
}

// editKeyRequest is PATCH /api-keys/{key}: a field left out stays as it
// is; null clears it (the name to none, the scopes to none, the metadata
// to none, the expiry to never, the rate limit and credits to none).
type editKeyRequest struct {
	Name      jsontext.Value `json:"name,omitempty"`
	Scopes    jsontext.Value `json:"scopes,omitempty"`
	Metadata  jsontext.Value `json:"metadata,omitempty"`
	ExpiresAt jsontext.Value `json:"expires_at,omitempty"`
	RateLimit jsontext.Value `json:"rate_limit,omitempty"`
	Credits   jsontext.Value `json:"credits,omitempty"`
}

type regenerateRequest struct {
	GracePeriod string `json:"grace_period"`
}

type listKeysResponse struct {
	Keys       []keyResponse `json:"keys"`
	NextCursor *string       `json:"next_cursor"`
}

type regenerateResponse struct {
	APIKey string `json:"api_key"`
	Secret string `json:"secret"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (a *API) keyView(ctx context.Context, k domain.Key) keyResponse {
	now := a.ledger.Now()
	v := keyResponse{APIKey: k.APIKey, Name: k.Name, Status: string(k.StatusAt(now)),
		SignedOnly: k.SignedOnly, CanSign: !k.PublicKey.IsZero(),
		CreatedAt: k.CreatedAt, ExpiresAt: timePtr(k.ExpiresAt), RevokedAt: timePtr(k.RevokedAt),
		SecretRegeneratedAt: timePtr(k.SecretRegeneratedAt), Scopes: k.Scopes.List(), Metadata: metadataView(k),
		Version: k.Version, LastUsedAt: a.lastUsed(k.APIKey), RateLimit: k.RateLimit, Credits: a.creditsOf(ctx, k, now),
		Owner: ownerView(k)}
	if k.PreviousInGrace(now) && !k.Revoked() && !k.Disabled() {
		v.PreviousSecretExpiresAt = timePtr(k.PreviousExpiresAt)
	}
	return v
}

// metadataView is a key's metadata as a view shows it: {} for none.
func metadataView(k domain.Key) jsontext.Value {
	if k.Metadata == "" {
		return jsontext.Value("{}")
	}
	return jsontext.Value(k.Metadata)
}

// etag is the entity tag of a key's view: its version, which every change
// of the key increments.
func etag(k domain.Key) string { return `"` + strconv.FormatUint(k.Version, 10) + `"` }

// writeKey answers one key's view with its ETag.
func (a *API) writeKey(w http.ResponseWriter, r *http.Request, k domain.Key) {
	w.Header().Set("ETag", etag(k))
	writeJSON(w, http.StatusOK, a.keyView(r.Context(), k))
}

// ifMatch reads an If-Match header of the form "<version>" (as ETag
// gives it): the version, 0 when there is no header or it is "*".
// Errors: Invalid for anything else.
func ifMatch(r *http.Request) (uint64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	tag, ok := strings.CutPrefix(h, `"`)
	if ok {
		tag, ok = strings.CutSuffix(tag, `"`)
	}
	n, err := strconv.ParseUint(tag, 10, 64)
	if !ok || err != nil || n == 0 || len(tag) > 20 {
		return 0, domain.Errorf(domain.Invalid, `If-Match must be a key's ETag, like "3"`)
	}
	return n, nil
}

// createKey: POST /api-keys {"name"?, "expires_at"?} -> 201 the key and
// its secret, the only response that ever holds it.
func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	a.createKeyFor(w, r, "", "")
}

// createKeyFor creates a key of the caller's (team ""), of a team
// created by the caller, or of one of the team's service accounts.
func (a *API) createKeyFor(w http.ResponseWriter, r *http.Request, team, account string) {
	var req createKeyRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		if err != nil {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "expires_at must be an RFC 3339 time, like 2030-01-02T15:04:05Z"))
			return
		}
		expires = t
	}
	cmd := ledger.CreateKey{UserID: userIDFrom(r.Context()), Name: req.Name,
		ExpiresAt: expires, SignedOnly: req.SignedOnly, Scopes: req.Scopes, Metadata: req.Metadata,
		Preset: presetFrom(r.Context()), TeamID: team, ServiceAccount: account}
	var err error
	if req.RateLimit != nil {
		if cmd.RateLimit, err = parseRateLimit(req.RateLimit); err != nil {
			writeError(w, r, a.logger, err)
			return
		}
	}
	if req.Credits != nil {
		if cmd.Credits, err = parseCredits(req.Credits); err != nil {
			writeError(w, r, a.logger, err)
			return
		}
	}
	k, secret, err := a.ledger.CreateKey(r.Context(), cmd)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api-keys/"+k.APIKey)
	w.Header().Set("ETag", etag(k))
	writeJSON(w, http.StatusCreated, createKeyResponse{APIKey: k.APIKey, Secret: secret.Reveal(), Name: k.Name,
		Status: string(k.StatusAt(a.ledger.Now())), SignedOnly: k.SignedOnly, CreatedAt: k.CreatedAt, ExpiresAt: timePtr(k.ExpiresAt),
		Scopes: k.Scopes.List(), Metadata: metadataView(k), RateLimit: k.RateLimit, Credits: a.creditsOf(r.Context(), k, a.ledger.Now()),
		Version: k.Version, Owner: ownerView(k)})
}

// listKeys: GET /api-keys?limit=&cursor= -> 200 the caller's keys, newest
// first.
func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	a.listKeysOf(w, r, func(limit int, cursor string) ([]domain.Key, string, error) {
		return a.ledger.ListKeys(userIDFrom(r.Context()), limit, cursor)
	})
}

// listKeysOf answers a page of the keys list returns.
func (a *API) listKeysOf(w http.ResponseWriter, r *http.Request, list func(limit int, cursor string) ([]domain.Key, string, error)) {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid, "limit must be a whole number between 1 and 200"))
			return
		}
		limit = n
	}
	keys, next, err := list(limit, q.Get("cursor"))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	resp := listKeysResponse{Keys: make([]keyResponse, len(keys))}
	ctx, cancel := context.WithTimeout(r.Context(), CreditsListTimeout)
	defer cancel()
	for i, k := range keys {
		resp.Keys[i] = a.keyView(ctx, k)
	}
	if next != "" {
		resp.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, resp)
}

// getKey: GET /api-keys/{key} -> 200 the key.
func (a *API) getKey(w http.ResponseWriter, r *http.Request) {
	k, err := a.ledger.GetKey(userIDFrom(r.Context()), r.PathValue("key"))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	a.writeKey(w, r, k)
}

// readEdit decodes a PATCH body into an edit and its version condition.
// Errors: Invalid.
func readEdit(w http.ResponseWriter, r *http.Request) (domain.KeyEdit, uint64, error) {
	var req editKeyRequest
	var edit domain.KeyEdit
	version, err := ifMatch(r)
	if err != nil {
		return edit, 0, err
	}
	if err := readJSON(w, r, &req, false); err != nil {
		return edit, 0, err
	}
	if req.Name != nil {
		edit.SetName = true
		if !isNull(req.Name) {
			if err := decodeStrict(req.Name, &edit.Name); err != nil {
				return edit, 0, domain.Errorf(domain.Invalid, "name must be a string or null")
			}
		}
	}
	if req.Scopes != nil {
		edit.SetScopes = true
		if !isNull(req.Scopes) {
			if err := decodeStrict(req.Scopes, &edit.Scopes); err != nil {
				return edit, 0, domain.Errorf(domain.Invalid, "scopes must be an array of strings or null")
			}
		}
	}
	if req.Metadata != nil {
		edit.SetMetadata, edit.Metadata = true, req.Metadata
	}
	if req.ExpiresAt != nil {
		edit.SetExpiresAt = true
		if !isNull(req.ExpiresAt) {
			var s string
			t, err := time.Time{}, decodeStrict(req.ExpiresAt, &s)
			if err == nil {
				t, err = time.Parse(time.RFC3339, s)
			}
			if err != nil {
				return edit, 0, domain.Errorf(domain.Invalid, "expires_at must be an RFC 3339 time, like 2030-01-02T15:04:05Z, or null")
			}
			edit.ExpiresAt = t
		}
	}
	if req.RateLimit != nil {
		edit.SetRateLimit = true
		if edit.RateLimit, err = parseRateLimit(req.RateLimit); err != nil {
			return edit, 0, err
		}
	}
	if req.Credits != nil {
		edit.SetCredits = true
		if edit.Credits, err = parseCredits(req.Credits); err != nil {
			return edit, 0, err
		}
	}
	return edit, version, nil
}

// editKey: PATCH /api-keys/{key} {"name"?, "scopes"?, "metadata"?,
// "expires_at"?, "rate_limit"?, "credits"?} with an optional If-Match: "<version>" -> 200 the key.
func (a *API) editKey(w http.ResponseWriter, r *http.Request) {
	edit, version, err := readEdit(w, r)
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	k, err := a.ledger.EditKey(r.Context(), ledger.EditKey{UserID: userIDFrom(r.Context()), APIKey: r.PathValue("key"),
		Edit: edit, IfVersion: version, Preset: presetFrom(r.Context())})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	a.writeKey(w, r, k)
}

// disableKey: POST /api-keys/{key}/disable {"reason"?} -> 204.
func (a *API) disableKey(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.DisableKey(ctx, ledger.DisableKey{UserID: userIDFrom(ctx), APIKey: r.PathValue("key"), Reason: reason,
			Preset: presetFrom(ctx)})
	})
}

// enableKey: POST /api-keys/{key}/enable {"reason"?} -> 204.
func (a *API) enableKey(w http.ResponseWriter, r *http.Request) {
	a.reasonCommand(w, r, func(ctx context.Context, reason string) error {
		return a.ledger.EnableKey(ctx, ledger.EnableKey{UserID: userIDFrom(ctx), APIKey: r.PathValue("key"), Reason: reason,
			Preset: presetFrom(ctx)})
	})
}

// revokeKey: DELETE /api-keys/{key} -> 204.
func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	cmd := ledger.RevokeKey{UserID: userIDFrom(r.Context()), APIKey: r.PathValue("key"), Preset: presetFrom(r.Context())}
	if err := a.ledger.RevokeKey(r.Context(), cmd); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// regenerateSecret: POST /api-keys/{key}/regenerate {"grace_period"?} ->
// 200 the new secret.
func (a *API) regenerateSecret(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	var req regenerateRequest
	if err := readJSON(w, r, &req, true); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	var grace time.Duration
	if req.GracePeriod != "" {
		d, err := time.ParseDuration(req.GracePeriod)
		if err != nil || d < 0 || d > domain.MaxGracePeriod {
			writeError(w, r, a.logger, domain.Errorf(domain.Invalid,
				"grace_period must be a duration between 0s and 168h, like 1h or 90m"))
			return
		}
		grace = d
	}
	secret, err := a.ledger.RegenerateSecret(r.Context(), ledger.RegenerateSecret{UserID: userIDFrom(r.Context()),
		APIKey: key, GracePeriod: grace, Preset: presetFrom(r.Context())})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, regenerateResponse{APIKey: key, Secret: secret.Reveal()})
}
