package httpsig

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// DefaultValidity is how long a signature is valid when SignOptions has no
// Expires.
const DefaultValidity = 5 * time.Minute

// SignOptions are the parameters of one signature. The zero value of each
// field but KeyID means its default.
type SignOptions struct {
	KeyID   string    // the API key's public ID; required
	Created time.Time // zero: now; truncated to the second
	Expires time.Time // zero: Created + DefaultValidity; must be after Created
	// Nonce must be 16 to 128 characters of [A-Za-z0-9._~+/=-]. Empty: 32
	// random bytes, base64url.
	Nonce string
	// Tag is the tag parameter: Tag (the default, when empty) for API
	// keys, AdminTag for admin keys.
	Tag string
}

// Sign signs req with key under the keyledger-v1 profile (tagged
// opts.Tag). body is the exact
// bytes that will be sent; req.Body is not read. Sign sets Content-Digest
// when body is not empty (and deletes it when body is empty), then sets
// Signature-Input and Signature (label sig1), replacing any there were. It
// covers @method and @target-uri, content-type when req has a Content-Type
// field, and content-digest when body is not empty; so fields that a
// transport adds or changes later must not be among those.
//
// req must be a client request with an absolute http or https URL. Sign
// returns an error, and leaves req unchanged, when req or opts cannot be
// signed or key is not an Ed25519 private key.
func Sign(req *http.Request, body []byte, key ed25519.PrivateKey, opts SignOptions) error {
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("httpsig: sign: private key is not an ed25519 key")
	}
	if req.URL == nil {
		return errors.New("httpsig: sign: request has no url")
	}
	t, err := clientTarget(req).normalized()
	if err != nil {
		return fmt.Errorf("httpsig: sign: %v", err)
	}
	if !validKeyID(opts.KeyID) {
		return fmt.Errorf("httpsig: sign: key id must be 1 to %d printable ascii characters", maxKeyIDLen)
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now()
	}
	expires := opts.Expires
	if expires.IsZero() {
		expires = created.Add(DefaultValidity)
	}
	if created.Unix() < 0 || expires.Unix() <= created.Unix() {
		return errors.New("httpsig: sign: expires must be at least a second after created, and created after 1970")
	}
	nonce := opts.Nonce
	if nonce == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("httpsig: sign: nonce: %w", err)
		}
		nonce = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if !validNonce(nonce) {
		return fmt.Errorf("httpsig: sign: nonce must be %d to %d letters, digits or ._~+/=-", minNonceLen, maxNonceLen)
	}

	tag := opts.Tag
	if tag == "" {
		tag = Tag
	}
	if tag != Tag && tag != AdminTag {
		return fmt.Errorf("httpsig: sign: tag must be %s or %s", Tag, AdminTag)
	}

	// The fields the signature covers, as they will be sent.
	h := http.Header{}
	if ct := req.Header.Values("Content-Type"); len(ct) > 0 {
		h["Content-Type"] = ct
	}
	if len(body) > 0 {
		h.Set("Content-Digest", ContentDigest(body))
	}
	components := []string{compMethod, compTargetURI}
	if len(h.Values(fieldContentType)) > 0 {
		components = append(components, fieldContentType)
	}
	if len(body) > 0 {
		components = append(components, fieldContentDigest)
	}
	list := make([]item, len(components))
	for i, c := range components {
		list[i] = item{value: bareItem{kind: kindString, str: c}}
	}
	params := []param{
		{key: "created", value: bareItem{kind: kindInteger, num: created.Unix()}},
		{key: "expires", value: bareItem{kind: kindInteger, num: expires.Unix()}},
		{key: "keyid", value: bareItem{kind: kindString, str: opts.KeyID}},
		{key: "nonce", value: bareItem{kind: kindString, str: nonce}},
		{key: "alg", value: bareItem{kind: kindString, str: alg}},
		{key: "tag", value: bareItem{kind: kindString, str: tag}},
	}
	// One serialization, both signed and sent.
	input := serializeInnerList(list, params)
	base, err := signatureBase(components, t, h, input)
	if err != nil {
		return fmt.Errorf("httpsig: sign: %v", err)
	}
	sig := ed25519.Sign(key, base)

	if req.Header == nil {
		req.Header = http.Header{}
	}
	if len(body) > 0 {
		req.Header["Content-Digest"] = h["Content-Digest"]
	} else {
		req.Header.Del("Content-Digest")
	}
	req.Header.Set("Signature-Input", signatureLabel+"="+input)
	req.Header.Set("Signature", signatureLabel+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
	return nil
}
