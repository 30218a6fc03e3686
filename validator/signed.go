package validator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/httpsig"
)

// DefaultSignatureWindow is how far a signed request's created time may be
// from the node's clock, either way; MaxSignatureWindow is the most
// WithSignatureWindow accepts.
const (
	DefaultSignatureWindow = 5 * time.Minute
	MaxSignatureWindow     = time.Hour
)

// MaxSignedBody bounds the body read to check a signed request's
// Content-Digest; a larger body is refused.
const MaxSignedBody = 1 << 20

// WithSignatureWindow sets how far a signed request's created time may be
// from the node's clock, either way (0: DefaultSignatureWindow; at most
// MaxSignatureWindow). A signature is never accepted past its expires, nor
// more than the window after created.
func WithSignatureWindow(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || d > MaxSignatureWindow {
			return fmt.Errorf("signature window must be positive and at most %v, or 0 for the default", MaxSignatureWindow)
		}
		if d != 0 {
			o.window = d
		}
		return nil
	}
}

// WithReplayCacheSize bounds how many signed requests the node remembers
// to refuse their replays (0: DefaultReplayCacheSize). When it is full,
// new signed requests are refused until old ones age out.
func WithReplayCacheSize(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return errors.New("replay cache size must be positive, or 0 for the default")
		}
		if n != 0 {
			o.replaySize = n
		}
		return nil
	}
}

// WithOrigin sets the scheme and authority that clients address, e.g.
// "https://api.example.com", for the @target-uri of the signed requests
// ValidateRequest and Middleware check. By default (and for "") they come
// from the connection (https when it is TLS) and the Host header; behind a
// proxy that terminates TLS, set it.
func WithOrigin(origin string) Option {
	return func(o *options) error {
		if origin == "" {
			o.origin = nil
			return nil
		}
		u, err := url.Parse(origin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return errors.New("origin must be scheme://host[:port], like https://api.example.com")
		}
		o.origin = u
		return nil
	}
}

// WithTrustedProxy sets which peers may describe, in X-Forwarded-Method,
// -Proto, -Host and -Uri, the original request a signed /validate call is
// about (forward-auth): trusted reports whether r came from such a proxy,
// e.g. by its connection's peer address. By default no peer is: those
// headers are ignored, and a signed request must then be the /validate
// request itself. Anyone who can reach /validate directly could otherwise
// have a signature checked against a request of their choosing.
func WithTrustedProxy(trusted func(r *http.Request) bool) Option {
	return func(o *options) error {
		o.proxy = trusted
		return nil
	}
}

// trustedProxy reports whether a request came from a trusted proxy.
type trustedProxy = func(r *http.Request) bool

// isSigned reports whether a request carries a signature.
func isSigned(h http.Header) bool {
	return len(h.Values("Signature-Input")) > 0 || len(h.Values("Signature")) > 0
}

// Target is what a signed request's @method and @target-uri cover: the
// request as the client sent it, before any proxy.
type Target struct {
	Method string // as sent, e.g. "POST"; case-sensitive
	Scheme string // "https" or "http"
	// Authority is the host, with the port when not the scheme's default,
	// e.g. "api.example.com" or "127.0.0.1:8443"; it is lower-cased and a
	// default port dropped before use.
	Authority string
	// RequestURI is the request target in origin form: the path, with "?"
	// and the query when there is one, exactly as sent (not decoded); ""
	// means "/".
	RequestURI string
}

// ValidateSigned checks a signed request (RFC 9421, profile keyledger-v1):
// h are its header fields and t its method and target; body is its exact
// body when bodyKnown, else its Content-Digest is trusted as signed and
// must be checked by whoever holds the body. The signature must verify
// with the public key the log holds for its keyid (always Ed25519: the
// algorithm comes from the key, never from the request); created must be
// within the window of the node's clock and the signature not expired; the
// x-api-key header, if sent, must name the same key, and no secret may
// travel with it, nor any credential header twice (see
// domain.CheckSignedCredentials); and each (keyid, nonce) is accepted once on this node.
// It returns the identity, the reason (for logs and metrics only), and
// ErrUnauthorized, ErrNotReady or ErrStale.
//
// Failures of a parsed signature count against its keyid's failure limit
// (see WithFailureLimit), like wrong secrets.
func (v *Validator) ValidateSigned(h http.Header, t Target, body []byte, bodyKnown bool) (Identity, domain.Reason, error) {
	id, reason, err := v.signed(h, t, body, bodyKnown)
	if err != nil {
		return Identity{}, reason, err
	}
	if reason, err := v.admit(context.Background(), &id, 1); err != nil {
		return Identity{}, reason, err
	}
	return id, reason, nil
}

// signed is ValidateSigned before the key's limits (see validate).
func (v *Validator) signed(h http.Header, t Target, body []byte, bodyKnown bool) (Identity, domain.Reason, error) {
	if err := v.check(); err != nil {
		reason := unavailableReason(err)
		v.metrics.outcome(reason)
		return Identity{}, reason, err
	}
	sig, err := httpsig.ParseFor(h, httpsig.Target(t))
	if err != nil {
		v.metrics.outcome(domain.ReasonMalformedSignature)
		return Identity{}, domain.ReasonMalformedSignature, ErrUnauthorized
	}
	id, reason, err := v.validateSigned(h, sig, body, bodyKnown)
	if err == nil {
		return id, reason, nil
	}
	known := keyKnown(reason)
	if errors.Is(err, ErrUnauthorized) {
		reason, err = v.failed(sig.KeyID, reason, v.opts.now())
	}
	v.metrics.outcome(reason)
	if known {
		v.opts.usage.Record(sig.KeyID, reason, v.opts.now())
	}
	return id, reason, err
}

func (v *Validator) validateSigned(h http.Header, sig *httpsig.Signature, body []byte, bodyKnown bool) (Identity, domain.Reason, error) {
	if err := domain.CheckSignedCredentials(h.Values("X-Api-Key"), h.Values("X-Api-Secret"), h.Values("Authorization"), sig.KeyID); err != nil {
		if errors.Is(err, domain.ErrAmbiguousCredentials) {
			return Identity{}, domain.ReasonAmbiguous, ErrUnauthorized
		}
		return Identity{}, domain.ReasonMalformedSignature, ErrUnauthorized
	}
	now := v.opts.now()
	window := v.opts.window
	if sig.Created.After(now.Add(window)) || now.Sub(sig.Created) > window || !now.Before(sig.Expires) {
		return Identity{}, domain.ReasonSignatureExpired, ErrUnauthorized
	}
	public, res := v.lookup.Signer(sig.KeyID, now)
	if !res.OK {
		return Identity{}, res.Reason, ErrUnauthorized
	}
	if bodyKnown {
		if err := sig.CheckBody(body); err != nil {
			return Identity{}, domain.ReasonDigestMismatch, ErrUnauthorized
		}
	}
	if !sig.Verify(ed25519.PublicKey(public[:])) {
		return Identity{}, domain.ReasonBadSignature, ErrUnauthorized
	}
	switch v.replays.add(sig.KeyID, sig.Nonce, now) {
	case replaySeen:
		return Identity{}, domain.ReasonReplayed, ErrUnauthorized
	case replayFull:
		v.logger.Warn("replay cache full: refusing signed requests until entries age out", "size", v.opts.replaySize)
		return Identity{}, domain.ReasonReplayCacheFull, ErrUnauthorized
	}
	if v.shared != nil {
		seen, err := v.shared.add(sig.KeyID, sig.Nonce)
		if err != nil {
			v.logger.Warn("shared replay cache unreachable: refusing signed requests", "err", err)
			return Identity{}, domain.ReasonReplayCacheUnavailable, ErrReplayCacheUnavailable
		}
		if seen == replaySeen {
			return Identity{}, domain.ReasonReplayed, ErrUnauthorized
		}
	}
	return identityOf(sig.KeyID, res), domain.ReasonOK, nil
}

// target returns the Target of a request this node received directly.
func (v *Validator) target(r *http.Request) Target {
	t := Target(httpsig.TargetOf(r))
	if v.opts.origin != nil {
		t.Scheme, t.Authority = v.opts.origin.Scheme, v.opts.origin.Host
	}
	return t
}

// forwardedHeaders are what a forward-auth proxy describes the original
// request with.
var forwardedHeaders = []string{"X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri"}

// forwardedTarget returns the original request a forward-auth proxy asks
// about, from X-Forwarded-Method, -Proto, -Host and -Uri (Traefik sends
// them all; nginx must be told to, see docs/forward-auth.md), when the
// request comes from a trusted proxy (see WithTrustedProxy). ok is false
// when they are absent or not believed: the request is then its own
// target. Each must be sent at most once; a proxy's request with one of
// them twice is malformed.
func (v *Validator) forwardedTarget(r *http.Request) (t Target, ok bool, err error) {
	sent := false
	for _, name := range forwardedHeaders {
		if len(r.Header.Values(name)) > 0 {
			sent = true
		}
	}
	if !sent {
		return Target{}, false, nil
	}
	if v.opts.proxy == nil || !v.opts.proxy(r) {
		if v.forwardWarned.CompareAndSwap(false, true) {
			v.logger.Warn("ignoring X-Forwarded-* on /validate from a peer that is not a trusted proxy (set --trusted-proxy for forward-auth proxies); logged once",
				"peer", r.RemoteAddr)
		}
		return Target{}, false, nil
	}
	for _, name := range forwardedHeaders {
		if len(r.Header.Values(name)) > 1 {
			return Target{}, false, fmt.Errorf("%s sent twice", name)
		}
	}
	uri := r.Header.Get("X-Forwarded-Uri")
	if uri == "" {
		return Target{}, false, nil
	}
	return Target{Method: r.Header.Get("X-Forwarded-Method"), Scheme: r.Header.Get("X-Forwarded-Proto"),
		Authority: r.Header.Get("X-Forwarded-Host"), RequestURI: uri}, true, nil
}

// readSignedBody reads a body for its digest check and puts a copy back
// for whoever reads the request next. It fails for a body over
// MaxSignedBody.
func readSignedBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxSignedBody+1))
	_ = r.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(body) > MaxSignedBody {
		return nil, errors.New("signed request body too large")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return body, nil
}

// digestHeader is where /validate passes on the Content-Digest a signature
// covered, for the upstream to check against the body it receives, when
// the proxy did not send the body along.
const digestHeader = "X-Keyledger-Content-Digest"

// noBody is digestHeader's value when the signature covered no
// Content-Digest: the body must be empty.
const noBody = "none"

// CheckForwardedBody is for an upstream behind a forward-auth proxy that
// does not send bodies to /validate (nginx auth_request): it checks the
// body the upstream received against the X-Keyledger-Content-Digest value
// that /validate answered with ("none": the body must be empty).
// Failures wrap httpsig.ErrDigest or httpsig.ErrMalformed.
func CheckForwardedBody(digest string, body []byte) error {
	if digest == noBody || digest == "" {
		if len(body) > 0 {
			return fmt.Errorf("%w: body not covered by the signature", httpsig.ErrDigest)
		}
		return nil
	}
	return httpsig.CheckContentDigest(digest, body)
}

// keyKnown reports whether validateSigned reached its reason after it
// found the key in the lookup: only such validations count as the key's
// usage (see WithUsage).
func keyKnown(reason domain.Reason) bool {
	switch reason {
	case domain.ReasonAmbiguous, domain.ReasonMalformedSignature, domain.ReasonSignatureExpired, domain.ReasonUnknownKey:
		return false
	}
	return true
}
