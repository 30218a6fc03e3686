package httpsig

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
)

// ContentDigest returns the Content-Digest field value (RFC 9530) for body:
// `sha-256=:<base64 of SHA-256(body)>:`.
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// CheckContentDigest checks a Content-Digest field value against the exact
// bytes of a body. The value must hold a sha-256 digest, and it must match;
// a sha-512 digest, if there is one, must match too; digests with other
// algorithms are ignored. It returns an error wrapping ErrMalformed when
// header is not a valid Dictionary or is longer than 4 KiB, and one
// wrapping ErrDigest when sha-256 is missing or a digest does not match.
func CheckContentDigest(header string, body []byte) error {
	if len(header) > maxHeaderLen {
		return fmt.Errorf("%w: content-digest longer than %d bytes", ErrMalformed, maxHeaderLen)
	}
	d, err := parseDictionary(header)
	if err != nil {
		return fmt.Errorf("%w: content-digest: %v", ErrMalformed, err)
	}
	m, ok := d.get("sha-256")
	if !ok {
		return fmt.Errorf("%w: no sha-256 digest", ErrDigest)
	}
	sum256 := sha256.Sum256(body)
	if err := checkDigest("sha-256", m, sum256[:]); err != nil {
		return err
	}
	if m, ok := d.get("sha-512"); ok {
		sum512 := sha512.Sum512(body)
		if err := checkDigest("sha-512", m, sum512[:]); err != nil {
			return err
		}
	}
	return nil
}

func checkDigest(alg string, m member, sum []byte) error {
	if m.inner || m.value.kind != kindBytes {
		return fmt.Errorf("%w: content-digest %s is not a byte sequence", ErrMalformed, alg)
	}
	if subtle.ConstantTimeCompare(m.value.bytes, sum) != 1 {
		return fmt.Errorf("%w: %s does not match the body", ErrDigest, alg)
	}
	return nil
}
