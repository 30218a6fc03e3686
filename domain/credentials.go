package domain

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/big"
	"strings"
)

// Identifier prefixes. The rest of each identifier is a ULID in its
// canonical 26-character Crockford base32 form.
const (
	APIKeyPrefix = "ak_"
	UserIDPrefix = "usr_"
	SecretPrefix = "sk_"
)

const (
	ulidLength = 26
	// secretBytes is the secret's entropy: 256 bits.
	secretBytes = 32
	// secretBodyLength is the base62 width of 256 bits: ceil(256 / log2(62)).
	secretBodyLength = 43
	// secretChecksumLength is the base62 width of a CRC32.
	secretChecksumLength = 6
	// SecretLength is the length of a formatted secret.
	SecretLength = len(SecretPrefix) + secretBodyLength + secretChecksumLength
	// maxCredentialHeader bounds the header values parsed, before decoding.
	maxCredentialHeader = 512
)

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrBadCredentials is the one error every credential parse failure wraps.
// Its message names no detail, so it is safe to return to clients as is.
var ErrBadCredentials = Errorf(Unauthorized, "invalid or missing API key credentials")

// ValidAPIKey reports whether s has the form of an API key: "ak_" and a ULID.
func ValidAPIKey(s string) bool {
	_, ok := ParseAPIKeyID(s)
	return ok
}

// ParseAPIKeyID checks that s has the form of an API key (see ValidAPIKey)
// and returns the 16 bytes of its ULID, in one pass with no allocation:
// what the validation lookup is keyed by.
func ParseAPIKeyID(s string) (id [16]byte, ok bool) {
	if len(s) != len(APIKeyPrefix)+ulidLength || s[:len(APIKeyPrefix)] != APIKeyPrefix {
		return id, false
	}
	s = s[len(APIKeyPrefix):]
	if s[0] > '7' {
		return id, false // past 128 bits
	}
	// The ULID is a 130-bit big-endian number in base32 whose top two
	// bits are zero: accumulate it, 5 bits a character, in hi:lo.
	var hi, lo uint64
	for i := 0; i < ulidLength; i++ {
		v := crockford[s[i]]
		if v == 0xff {
			return [16]byte{}, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id, true
}

// crockford maps the characters of a ULID's canonical form (upper-case
// Crockford base32: no I, L, O, U) to their values, anything else to 0xff.
var crockford = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range []byte("0123456789ABCDEFGHJKMNPQRSTVWXYZ") {
		t[c] = byte(i)
	}
	return t
}()

// ValidUserID reports whether s has the form of a user id: "usr_" and a ULID.
func ValidUserID(s string) bool {
	return strings.HasPrefix(s, UserIDPrefix) && validULID(s[len(UserIDPrefix):])
}

// validULID checks the canonical upper-case Crockford form of a ULID,
// including that its first character keeps it within 128 bits.
func validULID(s string) bool {
	if len(s) != ulidLength || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U'
		if !ok {
			return false
		}
	}
	return true
}

// Secret is an API key's secret in its formatted form: "sk_", 43 base62
// characters of 256 random bits, and a 6-character base62 CRC32 checksum of
// everything before it (so secret scanners can check a find offline).
//
// Its String and GoString methods redact it, and the value sits behind a
// pointer so that even fmt's reflection on a struct holding a Secret in an
// unexported field prints an address, not the secret. Reveal returns it.
// Compare secrets with Reveal, not ==.
type Secret struct{ p *string }

// NewSecret draws 256 bits from random (crypto/rand.Reader in production)
// and formats them as a secret.
func NewSecret(random io.Reader) (Secret, error) {
	var b [secretBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return Secret{}, Wrap(Internal, err, "")
	}
	body := base62(new(big.Int).SetBytes(b[:]), secretBodyLength)
	s := SecretPrefix + body
	s += checksum(s)
	return Secret{&s}, nil
}

// ParseSecret checks the format and the checksum of a secret. It returns
// ErrBadCredentials when either is wrong, before anything is looked up.
func ParseSecret(s string) (Secret, error) {
	if !wellFormedSecret(s) {
		return Secret{}, ErrBadCredentials
	}
	return Secret{&s}, nil
}

// ParseSecretHash checks a secret as ParseSecret does and returns its
// SHA-256 (Secret.Hash, what the log stores and the lookup compares)
// without keeping the secret: it allocates nothing, for the validation
// hot path. It returns ErrBadCredentials when the format or the checksum
// is wrong.
func ParseSecretHash(s string) (Hash, error) {
	if !wellFormedSecret(s) {
		return Hash{}, ErrBadCredentials
	}
	// A copy on the stack: sha256.Sum256([]byte(s)) would allocate for a
	// string this long.
	var b [SecretLength]byte
	copy(b[:], s)
	return sha256.Sum256(b[:]), nil
}

// HashSecretForm returns the SHA-256 of s when s has a secret's length and
// prefix, without checking its alphabet and checksum, and allocates
// nothing. It is for a lookup that compares the hash in constant time with
// stored hashes, each of a secret the ledger generated: only that very
// secret matches one, so a match proves s well-formed and the full check
// (ValidSecret) is left for after a mismatch, to tell a malformed secret
// from a wrong one. ok is false when s is not even of a secret's form.
func HashSecretForm(s string) (h Hash, ok bool) {
	if len(s) != SecretLength || s[:len(SecretPrefix)] != SecretPrefix {
		return Hash{}, false
	}
	var b [SecretLength]byte
	copy(b[:], s)
	return sha256.Sum256(b[:]), true
}

// ValidSecret reports whether s is a well-formed secret (length, prefix,
// alphabet and checksum, as ParseSecret checks), with no allocation.
func ValidSecret(s string) bool { return wellFormedSecret(s) }

// wellFormedSecret reports whether s is a secret: its length, prefix,
// alphabet and checksum, in one pass with no allocation.
func wellFormedSecret(s string) bool {
	if len(s) != SecretLength || s[:len(SecretPrefix)] != SecretPrefix {
		return false
	}
	// No branch per character: or together whether each is outside the
	// alphabet.
	var bad byte
	for i := len(SecretPrefix); i < len(s); i++ {
		bad |= notBase62[s[i]]
	}
	if bad != 0 {
		return false
	}
	head := s[:len(s)-secretChecksumLength]
	var sum [secretChecksumLength]byte
	putChecksum(sum[:], head)
	return s[len(head):] == string(sum[:])
}

// checksum returns the base62 CRC32 of head, secretChecksumLength wide.
func checksum(head string) string {
	var sum [secretChecksumLength]byte
	putChecksum(sum[:], head)
	return string(sum[:])
}

// putChecksum writes the base62 CRC32 of head into dst, left-padded with
// '0' (the same digits base62 gives, without big integers: this runs on
// every validation).
func putChecksum(dst []byte, head string) {
	n := crc32IEEE(head)
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = base62Alphabet[n%62]
		n /= 62
	}
}

// crcTables are the slicing-by-8 tables of the IEEE CRC32, derived from
// crc32.IEEETable.
var crcTables = func() (t [8]crc32.Table) {
	t[0] = *crc32.IEEETable
	for i := range 256 {
		c := t[0][i]
		for j := 1; j < 8; j++ {
			c = t[0][c&0xff] ^ c>>8
			t[j][i] = c
		}
	}
	return t
}()

// crc32IEEE is crc32.ChecksumIEEE of a string, computed in place: the
// library's needs a []byte, and the conversion of a secret's head
// allocates on every validation (the checksum escapes through a function
// value).
func crc32IEEE(s string) uint32 {
	t := &crcTables
	crc := ^uint32(0)
	for len(s) >= 8 {
		crc ^= uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		crc = t[0][s[7]] ^ t[1][s[6]] ^ t[2][s[5]] ^ t[3][s[4]] ^
			t[4][crc>>24] ^ t[5][crc>>16&0xff] ^ t[6][crc>>8&0xff] ^ t[7][crc&0xff]
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		crc = t[0][byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// notBase62 is 1 for the bytes outside base62Alphabet, 0 for those in it.
var notBase62 = func() (t [256]byte) {
	for c := range t {
		if !isBase62(byte(c)) {
			t[c] = 1
		}
	}
	return t
}()

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// Reveal returns the formatted secret. Call it only to show the secret to
// its owner once.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsZero reports whether s is the zero Secret.
func (s Secret) IsZero() bool { return s.p == nil }

// String returns a redacted placeholder.
func (s Secret) String() string { return "sk_[REDACTED]" }

// GoString returns a redacted placeholder.
func (s Secret) GoString() string { return "domain.Secret{REDACTED}" }

// Hash returns the SHA-256 of the formatted secret: what the log stores.
func (s Secret) Hash() Hash { return sha256.Sum256([]byte(s.Reveal())) }

// base62 formats n in base62, left-padded with '0' to width.
func base62(n *big.Int, width int) string {
	out := make([]byte, width)
	for i := range out {
		out[i] = '0'
	}
	base, mod := big.NewInt(62), new(big.Int)
	n = new(big.Int).Set(n)
	for i := width - 1; i >= 0 && n.Sign() > 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62Alphabet[mod.Int64()]
	}
	return string(out)
}

// ErrAmbiguousCredentials is what ParseCredentials and
// CheckSignedCredentials return for a request that names its credentials
// more than once: a credential header sent twice, both header styles at
// once, or a secret beside a signature. It wraps ErrBadCredentials; its
// message says what to send instead and nothing about any key.
var ErrAmbiguousCredentials = Wrap(Unauthorized, ErrBadCredentials,
	"ambiguous API key credentials: send one x-api-key and one x-api-secret header, or one Authorization: ApiKey header, or a signature, never two of these nor a header twice")

// ParseCredentials extracts an API key and its secret from every value of
// a request's x-api-key, x-api-secret and Authorization header fields, in
// the order received: either exactly one xAPIKey = base64(api_key) and one
// xAPISecret = base64(secret), or exactly one authorization = "ApiKey
// base64(api_key:secret)" (scheme case-insensitive in ASCII only, split on
// the first colon). Every failure is ErrBadCredentials; the secret's
// checksum is checked here, before any lookup.
//
// Ambiguity is refused, never settled by picking one: a header field sent
// more than once (even with the same value), an ApiKey Authorization next
// to either x- header (even naming the same key), and an Authorization
// whose scheme is not an RFC 9110 token (such as ApiKey spelt with U+212A
// KELVIN SIGN, which Unicode case folding would take for a k) all return
// ErrAmbiguousCredentials or ErrBadCredentials. An Authorization of another
// scheme (Bearer, Basic) is not an API-key credential and is ignored.
//
// The base64 is the standard alphabet, padded or not, in its one canonical
// form; spaces and tabs around a value are ignored (HTTP's optional
// whitespace). Anything else is refused rather than normalised: the URL-safe
// alphabet, non-canonical padding bits, and line breaks anywhere (which
// Go's decoder would otherwise skip without a word).
func ParseCredentials(xAPIKey, xAPISecret, authorization []string) (apiKey string, secret Secret, err error) {
	apiKeyAuth, err := credentialStyle(xAPIKey, xAPISecret, authorization)
	if err != nil {
		return "", Secret{}, err
	}
	var rawKey, rawSecret string
	if apiKeyAuth != "" {
		pair, err := decodeBase64(trimOWS(apiKeyAuth))
		if err != nil {
			return "", Secret{}, err
		}
		var found bool
		if rawKey, rawSecret, found = strings.Cut(pair, ":"); !found {
			return "", Secret{}, ErrBadCredentials
		}
	} else {
		if len(xAPIKey) != 1 || len(xAPISecret) != 1 {
			return "", Secret{}, ErrBadCredentials
		}
		if rawKey, err = decodeBase64(trimOWS(xAPIKey[0])); err != nil {
			return "", Secret{}, err
		}
		if rawSecret, err = decodeBase64(trimOWS(xAPISecret[0])); err != nil {
			return "", Secret{}, err
		}
	}
	if !ValidAPIKey(rawKey) {
		return "", Secret{}, ErrBadCredentials
	}
	if secret, err = ParseSecret(rawSecret); err != nil {
		return "", Secret{}, err
	}
	return rawKey, secret, nil
}

// CheckSignedCredentials checks the credential header fields that travel
// beside a signature made by keyID (their every value, as for
// ParseCredentials): no x-api-secret, no ApiKey Authorization, at most one
// Authorization of another scheme, and at most one x-api-key, which must
// be the standard base64 of keyID. It returns nil, ErrAmbiguousCredentials
// or ErrBadCredentials.
func CheckSignedCredentials(xAPIKey, xAPISecret, authorization []string, keyID string) error {
	if len(xAPISecret) > 0 || len(authorization) > 1 || len(xAPIKey) > 1 {
		return ErrAmbiguousCredentials
	}
	if len(authorization) == 1 {
		if _, ok, err := apiKeyParam(authorization[0]); err != nil {
			return err
		} else if ok {
			return ErrAmbiguousCredentials
		}
	}
	if len(xAPIKey) == 1 {
		raw, err := decodeBase64(trimOWS(xAPIKey[0]))
		if err != nil || raw != keyID {
			return ErrBadCredentials
		}
	}
	return nil
}

// credentialStyle decides which style a request's credentials use: it
// returns the parameter of its one ApiKey Authorization, or "" when the
// x- headers are to be read; ErrAmbiguousCredentials when the fields name
// credentials more than once.
func credentialStyle(xAPIKey, xAPISecret, authorization []string) (string, error) {
	if len(xAPIKey) > 1 || len(xAPISecret) > 1 || len(authorization) > 1 {
		return "", ErrAmbiguousCredentials
	}
	if len(authorization) == 0 {
		return "", nil
	}
	param, ok, err := apiKeyParam(authorization[0])
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", nil
	case len(xAPIKey) > 0 || len(xAPISecret) > 0:
		return "", ErrAmbiguousCredentials
	case param == "":
		return "", ErrBadCredentials
	}
	return param, nil
}

// apiKeyParam reads an Authorization value: ok when its scheme is ApiKey
// (compared in ASCII, case-insensitively, per RFC 9110), with the
// parameter after the spaces that follow it. A value of only spaces and
// tabs is no scheme at all. A scheme that is not a token, such as one with
// a non-ASCII letter, is ErrBadCredentials: no reader may take it for
// ApiKey while another takes it for something else.
func apiKeyParam(value string) (param string, ok bool, err error) {
	v := trimOWS(value)
	if v == "" {
		return "", false, nil
	}
	scheme, param, _ := strings.Cut(v, " ")
	if !isToken(scheme) {
		return "", false, ErrBadCredentials
	}
	if !EqualFoldASCII(scheme, "apikey") {
		return "", false, nil
	}
	return trimOWS(param), true, nil
}

// EqualFoldASCII reports whether a and b are equal under ASCII case
// folding, as RFC 9110 compares authentication schemes: unlike
// strings.EqualFold, no non-ASCII letter (U+212A KELVIN SIGN, U+017F
// LATIN SMALL LETTER LONG S) matches an ASCII one.
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isToken reports whether s is an RFC 9110 token: one or more of the
// visible ASCII characters that are not delimiters.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// trimOWS trims HTTP's optional whitespace, spaces and tabs, and nothing
// else: a line break in a credential is refused, not trimmed.
func trimOWS(s string) string { return strings.Trim(s, " \t") }

// decodeBase64 decodes standard base64, padded or not, of a bounded value.
// Every byte must belong to the alphabet or be padding: the decoder would
// skip CR and LF even in strict mode.
func decodeBase64(s string) (string, error) {
	if s == "" || len(s) > maxCredentialHeader {
		return "", ErrBadCredentials
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isBase62(c) && c != '+' && c != '/' && c != '=' {
			return "", ErrBadCredentials
		}
	}
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return "", ErrBadCredentials
	}
	return string(b), nil
}
