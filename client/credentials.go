package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Header names of API-key credentials.
const (
	HeaderAPIKey    = "X-Api-Key"
	HeaderAPISecret = "X-Api-Secret"
)

// HeaderStyle chooses how API-key credentials travel in a request.
type HeaderStyle int

const (
	// StyleAPIKeyHeaders sends x-api-key: base64(api_key) and
	// x-api-secret: base64(secret). It is the zero value.
	StyleAPIKeyHeaders HeaderStyle = iota
	// StyleAuthorization sends Authorization: ApiKey base64(api_key:secret).
	StyleAuthorization
)

// String returns the style's name.
func (s HeaderStyle) String() string {
	switch s {
	case StyleAPIKeyHeaders:
		return "x-api-key"
	case StyleAuthorization:
		return "authorization"
	}
	return fmt.Sprintf("HeaderStyle(%d)", int(s))
}

// SetAPIKeyHeaders sets x-api-key: base64(apiKey) and x-api-secret:
// base64(secret) on h.
func SetAPIKeyHeaders(h http.Header, apiKey, secret string) {
	h.Set(HeaderAPIKey, base64.StdEncoding.EncodeToString([]byte(apiKey)))
	h.Set(HeaderAPISecret, base64.StdEncoding.EncodeToString([]byte(secret)))
}

// SetAuthorizationAPIKey sets Authorization: ApiKey
// base64(apiKey:secret) on h. The server splits on the first colon, so
// apiKey must not hold one (keyledger's keys never do).
func SetAuthorizationAPIKey(h http.Header, apiKey, secret string) {
	h.Set("Authorization", "ApiKey "+base64.StdEncoding.EncodeToString([]byte(apiKey+":"+secret)))
}

// setCredentials sets the credentials in style on h and removes those of
// the other style, so the server sees exactly one pair.
func setCredentials(h http.Header, apiKey, secret string, style HeaderStyle) error {
	switch style {
	case StyleAPIKeyHeaders:
		if scheme, _, _ := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " "); strings.EqualFold(scheme, "apikey") {
			h.Del("Authorization")
		}
		SetAPIKeyHeaders(h, apiKey, secret)
	case StyleAuthorization:
		h.Del(HeaderAPIKey)
		h.Del(HeaderAPISecret)
		SetAuthorizationAPIKey(h, apiKey, secret)
	default:
		return fmt.Errorf("keyledger: unknown header style %d", int(style))
	}
	return nil
}

// Transport is an http.RoundTripper that adds API-key credentials to every
// request it sends, in the chosen Style, then hands it to Base. Use it as
// the Transport of an http.Client that calls a service protected by
// keyledger. A Transport is safe for concurrent use if Base is; do not
// change its fields while it is in use.
type Transport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// APIKey and Secret are the credentials; both are required.
	APIKey, Secret string
	// Style chooses the headers; the zero value is StyleAPIKeyHeaders.
	Style HeaderStyle
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip sends a copy of req with the credentials set; req itself is
// not modified. It fails without sending if APIKey or Secret is empty or
// Style is unknown.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	if t.APIKey == "" || t.Secret == "" {
		return fail(errors.New("keyledger: Transport: APIKey and Secret are required"))
	}
	r := req.Clone(req.Context())
	if err := setCredentials(r.Header, t.APIKey, t.Secret, t.Style); err != nil {
		return fail(err)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}
