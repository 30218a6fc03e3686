package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keyledger/keyledger/domain"
)

// Defaults for session tokens.
const (
	DefaultIssuer   = "keyledger"
	DefaultAudience = "keyledger-api"
	DefaultTTL      = time.Hour
)

// Sessions issues and verifies session tokens: JWTs signed with Ed25519
// (alg EdDSA) carrying iss, aud, sub (the user id), iat, exp, jti (a
// random token id, which a logout names) and sv (the user's session epoch
// at issue, see domain.User.SessionValid). It is safe for concurrent use.
type Sessions struct {
	key      ed25519.PrivateKey
	kid      string
	issuer   string
	audience string
	ttl      time.Duration
	parser   *jwt.Parser
	leeway   time.Duration
	now      func() time.Time  // the clock of the parser and the cache
	verified *verifiedSessions // tokens that verified, see Verify
}

// sessionLeeway is the clock skew allowed on a token's exp, iat and nbf.
const sessionLeeway = 5 * time.Second

// NewSessions returns Sessions signing with key. Empty issuer or audience
// and a zero ttl take the defaults.
func NewSessions(key ed25519.PrivateKey, issuer, audience string, ttl time.Duration) (*Sessions, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("sessions: need an Ed25519 private key")
	}
	if issuer == "" {
		issuer = DefaultIssuer
	}
	if audience == "" {
		audience = DefaultAudience
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s := &Sessions{key: key, issuer: issuer, audience: audience, ttl: ttl,
		kid:    Thumbprint(key.Public().(ed25519.PublicKey)),
		leeway: sessionLeeway, now: time.Now, verified: newVerifiedSessions(DefaultVerifiedSessions)}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(s.leeway),
		jwt.WithTimeFunc(func() time.Time { return s.now() }),
	)
	return s, nil
}

// Session is what a verified session token says.
type Session struct {
	UserID    string    // sub
	TokenID   string    // jti
	Epoch     uint64    // sv: the user's session epoch at issue
	ExpiresAt time.Time // exp
}

// claims are a session token's claims.
type claims struct {
	jwt.RegisteredClaims
	// Epoch is a pointer so that a token without sv is told apart from
	// one issued in epoch 0.
	Epoch *uint64 `json:"sv,omitempty"`
}

// tokenIDBytes is the entropy of a token id.
const tokenIDBytes = 16

// Issue returns a token for userID in the user's session epoch, issued at
// now, and its expiry.
func (s *Sessions) Issue(userID string, epoch uint64, now time.Time) (string, time.Time, error) {
	if userID == "" {
		return "", time.Time{}, errors.New("sign session: empty user id")
	}
	var id [tokenIDBytes]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("sign session: %w", err)
	}
	exp := now.Add(s.ttl).UTC().Truncate(time.Second)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    s.issuer,
		Audience:  jwt.ClaimStrings{s.audience},
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
		ID:        base64.RawURLEncoding.EncodeToString(id[:]),
	}, Epoch: &epoch})
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign session: %w", err)
	}
	return signed, exp, nil
}

// Verify checks a token's algorithm (EdDSA only), signature, kid, exp, iss
// and aud, and returns what it says. A token with a crit header, a
// non-numeric exp, nbf or iat, or a member named twice is refused (see
// checkStrict), and so is one without a jti of the domain.ValidTokenID
// form or without a numeric sv (tokens issued before sessions could be
// revoked). Whether the session still holds is the user's to say (see
// domain.User.SessionValid): the caller checks that on every request.
// A token that verified is remembered (bounded, by its SHA-256) until its
// exp plus the leeway, so presenting it again costs no signature check.
// Errors: Unauthorized.
func (s *Sessions) Verify(token string) (Session, error) {
	key := sha256.Sum256([]byte(token))
	if sess, ok := s.verified.get(key, s.now()); ok {
		return sess, nil
	}
	if err := checkStrict(token); err != nil {
		return Session{}, domain.Wrap(domain.Unauthorized, err, "invalid or expired session token")
	}
	c := &claims{}
	_, err := s.parser.ParseWithClaims(token, c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.kid {
			return nil, errors.New("unknown kid")
		}
		return s.key.Public(), nil
	})
	switch {
	case err != nil:
	case c.Subject == "":
		err = errors.New("no sub")
	case c.Epoch == nil:
		err = errors.New("no sv: issued before sessions could be revoked")
	case !domain.ValidTokenID(c.ID):
		err = errors.New("no jti, or a malformed one")
	}
	if err != nil {
		return Session{}, domain.Wrap(domain.Unauthorized, err, "invalid or expired session token")
	}
	sess := Session{UserID: c.Subject, TokenID: c.ID, Epoch: *c.Epoch, ExpiresAt: c.ExpiresAt.UTC()}
	s.verified.add(key, sess, c.ExpiresAt.Add(s.leeway))
	return sess, nil
}

// JWK is one public key of a JWK Set (RFC 8037 OKP form).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JWK Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the JWK Set that verifies this service's session tokens.
func (s *Sessions) JWKS() JWKS {
	pub := s.key.Public().(ed25519.PublicKey)
	return JWKS{Keys: []JWK{{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub),
		Kid: s.kid, Alg: "EdDSA", Use: "sig"}}}
}

// Thumbprint returns the RFC 7638 JWK thumbprint of an Ed25519 public key.
func Thumbprint(pub ed25519.PublicKey) string {
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// LoadOrCreateSigningKey reads an Ed25519 private key (PKCS#8 PEM) from
// path, or creates one there (file mode 0600) if the file does not exist.
func LoadOrCreateSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return createSigningKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("signing key %s: not a PKCS#8 PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: not an Ed25519 key", path)
	}
	return key, nil
}

func createSigningKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := WriteFileExclusive(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		if errors.Is(err, os.ErrExist) {
			// Another process created it first: use theirs.
			return LoadOrCreateSigningKey(path)
		}
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	return key, nil
}

// WriteFileExclusive writes data to path with mode 0600 only if path does
// not exist, atomically: readers never see a partial file, and of two
// concurrent writers one wins and the other gets an error wrapping
// os.ErrExist.
func WriteFileExclusive(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".keyledger-tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}
