package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

type createKeyRequest struct {
	Name       string  `json:"name"`
	ExpiresAt  *string `json:"expires_at"`
	SignedOnly bool    `json:"signed_only"`
}

type createKeyResponse struct {
	APIKey     string     `json:"api_key"`
	Secret     string     `json:"secret"`
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	SignedOnly bool       `json:"signed_only"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
}

type keyResponse struct {
	APIKey              string     `json:"api_key"`
	Name                string     `json:"name"`
	Status              string     `json:"status"`
	SignedOnly          bool       `json:"signed_only"`
	CanSign             bool       `json:"can_sign"`
	CreatedAt           time.Time  `json:"created_at"`
	ExpiresAt           *time.Time `json:"expires_at"`
	RevokedAt           *time.Time `json:"revoked_at"`
	SecretRegeneratedAt *time.Time `json:"secret_regenerated_at"`
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

func (a *API) keyView(k domain.Key) keyResponse {
	return keyResponse{APIKey: k.APIKey, Name: k.Name, Status: string(k.StatusAt(a.ledger.Now())),
		SignedOnly: k.SignedOnly, CanSign: !k.PublicKey.IsZero(),
		CreatedAt: k.CreatedAt, ExpiresAt: timePtr(k.ExpiresAt), RevokedAt: timePtr(k.RevokedAt),
		SecretRegeneratedAt: timePtr(k.SecretRegeneratedAt)}
}

// createKey: POST /api-keys {"name"?, "expires_at"?} -> 201 the key and
// its secret, the only response that ever holds it.
func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
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
	k, secret, err := a.ledger.CreateKey(r.Context(), ledger.CreateKey{UserID: userIDFrom(r.Context()), Name: req.Name,
		ExpiresAt: expires, SignedOnly: req.SignedOnly, Preset: presetFrom(r.Context())})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api-keys/"+k.APIKey)
	writeJSON(w, http.StatusCreated, createKeyResponse{APIKey: k.APIKey, Secret: secret.Reveal(), Name: k.Name,
		Status: string(k.StatusAt(a.ledger.Now())), SignedOnly: k.SignedOnly, CreatedAt: k.CreatedAt, ExpiresAt: timePtr(k.ExpiresAt)})
}

// listKeys: GET /api-keys?limit=&cursor= -> 200 the caller's keys, newest
// first.
func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
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
	keys, next, err := a.ledger.ListKeys(userIDFrom(r.Context()), limit, q.Get("cursor"))
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	resp := listKeysResponse{Keys: make([]keyResponse, len(keys))}
	for i, k := range keys {
		resp.Keys[i] = a.keyView(k)
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
	writeJSON(w, http.StatusOK, a.keyView(k))
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

// regenerateSecret: POST /api-keys/{key}/regenerate -> 200 the new secret.
func (a *API) regenerateSecret(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	secret, err := a.ledger.RegenerateSecret(r.Context(),
		ledger.RegenerateSecret{UserID: userIDFrom(r.Context()), APIKey: key, Preset: presetFrom(r.Context())})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, regenerateResponse{APIKey: key, Secret: secret.Reveal()})
}
