package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxTokenLength bounds the session tokens looked at: ours are about 400
// bytes.
const maxTokenLength = 4096

// numericClaims must be JSON numbers: those RFC 7519 defines as
// NumericDate, and sv, the session epoch.
var numericClaims = []string{"exp", "nbf", "iat", "sv"}

// registeredClaims are the claims the library reads into
// jwt.RegisteredClaims, and sv. encoding/json matches member names without regard
// to case (Unicode folding included), so "EXP" or "\u017fub" would be
// read as exp or sub: only the exact spelling is accepted.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sv"}

// checkStrict refuses what the JWT library would let through but a
// session token must not hold, before anything else is looked at:
//   - a crit header (RFC 7515 4.1.11): the extensions it lists must be
//     understood, and Sessions understands none, so crit is refused
//     whatever it holds, an empty list included;
//   - exp, nbf, iat or sv that is not a JSON number (the library also
//     takes a string holding a number);
//   - a registered claim spelt in another case (encoding/json would read
//     "EXP" as exp);
//   - a header or claims set that is not one JSON object, or that names a
//     member twice, in any case (which one counts depends on the reader).
func checkStrict(token string) error {
	if len(token) > maxTokenLength {
		return errors.New("token too long")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("token must have three segments")
	}
	header, err := segmentMembers(parts[0])
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	for name := range header {
		if strings.EqualFold(name, "crit") {
			return errors.New("header: crit lists extensions this verifier does not understand")
		}
	}
	claims, err := segmentMembers(parts[1])
	if err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	for name := range claims {
		for _, registered := range registeredClaims {
			if name != registered && strings.EqualFold(name, registered) {
				return fmt.Errorf("claims: %q is not spelt %s", name, registered)
			}
		}
	}
	for _, name := range numericClaims {
		if v, ok := claims[name]; ok && !isJSONNumber(v) {
			return fmt.Errorf("claims: %s is not a number", name)
		}
	}
	return nil
}

// segmentMembers decodes one base64url segment (unpadded, canonical) that
// must hold exactly one JSON object, and returns its members; a member
// named twice, even in another case, is an error.
func segmentMembers(seg string) (map[string]json.RawMessage, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, errors.New("not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("not a JSON object")
		}
		name, ok := t.(string)
		if !ok {
			return nil, errors.New("not a JSON object")
		}
		for seen := range members {
			if strings.EqualFold(seen, name) {
				return nil, fmt.Errorf("member %q twice", name)
			}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("not a JSON object")
		}
		members[name] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return members, nil
}

// isJSONNumber reports whether v is a JSON number literal.
func isJSONNumber(v json.RawMessage) bool {
	if len(v) == 0 {
		return false
	}
	c := v[0]
	return c == '-' || c >= '0' && c <= '9'
}
