// Package httpsig signs and verifies keyledger's signed requests: the subset
// of HTTP Message Signatures (RFC 9421) and Content-Digest (RFC 9530) that
// the profile "keyledger-v1" uses.
//
// A client holding an API key signs each request with the Ed25519 key
// derived from the key's secret (Sign); the secret never travels. A server
// reads the signature (Parse or ParseFor), checks the body against the
// covered Content-Digest (Signature.CheckBody) and the time window
// (Signature.CheckTime), looks the key ID up, and verifies with the key's
// public key (Signature.Verify). Replay protection, by remembering nonces
// until their signature expires, is the caller's.
//
// The profile, on the wire:
//
//	Content-Digest: sha-256=:<base64>:
//	Signature-Input: sig1=("@method" "@target-uri" "content-type" "content-digest");created=1700000000;expires=1700000300;keyid="ak_...";nonce="...";alg="ed25519";tag="keyledger-v1"
//	Signature: sig1=:<base64 of 64 bytes>:
//
// The verifier accepts any label, and among several signatures reads only
// the one tagged keyledger-v1. It always verifies with Ed25519; an alg
// parameter, if present, must say so. It requires created, expires, keyid
// and nonce, and refuses any other parameter. The covered components must
// include @method and either @target-uri or @authority and @path (with
// @query when the request has a query), content-digest when the request has
// a body or a Content-Digest field, and content-type when it has a
// Content-Type field. Derived components other than @method, @target-uri,
// @authority, @scheme, @request-target, @path and @query are refused, as
// are parameters on component identifiers.
//
// All functions are safe for concurrent use; Sign modifies the request it
// is given, which must not be used concurrently. A *Signature is not
// modified after Parse returns it.
package httpsig

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Tag is the value of the tag parameter that marks a keyledger signature
// made with an API key.
const Tag = "keyledger-v1"

// AdminTag marks a signature made with an admin's key on a request to the
// admin API: the same profile under a tag of its own, so a signature made
// for one purpose is never accepted for the other.
const AdminTag = "keyledger-admin-v1"

// alg is the only algorithm of the profile (RFC 9421 section 3.3.6).
const alg = "ed25519"

// Errors returned, wrapped, by this package; match them with errors.Is.
// Messages never hold key material.
var (
	// ErrMissing means the request has neither a Signature-Input nor a
	// Signature field: it is not signed at all.
	ErrMissing = errors.New("httpsig: request is not signed")
	// ErrMalformed means the signature fields, or a Content-Digest field,
	// are not valid or do not follow the keyledger-v1 profile.
	ErrMalformed = errors.New("httpsig: malformed signature")
	// ErrDigest means the body does not match the Content-Digest field.
	ErrDigest = errors.New("httpsig: content digest mismatch")
	// ErrExpired means the signature is not valid at the time given:
	// expired, created in the future, or valid for longer than allowed.
	ErrExpired = errors.New("httpsig: signature outside its time window")
)

// Bounds on what a verifier reads, against hostile input.
const (
	maxHeaderLen   = 4096 // each of Signature-Input, Signature, Content-Digest
	maxComponents  = 32
	maxKeyIDLen    = 256
	minNonceLen    = 16
	maxNonceLen    = 128
	signatureLabel = "sig1"
)

// Component names this package treats specially.
const (
	fieldContentDigest = "content-digest"
	fieldContentType   = "content-type"
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Signature is a keyledger-v1 signature read from a request by Parse or
// ParseFor: checked for form, not yet verified.
type Signature struct {
	Label      string    // the Dictionary key it was found under
	KeyID      string    // the keyid parameter: the API key's public ID
	Nonce      string    // the nonce parameter
	Created    time.Time // the created parameter, in seconds
	Expires    time.Time // the expires parameter, in seconds
	Components []string  // covered component names, in order

	base         []byte // the signature base, RFC 9421 section 2.5
	input        string // the serialized Inner List of the signature
	sig          []byte // the 64-byte Ed25519 signature
	coversDigest bool
	digest       string // the covered Content-Digest value, when coversDigest
}

// Base returns the signature base (RFC 9421 section 2.5): the values of
// the covered components, one line each, then the @signature-params line.
// It is what the signature signs; kept with the signature it lets anyone
// holding the public key check the signature later, without the request.
func (s *Signature) Base() []byte { return append([]byte(nil), s.base...) }

// Input returns the signature's Signature-Input member value (the Inner
// List of covered components with its parameters), without the label.
func (s *Signature) Input() string { return s.input }

// Bytes returns the 64 bytes of the Ed25519 signature.
func (s *Signature) Bytes() []byte { return append([]byte(nil), s.sig...) }

// Verify reports whether the signature is a valid Ed25519 signature of the
// signature base by pub. It is false for a key of the wrong size. It says
// nothing of the body or the time: see CheckBody and CheckTime.
func (s *Signature) Verify(pub ed25519.PublicKey) bool {
	if s == nil || len(pub) != ed25519.PublicKeySize || len(s.sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, s.base, s.sig)
}

// CheckBody checks the exact bytes of the request body against the covered
// Content-Digest field. A non-empty body with no covered Content-Digest is
// an error wrapping ErrMalformed; a mismatch wraps ErrDigest (see
// CheckContentDigest).
func (s *Signature) CheckBody(body []byte) error {
	if !s.coversDigest {
		if len(body) > 0 {
			return malformed("body not covered by content-digest")
		}
		return nil
	}
	return CheckContentDigest(s.digest, body)
}

// CheckTime checks that the signature is valid at now: created no later
// than now+skew, and expiring after now-skew. When maxValidity is positive,
// Expires-Created must not exceed it. Failures wrap ErrExpired.
func (s *Signature) CheckTime(now time.Time, skew, maxValidity time.Duration) error {
	switch {
	case now.Add(skew).Before(s.Created):
		return fmt.Errorf("%w: created in the future", ErrExpired)
	case !now.Add(-skew).Before(s.Expires):
		return fmt.Errorf("%w: expired", ErrExpired)
	case maxValidity > 0 && s.Expires.Sub(s.Created) > maxValidity:
		return fmt.Errorf("%w: valid for longer than %v", ErrExpired, maxValidity)
	}
	return nil
}

// Parse reads the keyledger-v1 signature of a request received by a server,
// against TargetOf(req). It does what ParseFor does and, since it can see
// whether the request has a body, also requires content-digest to be
// covered when it may have one (ContentLength not 0). It does not read the
// body; use CheckBody for that.
func Parse(req *http.Request) (*Signature, error) { return ParseTagged(req, Tag) }

// ParseTagged is Parse for the signature tagged tag (Tag or AdminTag).
func ParseTagged(req *http.Request, tag string) (*Signature, error) {
	if req.URL == nil {
		return nil, malformed("request has no url")
	}
	s, err := ParseForTag(req.Header, TargetOf(req), tag)
	if err != nil {
		return nil, err
	}
	if req.ContentLength != 0 && !s.coversDigest {
		return nil, malformed("request has a body but content-digest is not covered")
	}
	return s, nil
}

// ParseFor reads the keyledger-v1 signature from the fields h of the
// request described by t, and checks everything the profile asks that
// needs neither the key nor the time (see the package documentation). It
// is what a forward-auth endpoint uses, with h and t describing the
// original request rather than the subrequest it received. It returns an
// error wrapping ErrMissing when h has no signature fields at all, and one
// wrapping ErrMalformed for anything else wrong.
func ParseFor(h http.Header, t Target) (*Signature, error) { return ParseForTag(h, t, Tag) }

// ParseForTag is ParseFor for the signature tagged tag (Tag or AdminTag).
func ParseForTag(h http.Header, t Target, tag string) (*Signature, error) {
	inputs, sigs := h.Values("Signature-Input"), h.Values("Signature")
	if len(inputs) == 0 && len(sigs) == 0 {
		return nil, ErrMissing
	}
	if len(inputs) == 0 {
		return nil, malformed("signature without signature-input")
	}
	if len(sigs) == 0 {
		return nil, malformed("signature-input without signature")
	}
	input, err := joinField(inputs)
	if err != nil {
		return nil, malformed("signature-input %v", err)
	}
	signature, err := joinField(sigs)
	if err != nil {
		return nil, malformed("signature %v", err)
	}
	inputDict, err := parseDictionary(input)
	if err != nil {
		return nil, malformed("signature-input: %v", err)
	}
	sigDict, err := parseDictionary(signature)
	if err != nil {
		return nil, malformed("signature: %v", err)
	}

	var found []member
	for _, m := range inputDict {
		if v, ok := paramValue(m.params, "tag"); m.inner && ok && v.kind == kindString && v.str == tag {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, malformed("no signature tagged %s", quoteShort(tag))
	case 1:
	default:
		return nil, malformed("more than one signature tagged %s", quoteShort(tag))
	}
	m := found[0]
	s := &Signature{Label: m.key}

	sm, ok := sigDict.get(m.key)
	if !ok {
		return nil, malformed("no signature labelled %s", m.key)
	}
	if sm.inner || sm.value.kind != kindBytes || len(sm.params) > 0 {
		return nil, malformed("signature %s is not a byte sequence without parameters", m.key)
	}
	if len(sm.value.bytes) != ed25519.SignatureSize {
		return nil, malformed("signature %s is %d bytes, want %d", m.key, len(sm.value.bytes), ed25519.SignatureSize)
	}
	s.sig = sm.value.bytes

	if err := s.readParams(m.params); err != nil {
		return nil, err
	}
	if err := s.readComponents(m.list, t, h); err != nil {
		return nil, err
	}

	t, err = t.normalized()
	if err != nil {
		return nil, malformed("%v", err)
	}
	s.input = serializeInnerList(m.list, m.params)
	s.base, err = signatureBase(s.Components, t, h, s.input)
	if err != nil {
		return nil, malformed("%v", err)
	}
	if s.coversDigest {
		// Already checked present and valid by signatureBase.
		s.digest, _ = componentValue(fieldContentDigest, t, h)
	}
	return s, nil
}

// joinField combines the lines of a field as RFC 9110 section 5.3 and
// RFC 8941 section 4.2 do, bounding the result.
func joinField(lines []string) (string, error) {
	n := 0
	for _, l := range lines {
		n += len(l) + 2
	}
	if n-2 > maxHeaderLen {
		return "", fmt.Errorf("longer than %d bytes", maxHeaderLen)
	}
	if len(lines) == 1 {
		return lines[0], nil
	}
	out := make([]byte, 0, n)
	for i, l := range lines {
		if i > 0 {
			out = append(out, ", "...)
		}
		out = append(out, l...)
	}
	return string(out), nil
}

func (s *Signature) readParams(params []param) error {
	var hasCreated, hasExpires, hasKeyID, hasNonce bool
	var created, expires int64
	for _, p := range params {
		v := p.value
		switch p.key {
		case "created", "expires":
			if v.kind != kindInteger || v.num < 0 {
				return malformed("%s is not a non-negative integer", p.key)
			}
			if p.key == "created" {
				hasCreated, created = true, v.num
			} else {
				hasExpires, expires = true, v.num
			}
		case "keyid":
			if v.kind != kindString || !validKeyID(v.str) {
				return malformed("keyid is not a string of 1 to %d characters", maxKeyIDLen)
			}
			hasKeyID, s.KeyID = true, v.str
		case "nonce":
			if v.kind != kindString || !validNonce(v.str) {
				return malformed("nonce is not a string of %d to %d letters, digits or ._~+/=-", minNonceLen, maxNonceLen)
			}
			hasNonce, s.Nonce = true, v.str
		case "alg":
			if v.kind != kindString || v.str != alg {
				return malformed("alg is not %q", alg)
			}
		case "tag":
			// Checked when the signature was picked.
		default:
			return malformed("unknown parameter %s", quoteShort(p.key))
		}
	}
	switch {
	case !hasCreated:
		return malformed("no created parameter")
	case !hasExpires:
		return malformed("no expires parameter")
	case !hasKeyID:
		return malformed("no keyid parameter")
	case !hasNonce:
		return malformed("no nonce parameter")
	case expires <= created:
		return malformed("expires is not after created")
	}
	s.Created, s.Expires = time.Unix(created, 0), time.Unix(expires, 0)
	return nil
}

func (s *Signature) readComponents(list []item, t Target, h http.Header) error {
	if len(list) > maxComponents {
		return malformed("more than %d covered components", maxComponents)
	}
	covered := make(map[string]bool, len(list))
	s.Components = make([]string, 0, len(list))
	for _, it := range list {
		if it.value.kind != kindString {
			return malformed("covered component is not a string")
		}
		name := it.value.str
		if len(it.params) > 0 {
			return malformed("component %s has parameters", quoteShort(name))
		}
		if covered[name] {
			return malformed("component %s covered twice", quoteShort(name))
		}
		switch name {
		case compMethod, compTargetURI, compAuthority, compScheme, compRequestTarget, compPath, compQuery:
		default:
			if len(name) > 0 && name[0] == '@' {
				return malformed("derived component %s is not supported", quoteShort(name))
			}
			if !validFieldName(name) {
				return malformed("component %s is not a lower-case field name", quoteShort(name))
			}
		}
		covered[name] = true
		s.Components = append(s.Components, name)
	}
	switch {
	case !covered[compMethod]:
		return malformed("@method not covered")
	case !covered[compTargetURI] && !(covered[compAuthority] && covered[compPath]):
		return malformed("neither @target-uri nor @authority and @path covered")
	case !covered[compTargetURI] && t.hasQuery() && !covered[compQuery]:
		return malformed("request has a query but neither @target-uri nor @query covered")
	case len(h.Values(fieldContentDigest)) > 0 && !covered[fieldContentDigest]:
		return malformed("content-digest not covered")
	case len(h.Values(fieldContentType)) > 0 && !covered[fieldContentType]:
		return malformed("content-type not covered")
	}
	s.coversDigest = covered[fieldContentDigest]
	return nil
}

func validKeyID(s string) bool {
	return s != "" && len(s) <= maxKeyIDLen && validSFString(s)
}

func validNonce(s string) bool {
	if len(s) < minNonceLen || len(s) > maxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '.' && c != '_' && c != '~' && c != '+' && c != '/' && c != '=' && c != '-' {
			return false
		}
	}
	return true
}
