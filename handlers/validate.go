package handlers

import (
	"net/http"

	"github.com/keyledger/keyledger/domain"
)

type validateResponse struct {
	APIKey string `json:"api_key"`
	UserID string `json:"user_id"`
}

// validate: any method on /validate. Credentials come as x-api-key +
// x-api-secret (base64 each) or Authorization: ApiKey base64(key:secret).
// 200 with the identity in the body and in X-Keyledger-User and
// X-Keyledger-Key, or the same 401 for every failure; the reason goes to
// the log only. It reads only headers, so it serves as forward-auth.
func (a *API) validate(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	apiKey, secret, err := domain.ParseCredentials(r.Header.Get("X-Api-Key"), r.Header.Get("X-Api-Secret"), r.Header.Get("Authorization"))
	reason := "malformed_credentials"
	var k domain.Key
	if err == nil {
		k, reason, err = a.ledger.Validate(apiKey, secret)
	}
	if err != nil {
		a.logger.Info("validation rejected", "request_id", requestIDFrom(r), "reason", reason)
		w.Header().Set("WWW-Authenticate", "ApiKey")
		writeError(w, r, a.logger, domain.ErrBadCredentials)
		return
	}
	w.Header().Set("X-Keyledger-User", k.UserID)
	w.Header().Set("X-Keyledger-Key", k.APIKey)
	writeJSON(w, http.StatusOK, validateResponse{APIKey: k.APIKey, UserID: k.UserID})
}
