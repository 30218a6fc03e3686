// Package oidc is keyledger's OpenID Connect login: the authorization code
// flow with PKCE (S256), state and nonce, against one provider, with
// github.com/coreos/go-oidc for discovery and ID token verification and
// golang.org/x/oauth2 for the code exchange.
//
// A login keeps no state on the server: Start returns the state, the
// nonce and the PKCE verifier sealed (AES-256-GCM) into a short-lived
// cookie, bound to the browser that started it; Finish opens it and
// checks the provider's answer against it. A crowd of unauthenticated
// logins therefore grows no memory anywhere, and any serve instance that
// shares the key finishes a login another one started. The code is single
// use at the provider, and the nonce binds the ID token to the cookie.
//
// Finish returns the identity the provider vouched for (issuer, subject,
// a verified email address from an allowed domain); creating or linking
// the account is the ledger's (internal/ledger OIDCLogin, LinkIdentity).
package oidc

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyledger/keyledger/domain"
)

// KeySize is the size of the key cookies and link tokens are sealed under.
const KeySize = 32

// Lifetimes of what the flow hands out.
const (
	// LoginTTL is how long a started login may take at the provider.
	LoginTTL = 10 * time.Minute
	// LinkTTL is how long a link token works.
	LinkTTL = 10 * time.Minute
)

// CookieName is the name of the login cookie.
const CookieName = "keyledger_oidc"

// CookiePath is the path the login cookie is sent to.
const CookiePath = "/oidc/"

// MaxSealedLength bounds a cookie value or link token before anything
// else is done with it.
const MaxSealedLength = 2048

// Config configures a Flow.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document names it (a trailing slash matters).
	Issuer       string
	ClientID     string
	ClientSecret string // never logged
	// RedirectURL is where the provider sends the browser back: the
	// callback route, registered at the provider.
	RedirectURL string
	// AllowedDomains, if any, are the only email domains that may log in
	// (exact match, case-insensitive).
	AllowedDomains []string
	// Key seals the login cookies and link tokens (KeySize bytes); every
	// instance that serves the routes must share it.
	Key []byte
	// HTTPClient talks to the provider (nil: one with a 10 second
	// timeout).
	HTTPClient *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Logger receives discovery failures (nil: none). Nothing secret is
	// logged.
	Logger *slog.Logger
}

// Flow runs logins against one provider. It is safe for concurrent use.
type Flow struct {
	cfg     Config
	aead    cipher.AEAD
	domains map[string]bool
	secure  bool
	client  *http.Client
	now     func() time.Time
	logger  *slog.Logger

	mu       sync.Mutex
	provider *gooidc.Provider // nil until discovery succeeded
	verifier *gooidc.IDTokenVerifier
	lastTry  time.Time
}

// discoveryRetry is the least time between two discoveries after one
// failed, so that a provider that is down is not hammered per request.
const discoveryRetry = 2 * time.Second

// New checks cfg and returns a Flow. It does not contact the provider:
// discovery happens at the first login and is retried while it fails.
func New(cfg Config) (*Flow, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || (iss.Scheme != "https" && iss.Scheme != "http") || iss.Host == "" || iss.RawQuery != "" || iss.Fragment != "" {
		return nil, fmt.Errorf("issuer %q: want an http(s) URL without query or fragment", cfg.Issuer)
	}
	if err := domain.ValidateIdentity(cfg.Issuer, "x"); err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("client id and client secret are required")
	}
	ru, err := url.Parse(cfg.RedirectURL)
	if err != nil || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Host == "" || ru.Fragment != "" {
		return nil, fmt.Errorf("redirect URL %q: want an absolute http(s) URL", cfg.RedirectURL)
	}
	if len(cfg.Key) != KeySize {
		return nil, fmt.Errorf("key must be %d bytes", KeySize)
	}
	block, err := aes.NewCipher(cfg.Key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	f := &Flow{cfg: cfg, aead: aead, domains: map[string]bool{}, secure: ru.Scheme == "https",
		client: cfg.HTTPClient, now: cfg.Now, logger: cfg.Logger}
	for _, d := range cfg.AllowedDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" || strings.ContainsAny(d, "@ /") || strings.HasPrefix(d, ".") {
			return nil, fmt.Errorf("allowed domain %q: want a domain name like example.com", d)
		}
		f.domains[d] = true
	}
	if f.client == nil {
		f.client = &http.Client{Timeout: 10 * time.Second}
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.logger == nil {
		f.logger = slog.New(slog.DiscardHandler)
	}
	return f, nil
}

// Issuer returns the provider's issuer URL.
func (f *Flow) Issuer() string { return f.cfg.Issuer }

// errUnavailable is the answer while the provider cannot be discovered.
var errUnavailable = domain.Errorf(domain.Unavailable, "the identity provider cannot be reached, try again later")

// discover returns the provider and its ID token verifier, discovering
// them if needed. Errors: Unavailable.
func (f *Flow) discover(ctx context.Context) (*gooidc.Provider, *gooidc.IDTokenVerifier, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.provider != nil {
		return f.provider, f.verifier, nil
	}
	now := f.now()
	if !f.lastTry.IsZero() && now.Sub(f.lastTry) < discoveryRetry {
		return nil, nil, errUnavailable
	}
	f.lastTry = now
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, f.client), f.cfg.Issuer)
	if err != nil {
		f.logger.Error("OpenID provider discovery failed: OpenID Connect logins answer 503 until it works",
			"issuer", f.cfg.Issuer, "err", err)
		return nil, nil, domain.Wrap(domain.Unavailable, err, errUnavailable.Message)
	}
	// One key set for every login: the provider's keys are fetched
	// again only for a key id not seen yet.
	f.provider = p
	f.verifier = p.VerifierContext(gooidc.ClientContext(context.Background(), f.client),
		&gooidc.Config{ClientID: f.cfg.ClientID, Now: f.now})
	return p, f.verifier, nil
}

func (f *Flow) oauth2Config(p *gooidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: f.cfg.ClientID, ClientSecret: f.cfg.ClientSecret, RedirectURL: f.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: []string{gooidc.ScopeOpenID, "email"}}
}

// login is what the login cookie seals.
type login struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"` // Unix seconds
}

// Started is a login on its way to the provider.
type Started struct {
	// URL is the provider's authorization URL to send the browser to.
	URL string
	// Cookie binds the login to the browser; set it with the redirect.
	Cookie *http.Cookie
}

// Start begins a login: fresh state, nonce and PKCE verifier, sealed into
// the cookie. Errors: Unavailable (the provider cannot be discovered),
// Internal.
func (f *Flow) Start(ctx context.Context) (Started, error) {
	p, _, err := f.discover(ctx)
	if err != nil {
		return Started{}, err
	}
	l := login{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
		Expires: f.now().Add(LoginTTL).Unix()}
	value, err := f.seal(aadLogin, l)
	if err != nil {
		return Started{}, err
	}
	u := f.oauth2Config(p).AuthCodeURL(l.State, oauth2.S256ChallengeOption(l.Verifier), gooidc.Nonce(l.Nonce))
	return Started{URL: u, Cookie: f.cookie(value, int(LoginTTL/time.Second))}, nil
}

// ClearCookie returns the cookie that removes the login cookie: a login
// is finished (or failed) once.
func (f *Flow) ClearCookie() *http.Cookie { return f.cookie("", -1) }

func (f *Flow) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: CookiePath, MaxAge: maxAge, HttpOnly: true,
		Secure: f.secure, SameSite: http.SameSiteLaxMode}
}

// Identity is whom the provider vouched for.
type Identity struct {
	Issuer  string
	Subject string
	// Email is the verified address, normalised.
	Email string
	// DomainAllowed is true when the address's domain is on the allow
	// list (false when there is none).
	DomainAllowed bool
}

// LogValue implements slog.LogValuer: an identity is personal data.
func (Identity) LogValue() slog.Value { return slog.StringValue("[identity]") }

// Errors of Finish. Each says what was wrong and nothing secret.
var (
	ErrNoLogin       = domain.Errorf(domain.Unauthorized, "no login in progress in this browser, or it expired: start again at /oidc/login")
	ErrState         = domain.Errorf(domain.Unauthorized, "the state does not match the login this browser started")
	ErrCode          = domain.Errorf(domain.Unauthorized, "the provider refused the authorization code (used already, expired, or not for this login)")
	ErrToken         = domain.Errorf(domain.Unauthorized, "the provider's ID token does not verify")
	ErrNonce         = domain.Errorf(domain.Unauthorized, "the ID token's nonce does not match the login this browser started")
	ErrProviderError = domain.Errorf(domain.Unauthorized, "the provider did not authorize the login")
	ErrNoEmail       = domain.Errorf(domain.Forbidden, "the provider gave no usable email address")
	ErrUnverified    = domain.Errorf(domain.Forbidden, "the provider does not assert that the email address is verified")
	ErrDomain        = domain.Errorf(domain.Forbidden, "the email address's domain may not log in here")
)

// Callback is what the provider sent back to the redirect URL, with the
// browser's login cookie.
type Callback struct {
	Cookie string // the login cookie's value ("": none)
	State  string
	Code   string
	// Error is the provider's error code, when it sent one instead of a
	// code.
	Error string
}

// MaxParamLength bounds each callback parameter.
const MaxParamLength = 2048

// Finish checks a callback against the browser's login and the provider:
// the state (constant time), the code exchanged with the login's PKCE
// verifier, the ID token (signature, issuer, audience, expiry) and its
// nonce, then the email: present, asserted verified, and from an allowed
// domain. Errors: Unauthorized (ErrNoLogin, ErrState, ErrCode, ErrToken,
// ErrNonce, ErrProviderError), Forbidden (ErrNoEmail, ErrUnverified,
// ErrDomain), Unavailable (the provider cannot be reached).
func (f *Flow) Finish(ctx context.Context, cb Callback) (Identity, error) {
	var l login
	if cb.Cookie == "" || !f.open(aadLogin, cb.Cookie, &l) || l.State == "" || l.Nonce == "" || l.Verifier == "" {
		return Identity{}, ErrNoLogin
	}
	if f.now().Unix() > l.Expires {
		return Identity{}, ErrNoLogin
	}
	if len(cb.State) > MaxParamLength || subtle.ConstantTimeCompare([]byte(cb.State), []byte(l.State)) != 1 {
		return Identity{}, ErrState
	}
	if cb.Error != "" {
		return Identity{}, ErrProviderError
	}
	if cb.Code == "" || len(cb.Code) > MaxParamLength {
		return Identity{}, ErrCode
	}
	p, verifier, err := f.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	cctx := gooidc.ClientContext(ctx, f.client)
	tok, err := f.oauth2Config(p).Exchange(cctx, cb.Code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			// The code and the verifier are secrets: only the
			// provider's error code is logged.
			f.logger.Info("OpenID provider refused a code", "error_code", re.ErrorCode)
			return Identity{}, ErrCode
		}
		f.logger.Warn("OpenID provider's token endpoint failed", "err", redact(err))
		return Identity{}, errUnavailable
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, ErrToken
	}
	idt, err := verifier.Verify(cctx, raw)
	if err != nil {
		f.logger.Info("ID token refused", "err", err)
		return Identity{}, ErrToken
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.Nonce)) != 1 {
		return Identity{}, ErrNonce
	}
	if err := domain.ValidateIdentity(idt.Issuer, idt.Subject); err != nil {
		return Identity{}, ErrToken
	}
	claims, err := f.emailClaims(cctx, p, idt, tok)
	if err != nil {
		return Identity{}, err
	}
	email, err := domain.NormalizeEmail(claims.Email)
	if claims.Email == "" || err != nil {
		return Identity{}, ErrNoEmail
	}
	if !bool(claims.Verified) {
		return Identity{}, ErrUnverified
	}
	_, dom, _ := strings.Cut(email, "@")
	allowed := f.domains[dom]
	if len(f.domains) > 0 && !allowed {
		return Identity{}, ErrDomain
	}
	return Identity{Issuer: idt.Issuer, Subject: idt.Subject, Email: email, DomainAllowed: allowed}, nil
}

// emailClaims are the claims Finish needs beyond the subject.
type emailClaims struct {
	Email    string   `json:"email"`
	Verified flexBool `json:"email_verified"`
}

// flexBool is a boolean claim that some providers send as the string
// "true" or "false".
type flexBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *flexBool) UnmarshalJSON(p []byte) error {
	switch string(p) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null":
		*b = false
	default:
		return fmt.Errorf("email_verified: not a boolean: %.20s", p)
	}
	return nil
}

// emailClaims takes the email claims from the ID token or, when it has
// none (providers may leave them to the UserInfo endpoint in the code
// flow), from the UserInfo endpoint, whose subject must be the token's.
func (f *Flow) emailClaims(ctx context.Context, p *gooidc.Provider, idt *gooidc.IDToken, tok *oauth2.Token) (emailClaims, error) {
	var c emailClaims
	if err := idt.Claims(&c); err != nil {
		return emailClaims{}, ErrToken
	}
	if c.Email != "" {
		return c, nil
	}
	if p.UserInfoEndpoint() == "" {
		return emailClaims{}, ErrNoEmail
	}
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		f.logger.Warn("OpenID provider's UserInfo endpoint failed", "err", redact(err))
		return emailClaims{}, errUnavailable
	}
	if subtle.ConstantTimeCompare([]byte(ui.Subject), []byte(idt.Subject)) != 1 {
		return emailClaims{}, ErrToken
	}
	c = emailClaims{}
	if err := ui.Claims(&c); err != nil {
		return emailClaims{}, ErrNoEmail
	}
	return c, nil
}

// redact keeps an error's text from carrying a URL's query (codes,
// tokens): url.Error's URL is cut at '?'.
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, _, _ := strings.Cut(ue.URL, "?")
		return ue.Op + " " + u + ": " + ue.Err.Error()
	}
	return err.Error()
}

// Link is a pending link of an identity to the account that holds its
// address, waiting for that account's password.
type Link struct {
	Identity
	UserID string
}

// link is what a link token seals.
type link struct {
	Issuer  string `json:"i"`
	Subject string `json:"s"`
	Email   string `json:"m"`
	Allowed bool   `json:"a,omitempty"`
	UserID  string `json:"u"`
	Expires int64  `json:"e"`
}

// LinkToken seals a pending link for LinkTTL. The token reveals nothing
// to whoever holds it; it is single use because the identity's link is
// recorded once. Errors: Internal.
func (f *Flow) LinkToken(l Link) (string, error) {
	return f.seal(aadLink, link{Issuer: l.Issuer, Subject: l.Subject, Email: l.Email, Allowed: l.DomainAllowed,
		UserID: l.UserID, Expires: f.now().Add(LinkTTL).Unix()})
}

// ErrLinkToken refuses a link token that is malformed, forged or expired.
var ErrLinkToken = domain.Errorf(domain.Unauthorized, "the link token is not valid or expired: log in through the provider again")

// OpenLinkToken returns the pending link a token sealed.
// Errors: Unauthorized (ErrLinkToken).
func (f *Flow) OpenLinkToken(token string) (Link, error) {
	var l link
	if !f.open(aadLink, token, &l) || f.now().Unix() > l.Expires || !domain.ValidUserID(l.UserID) ||
		domain.ValidateIdentity(l.Issuer, l.Subject) != nil || l.Email == "" {
		return Link{}, ErrLinkToken
	}
	return Link{Identity: Identity{Issuer: l.Issuer, Subject: l.Subject, Email: l.Email, DomainAllowed: l.Allowed},
		UserID: l.UserID}, nil
}

// Additional data that keeps a sealed login cookie and a link token from
// standing in for each other.
const (
	aadLogin = "keyledger/oidc/login/v1"
	aadLink  = "keyledger/oidc/link/v1"
)

func (f *Flow) seal(aad string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", domain.Wrap(domain.Internal, err, "")
	}
	nonce := make([]byte, f.aead.NonceSize(), f.aead.NonceSize()+len(plain)+f.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return "", domain.Wrap(domain.Internal, err, "")
	}
	return base64.RawURLEncoding.EncodeToString(f.aead.Seal(nonce, nonce, plain, []byte(aad))), nil
}

// open reports whether s opens under the key and aad, into v.
func (f *Flow) open(aad, s string, v any) bool {
	if len(s) > MaxSealedLength {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < f.aead.NonceSize()+f.aead.Overhead() {
		return false
	}
	plain, err := f.aead.Open(nil, b[:f.aead.NonceSize()], b[f.aead.NonceSize():], []byte(aad))
	if err != nil {
		return false
	}
	return json.Unmarshal(plain, v) == nil
}

// randomString returns 256 random bits in base64url.
func randomString() string {
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic("crypto/rand: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
