package client

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/httpsig"
)

// Signer is an http.RoundTripper that signs every request with an API
// key's secret (RFC 9421 HTTP Message Signatures, profile keyledger-v1),
// then hands it to Base. Only the API key travels, in x-api-key, with
// Content-Digest, Signature-Input and Signature; the secret never leaves
// the process. Each request gets a fresh nonce, so a captured request
// cannot be replayed. A Signer is safe for concurrent use if Base is.
type Signer struct {
	base     http.RoundTripper
	apiKey   string
	key      ed25519.PrivateKey
	validity time.Duration
	now      func() time.Time
}

var _ http.RoundTripper = (*Signer)(nil)

// NewSigner returns a Signer for apiKey and its secret (both as the API
// showed them: "ak_...", "sk_..."), sending through base (nil:
// http.DefaultTransport). It derives the signing key once, here.
func NewSigner(apiKey, secret string, base http.RoundTripper) (*Signer, error) {
	if !domain.ValidAPIKey(apiKey) {
		return nil, errors.New("keyledger: NewSigner: malformed API key")
	}
	s, err := domain.ParseSecret(secret)
	if err != nil {
		return nil, errors.New("keyledger: NewSigner: malformed secret")
	}
	key, err := s.SigningKey(apiKey)
	if err != nil {
		return nil, errors.New("keyledger: NewSigner: malformed secret")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &Signer{base: base, apiKey: apiKey, key: key, validity: time.Minute, now: time.Now}, nil
}

// WithValidity returns a copy of s whose signatures expire d after they
// are made (default 1 minute; servers accept at most 5 by default).
func (s *Signer) WithValidity(d time.Duration) *Signer {
	c := *s
	c.validity = d
	return &c
}

// RoundTrip signs a copy of req and sends it; req itself is not modified.
// The body is read into memory to compute its digest. Any credential
// headers on req (x-api-secret, an ApiKey Authorization) are removed.
func (s *Signer) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	if err := s.sign(r, body); err != nil {
		return nil, err
	}
	return s.base.RoundTrip(r)
}

// SignRequest signs req in place for a request whose body is body (req.Body
// is not read); it sets x-api-key, Content-Digest (when body is not empty),
// Signature-Input and Signature. It is what RoundTrip does, for callers
// that send requests themselves.
func (s *Signer) SignRequest(req *http.Request, body []byte) error {
	return s.sign(req, body)
}

func (s *Signer) sign(r *http.Request, body []byte) error {
	r.Header.Del(HeaderAPISecret)
	if scheme, _, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); strings.EqualFold(scheme, "apikey") {
		r.Header.Del("Authorization")
	}
	r.Header.Set(HeaderAPIKey, base64.StdEncoding.EncodeToString([]byte(s.apiKey)))
	now := s.now()
	return httpsig.Sign(r, body, s.key, httpsig.SignOptions{KeyID: s.apiKey, Created: now, Expires: now.Add(s.validity)})
}
