package domain_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/keyledger/keyledger/domain"
)

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Secrets NewSecret makes from 32 copies of one byte. Secrets already handed
// out must keep parsing, so the format is pinned here, not recomputed.
var secretVectors = []struct {
	fill byte
	want string
}{
	{0x00, "sk_00000000000000000000000000000000000000000004LPos6"},
	{0x42, "sk_Fi8xOY8g0CByqH6y3k6yFmCN1r2c8w8hzgHVQDkPYHa4DiZ97"},
	{0xff, "sk_yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp11IM8Ve"},
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	for _, v := range secretVectors {
		t.Run(fmt.Sprintf("Fill%02x", v.fill), func(t *testing.T) {
			s := secretFrom(t, v.fill)
			got := s.Reveal()
			if got != v.want {
				t.Errorf("got %v, want %v", got, v.want)
			}
			if len(got) != domain.SecretLength || domain.SecretLength != 52 {
				t.Errorf("length: got %v (SecretLength %v), want 52", len(got), domain.SecretLength)
			}
			if !strings.HasPrefix(got, domain.SecretPrefix) {
				t.Errorf("prefix: got %v, want %v", got[:3], domain.SecretPrefix)
			}
			if s.IsZero() {
				t.Errorf("IsZero: got %v, want %v", true, false)
			}
			parsed, err := domain.ParseSecret(got)
			if err != nil {
				t.Fatalf("ParseSecret: got %v, want nil", err)
			}
			if parsed.Reveal() != s.Reveal() {
				t.Errorf("ParseSecret: got %v, want the same secret", parsed.Reveal())
			}

			// Check the format independently of the code under test: 43
			// base62 digits of the 32 bytes, then 6 of the CRC32 of the rest.
			body, sum := got[3:46], got[46:]
			n := new(big.Int)
			for _, c := range []byte(body) {
				n.Mul(n, big.NewInt(62))
				n.Add(n, big.NewInt(int64(strings.IndexByte(base62Alphabet, c))))
			}
			if want := new(big.Int).SetBytes(bytes.Repeat([]byte{v.fill}, 32)); n.Cmp(want) != 0 {
				t.Errorf("body: got %x, want %x", n, want)
			}
			if want := base62Uint(uint64(crc32.ChecksumIEEE([]byte(got[:46]))), 6); sum != want {
				t.Errorf("checksum: got %v, want %v", sum, want)
			}
		})
	}

	t.Run("ErrShortRead", func(t *testing.T) {
		for _, r := range []*bytes.Reader{bytes.NewReader(nil), bytes.NewReader(make([]byte, 31))} {
			s, err := domain.NewSecret(r)
			if err == nil || domain.KindOf(err) != domain.Internal || !s.IsZero() {
				t.Errorf("got %q, %v, want zero secret and an internal error", s.Reveal(), err)
			}
		}
	})
	t.Run("ErrReader", func(t *testing.T) {
		boom := errors.New("entropy exhausted")
		s, err := domain.NewSecret(iotest.ErrReader(boom))
		if !errors.Is(err, boom) || domain.KindOf(err) != domain.Internal || !s.IsZero() {
			t.Errorf("got %q, %v, want zero secret and an internal error wrapping %v", s.Reveal(), err, boom)
		}
		if got := domain.MessageOf(err); got != "internal error" {
			t.Errorf("MessageOf: got %v, want %v", got, "internal error")
		}
	})
}

func base62Uint(n uint64, width int) string {
	out := bytes.Repeat([]byte{'0'}, width)
	for i := width - 1; i >= 0; i-- {
		out[i] = base62Alphabet[n%62]
		n /= 62
	}
	return string(out)
}

func TestParseSecret_FlippedCharacter(t *testing.T) {
	t.Parallel()
	good := secretVectors[1].want
	for i := len(domain.SecretPrefix); i < len(good); i++ {
		t.Run(fmt.Sprintf("Pos%02d", i), func(t *testing.T) {
			at := strings.IndexByte(base62Alphabet, good[i])
			for _, step := range []int{1, 31, 61} {
				b := []byte(good)
				b[i] = base62Alphabet[(at+step)%len(base62Alphabet)]
				if s, err := domain.ParseSecret(string(b)); !errors.Is(err, domain.ErrBadCredentials) {
					t.Errorf("ParseSecret(%s): got %q, %v, want %v", b, s.Reveal(), err, domain.ErrBadCredentials)
				}
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	good := secretVectors[1].want
	replace := func(i int, c string) string { return good[:i] + c + good[i+len(c):] }
	tests := []struct {
		name string
		in   string
	}{
		{"ErrEmpty", ""},
		{"ErrPrefixOnly", "sk_"},
		{"ErrUpperPrefix", "SK_" + good[3:]},
		{"ErrDashPrefix", "sk-" + good[3:]},
		{"ErrAPIKeyPrefix", "ak_" + good[3:]},
		{"ErrShort", good[:len(good)-1]},
		{"ErrLong", good + "0"},
		{"ErrLeadingSpace", " " + good[:len(good)-1]},
		{"ErrTrailingNewline", good + "\n"},
		{"ErrSwappedChecksum", good[:46] + good[47:] + good[46:47]},
		{"ErrDash", replace(10, "-")},
		{"ErrUnderscore", replace(10, "_")},
		{"ErrPlus", replace(10, "+")},
		{"ErrSlash", replace(10, "/")},
		{"ErrEquals", replace(51, "=")},
		{"ErrSpace", replace(20, " ")},
		{"ErrNUL", replace(20, "\x00")},
		{"ErrHighByte", replace(20, "\xff")},
		// Two bytes for one character: the length still matches.
		{"ErrNonASCII", replace(20, "é")},
		{"ErrNonASCIIChecksum", replace(49, "é")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := domain.ParseSecret(tc.in)
			if !errors.Is(err, domain.ErrBadCredentials) {
				t.Errorf("got %v, want %v", err, domain.ErrBadCredentials)
			}
			if !s.IsZero() {
				t.Errorf("got %q, want the zero secret", s.Reveal())
			}
		})
	}
}

func TestSecret_Hash(t *testing.T) {
	t.Parallel()
	for _, v := range secretVectors {
		s := secretFrom(t, v.fill)
		if got, want := s.Hash(), domain.Hash(sha256.Sum256([]byte(v.want))); got != want {
			t.Errorf("Hash(%v): got %x, want %x", v.want, got, want)
		}
	}
	if got, want := (domain.Secret{}).Hash(), domain.Hash(sha256.Sum256(nil)); got != want {
		t.Errorf("zero Secret Hash: got %x, want %x", got, want)
	}
}

func TestSecret_Redacted(t *testing.T) {
	t.Parallel()
	s := secretFrom(t, 0x42)
	real := s.Reveal()
	type request struct {
		Name   string
		Secret domain.Secret
		Ptr    *domain.Secret
	}
	values := []struct {
		name string
		v    any
	}{
		{"Secret", s},
		{"Pointer", &s},
		{"Struct", request{Name: "r", Secret: s, Ptr: &s}},
		{"StructPointer", &request{Name: "r", Secret: s, Ptr: &s}},
		{"Slice", []domain.Secret{s, s}},
		{"Map", map[string]domain.Secret{"secret": s}},
		{"Interface", []any{s}},
	}
	for _, v := range values {
		t.Run(v.name, func(t *testing.T) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
				got := fmt.Sprintf(verb, v.v)
				if leaks(got, real) {
					t.Errorf("Sprintf(%q): got %v, want no secret in it", verb, got)
				}
			}
			if got := fmt.Sprint(v.v); leaks(got, real) {
				t.Errorf("Sprint: got %v, want no secret in it", got)
			}
		})
	}

	// fmt does not call methods on unexported fields: it prints them by
	// reflection, so a Secret that holds its value directly shows it.
	t.Run("UnexportedField", func(t *testing.T) {
		type config struct {
			name   string
			secret domain.Secret
		}
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			if got := fmt.Sprintf(verb, config{"r", s}); leaks(got, real) {
				t.Errorf("Sprintf(%q) of a struct with an unexported Secret field shows the secret", verb)
			}
		}
	})

	if got, want := s.String(), "sk_[REDACTED]"; got != want {
		t.Errorf("String: got %v, want %v", got, want)
	}
	if got, want := s.GoString(), "domain.Secret{REDACTED}"; got != want {
		t.Errorf("GoString: got %v, want %v", got, want)
	}
	if b, err := json.Marshal(request{Secret: s}); err != nil || leaks(string(b), real) {
		t.Errorf("json.Marshal: got %s, %v, want no secret in it", b, err)
	}
}

// leaks reports whether out shows any sizeable piece of the secret, as
// text or as hex.
func leaks(out, secret string) bool {
	body := secret[len(domain.SecretPrefix):]
	for _, piece := range []string{body[:8], body[20:28], body[len(body)-8:]} {
		if strings.Contains(out, piece) ||
			strings.Contains(strings.ToLower(out), fmt.Sprintf("%x", piece)) {
			return true
		}
	}
	return false
}

func TestValidAPIKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{apiKey, true},
		{"ak_00000000000000000000000000", true},
		{"ak_7ZZZZZZZZZZZZZZZZZZZZZZZZZ", true},
		{"ak_01jh6z3q8x4n6v2r9t5m7k3b1c", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1c", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3BIC", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3BLC", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3BOC", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3BUC", false},
		{"ak_81JH6Z3Q8X4N6V2R9T5M7K3B1C", false},
		{"ak_ZZZZZZZZZZZZZZZZZZZZZZZZZZ", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1CD", false},
		{"ak_", false},
		{"", false},
		{"AK_01JH6Z3Q8X4N6V2R9T5M7K3B1C", false},
		{"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", false},
		{"01JH6Z3Q8X4N6V2R9T5M7K3B1C", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3B-C", false},
		{" ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C\n", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3B\xc3\x89", false},
	}
	for _, tc := range tests {
		if got := domain.ValidAPIKey(tc.in); got != tc.want {
			t.Errorf("ValidAPIKey(%q): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestValidUserID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{alice, true},
		{"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C", true},
		{"usr_7ZZZZZZZZZZZZZZZZZZZZZZZZZ", true},
		{"usr_01jh6z3q8x4n6v2r9t5m7k3b1c", false},
		{"usr_01JH6Z3Q8X4N6V2R9T5M7K3BIC", false},
		{"usr_01JH6Z3Q8X4N6V2R9T5M7K3BLC", false},
		{"usr_01JH6Z3Q8X4N6V2R9T5M7K3BOC", false},
		{"usr_01JH6Z3Q8X4N6V2R9T5M7K3BUC", false},
		{"usr_81JH6Z3Q8X4N6V2R9T5M7K3B1C", false},
		{"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1", false},
		{"usr_01JH6Z3Q8X4N6V2R9T5M7K3B1CD", false},
		{"usr_", false},
		{"", false},
		{"ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", false},
		{"user_01JH6Z3Q8X4N6V2R9T5M7K3B1C", false},
	}
	for _, tc := range tests {
		if got := domain.ValidUserID(tc.in); got != tc.want {
			t.Errorf("ValidUserID(%q): got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	secret := secretVectors[1].want
	other := secretVectors[2].want
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	raw := func(s string) string { return base64.RawStdEncoding.EncodeToString([]byte(s)) }
	// The test values must exercise padding: with it, both encodings differ.
	if b64(apiKey) == raw(apiKey) || b64(secret) == raw(secret) || b64(apiKey+":"+secret) == raw(apiKey+":"+secret) {
		t.Fatal("test values need base64 padding")
	}
	tests := []struct {
		name                   string
		xKey, xSecret, auth    string
		wantKey, wantSecretStr string
	}{
		{"OKHeaders", b64(apiKey), b64(secret), "", apiKey, secret},
		{"OKHeadersUnpadded", raw(apiKey), raw(secret), "", apiKey, secret},
		{"OKHeadersMixedPadding", b64(apiKey), raw(secret), "", apiKey, secret},
		{"OKHeadersSurroundingSpace", " " + b64(apiKey) + " ", "\t" + b64(secret), "", apiKey, secret},
		{"OKAuthorization", "", "", "ApiKey " + b64(apiKey+":"+secret), apiKey, secret},
		{"OKAuthorizationUnpadded", "", "", "ApiKey " + raw(apiKey+":"+secret), apiKey, secret},
		{"OKAuthorizationLowerCase", "", "", "apikey " + b64(apiKey+":"+secret), apiKey, secret},
		{"OKAuthorizationUpperCase", "", "", "APIKEY " + b64(apiKey+":"+secret), apiKey, secret},
		{"OKAuthorizationSpaces", "", "", "  ApiKey   " + b64(apiKey+":"+secret) + "  ", apiKey, secret},
		{"OKBearerFallsBack", b64(apiKey), b64(secret), "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", apiKey, secret},
		{"OKBasicFallsBack", b64(apiKey), b64(secret), "Basic " + b64("alice:pw"), apiKey, secret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, s, err := domain.ParseCredentials(values(tc.xKey), values(tc.xSecret), values(tc.auth))
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if key != tc.wantKey {
				t.Errorf("api key: got %v, want %v", key, tc.wantKey)
			}
			if s.Reveal() != tc.wantSecretStr {
				t.Errorf("secret: got %v, want %v", s.Reveal(), tc.wantSecretStr)
			}
		})
	}

	flipped := secret[:20] + "x" + secret[21:]
	oversize := strings.Repeat("A", 513)
	errTests := []struct {
		name                string
		xKey, xSecret, auth string
	}{
		{"ErrNoHeaders", "", "", ""},
		{"ErrOnlyKey", b64(apiKey), "", ""},
		{"ErrOnlySecret", "", b64(secret), ""},
		{"ErrBlankHeaders", " ", " ", ""},
		{"ErrBearerOnly", "", "", "Bearer " + b64(apiKey+":"+secret)},
		{"ErrAuthorizationNoParam", "", "", "ApiKey "},
		{"ErrSchemeOnlyWithHeaders", b64(apiKey), b64(secret), "ApiKey"},
		// RFC 9110 compares schemes in ASCII: U+212A KELVIN SIGN folds to
		// k in Unicode, and U+017F LONG S to s, but neither is a token.
		{"ErrSchemeKelvinSign", "", "", "Api\u212aey " + b64(apiKey+":"+secret)},
		{"ErrSchemeKelvinSignWithHeaders", b64(apiKey), b64(secret), "Api\u212aey " + b64(otherAPIKey+":"+other)},
		{"ErrSchemeTab", "", "", "ApiKey\t" + b64(apiKey+":"+secret)},
		{"ErrKeyNotBase64", "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C", b64(secret), ""},
		{"ErrKeyBadBase64", "!!!!" + b64(apiKey), b64(secret), ""},
		{"ErrSecretNotBase64", b64(apiKey), secret, ""},
		// Same bytes, but with non-zero padding bits: strict decoding only.
		{"ErrSecretNonCanonicalBase64", b64(apiKey), nonCanonical(b64(secret)), ""},
		{"ErrAuthorizationNotBase64", "", "", "ApiKey " + apiKey + ":" + secret},
		{"ErrAuthorizationBadPadding", "", "", "ApiKey " + b64(apiKey+":"+secret) + "="},
		{"ErrAuthorizationNoColon", "", "", "ApiKey " + b64(apiKey+secret)},
		{"ErrAuthorizationEmptyKey", "", "", "ApiKey " + b64(":"+secret)},
		{"ErrAuthorizationEmptySecret", "", "", "ApiKey " + b64(apiKey+":")},
		{"ErrAuthorizationExtraColon", "", "", "ApiKey " + b64(apiKey+":"+secret+":")},
		{"ErrAuthorizationSwapped", "", "", "ApiKey " + b64(secret+":"+apiKey)},
		{"ErrAuthorizationBadKey", "", "", "ApiKey " + b64(strings.ToLower(apiKey)+":"+secret)},
		{"ErrAuthorizationBadChecksum", "", "", "ApiKey " + b64(apiKey+":"+flipped)},
		// An ApiKey Authorization header is not second-guessed: when it is
		// bad, good x- headers next to it do not rescue the request.
		{"ErrAuthorizationBadWithGoodHeaders", b64(apiKey), b64(secret), "ApiKey " + b64(apiKey+":"+flipped)},
		{"ErrBadKey", b64(strings.ToLower(apiKey)), b64(secret), ""},
		{"ErrKeyWrongPrefix", b64("usr_01JH6Z3Q8X4N6V2R9T5M7K3B1C"), b64(secret), ""},
		{"ErrKeyTrailingNewline", b64(apiKey + "\n"), b64(secret), ""},
		{"ErrBadChecksum", b64(apiKey), b64(flipped), ""},
		{"ErrSecretAsKey", b64(secret), b64(apiKey), ""},
		{"ErrOversizeKey", oversize, b64(secret), ""},
		{"ErrOversizeSecret", b64(apiKey), oversize, ""},
		{"ErrOversizeAuthorization", "", "", "ApiKey " + oversize},
		{"ErrOversizeValidPrefix", b64(apiKey) + strings.Repeat("=", 513), b64(secret), ""},
		// Go's base64 decoder skips CR and LF, even in strict mode: they are
		// refused here instead, wherever they are.
		{"ErrKeyEmbeddedLF", b64(apiKey)[:8] + "\n" + b64(apiKey)[8:], b64(secret), ""},
		{"ErrSecretEmbeddedCRLF", b64(apiKey), b64(secret)[:20] + "\r\n" + b64(secret)[20:], ""},
		{"ErrSecretEmbeddedCR", b64(apiKey), b64(secret)[:20] + "\r" + b64(secret)[20:], ""},
		{"ErrKeyTrailingCRLF", b64(apiKey) + "\r\n", b64(secret), ""},
		{"ErrKeyLeadingLF", "\n" + b64(apiKey), b64(secret), ""},
		{"ErrAuthorizationEmbeddedCRLF", "", "", "ApiKey " + b64(apiKey + ":" + secret)[:30] + "\r\n" + b64(apiKey + ":" + secret)[30:]},
		{"ErrAuthorizationTrailingLF", "", "", "ApiKey " + b64(apiKey+":"+secret) + "\n"},
		{"ErrAuthorizationLeadingCRLF", "", "", "\r\nApiKey " + b64(apiKey+":"+secret)},
		{"ErrAuthorizationFoldedLine", "", "", "ApiKey\r\n " + b64(apiKey+":"+secret)},
		{"ErrKeyEmbeddedSpace", b64(apiKey)[:8] + " " + b64(apiKey)[8:], b64(secret), ""},
		{"ErrKeyEmbeddedNUL", b64(apiKey)[:8] + "\x00" + b64(apiKey)[8:], b64(secret), ""},
		{"ErrURLAlphabetDash", b64(apiKey)[:8] + "-" + b64(apiKey)[9:], b64(secret), ""},
		{"ErrURLAlphabetUnderscore", b64(apiKey), b64(secret)[:8] + "_" + b64(secret)[9:], ""},
		{"ErrPartialPadding", b64(apiKey), strings.TrimSuffix(b64(secret), "="), ""},
		{"ErrPaddingInside", b64(apiKey)[:8] + "=" + b64(apiKey)[8:], b64(secret), ""},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			key, s, err := domain.ParseCredentials(values(tc.xKey), values(tc.xSecret), values(tc.auth))
			if !errors.Is(err, domain.ErrBadCredentials) {
				t.Errorf("got %v, want %v", err, domain.ErrBadCredentials)
			}
			if got := domain.KindOf(err); got != domain.Unauthorized {
				t.Errorf("kind: got %v, want %v", got, domain.Unauthorized)
			}
			if key != "" || !s.IsZero() {
				t.Errorf("got %q, %q, want empty results", key, s.Reveal())
			}
		})
	}
}

// TestParseCredentials_Base64Alphabets pins the alphabet decision: the
// standard alphabet only. The URL-safe alphabet differs from it in two
// characters ('-' and '_' for '+' and '/'), and the base64 of a well-formed
// key and secret (ASCII letters, digits, '_' and ':') never holds '+' or
// '/', so a client that encodes with either alphabet sends the same bytes:
// refusing '-' and '_' turns away no valid credential.
// values is a header field's values: none for "".
func values(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// TestParseCredentials_Ambiguous: a request that names its credentials
// more than once is refused, whichever would have won, even when every
// value names the same key.
func TestParseCredentials_Ambiguous(t *testing.T) {
	t.Parallel()
	secret := secretVectors[1].want
	other := secretVectors[2].want
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	auth := "ApiKey " + b64(apiKey+":"+secret)
	tests := []struct {
		name                string
		xKey, xSecret, auth []string
	}{
		{"ErrTwoAuthorization", nil, nil, []string{auth, "ApiKey " + b64(otherAPIKey+":"+other)}},
		{"ErrTwoAuthorizationSame", nil, nil, []string{auth, auth}},
		{"ErrAuthorizationAndBearer", nil, nil, []string{"Bearer x", auth}},
		{"ErrTwoAPIKey", []string{b64(apiKey), b64(otherAPIKey)}, []string{b64(secret)}, nil},
		{"ErrTwoAPIKeySame", []string{b64(apiKey), b64(apiKey)}, []string{b64(secret)}, nil},
		{"ErrTwoAPISecret", []string{b64(apiKey)}, []string{b64(secret), b64(other)}, nil},
		{"ErrBothStyles", []string{b64(otherAPIKey)}, []string{b64(other)}, []string{auth}},
		{"ErrBothStylesSameKey", []string{b64(apiKey)}, []string{b64(secret)}, []string{auth}},
		{"ErrAuthorizationAndAPIKey", []string{b64(apiKey)}, nil, []string{auth}},
		{"ErrAuthorizationAndAPISecret", nil, []string{b64(secret)}, []string{auth}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, s, err := domain.ParseCredentials(tc.xKey, tc.xSecret, tc.auth)
			if !errors.Is(err, domain.ErrAmbiguousCredentials) || !errors.Is(err, domain.ErrBadCredentials) {
				t.Errorf("got %v, want %v", err, domain.ErrAmbiguousCredentials)
			}
			if got := domain.KindOf(err); got != domain.Unauthorized {
				t.Errorf("kind: got %v, want %v", got, domain.Unauthorized)
			}
			if key != "" || !s.IsZero() {
				t.Errorf("got %q, %q, want empty results", key, s.Reveal())
			}
		})
	}
}

func TestCheckSignedCredentials(t *testing.T) {
	t.Parallel()
	secret := secretVectors[1].want
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name                string
		xKey, xSecret, auth []string
		want                error
	}{
		{"OKNothing", nil, nil, nil, nil},
		{"OKAPIKey", []string{b64(apiKey)}, nil, nil, nil},
		{"OKAPIKeyUnpadded", []string{base64.RawStdEncoding.EncodeToString([]byte(apiKey))}, nil, nil, nil},
		{"OKBearer", nil, nil, []string{"Bearer x"}, nil},
		{"ErrOtherAPIKey", []string{b64(otherAPIKey)}, nil, nil, domain.ErrBadCredentials},
		{"ErrAPIKeyNotBase64", []string{apiKey}, nil, nil, domain.ErrBadCredentials},
		{"ErrTwoAPIKey", []string{b64(apiKey), b64(apiKey)}, nil, nil, domain.ErrAmbiguousCredentials},
		{"ErrSecret", []string{b64(apiKey)}, []string{b64(secret)}, nil, domain.ErrAmbiguousCredentials},
		{"ErrEmptySecret", nil, []string{""}, nil, domain.ErrAmbiguousCredentials},
		{"ErrApiKeyAuthorization", nil, nil, []string{"apikey " + b64(apiKey+":"+secret)}, domain.ErrAmbiguousCredentials},
		{"ErrTwoAuthorization", nil, nil, []string{"Bearer x", "ApiKey " + b64(apiKey+":"+secret)}, domain.ErrAmbiguousCredentials},
		{"ErrKelvinAuthorization", nil, nil, []string{"Api\u212aey " + b64(apiKey+":"+secret)}, domain.ErrBadCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := domain.CheckSignedCredentials(tc.xKey, tc.xSecret, tc.auth, apiKey)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEqualFoldASCII(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"ApiKey", "apikey", true},
		{"APIKEY", "apikey", true},
		{"Api\u212aey", "apikey", false},
		{"\u017figned", "signed", false},
		{"apikey", "apikeys", false},
		{"", "", true},
		{"[", "{", false},
	}
	for _, tc := range tests {
		if got := domain.EqualFoldASCII(tc.a, tc.b); got != tc.want {
			t.Errorf("EqualFoldASCII(%q, %q): got %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParseCredentials_Base64Alphabets(t *testing.T) {
	t.Parallel()
	for _, v := range secretVectors {
		for _, value := range []string{apiKey, v.want, apiKey + ":" + v.want} {
			for name, enc := range map[string]*base64.Encoding{"Std": base64.StdEncoding, "RawStd": base64.RawStdEncoding} {
				urlEnc := base64.URLEncoding
				if name == "RawStd" {
					urlEnc = base64.RawURLEncoding
				}
				std, url := enc.EncodeToString([]byte(value)), urlEnc.EncodeToString([]byte(value))
				if std != url {
					t.Errorf("%s of %q: standard %q and URL-safe %q differ", name, value, std, url)
				}
			}
		}
	}
}

// nonCanonical sets the unused low bits of a padded base64 string's last
// character: lenient decoders return the same bytes, strict ones refuse.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.TrimRight(s, "=")
	last := len(i) - 1
	return i[:last] + string(alphabet[strings.IndexByte(alphabet, i[last])+1]) + s[len(i):]
}

func TestErrBadCredentials(t *testing.T) {
	t.Parallel()
	if got := domain.KindOf(domain.ErrBadCredentials); got != domain.Unauthorized {
		t.Errorf("kind: got %v, want %v", got, domain.Unauthorized)
	}
	// The message goes to clients as is: it must not say which part failed.
	if got, want := domain.MessageOf(domain.ErrBadCredentials), "invalid or missing API key credentials"; got != want {
		t.Errorf("message: got %v, want %v", got, want)
	}
}
