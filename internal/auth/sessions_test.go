package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

const testUserID = "usr_01HZY3V4Q8J6XK2M5N7P9R0STW"

func newTestKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	return key
}

func newTestSessions(t testing.TB, key ed25519.PrivateKey, issuer, audience string, ttl time.Duration) *Sessions {
	t.Helper()
	s, err := NewSessions(key, issuer, audience, ttl)
	if err != nil {
		t.Fatalf("NewSessions: %v", err)
	}
	return s
}

func mustIssue(t testing.TB, s *Sessions, userID string, now time.Time) string {
	t.Helper()
	token, _, err := s.Issue(userID, 0, now)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return token
}

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signEdDSA builds a compact JWS by hand, signed with key.
func signEdDSA(t testing.TB, key ed25519.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}

// validClaims are claims Verify accepts for a Sessions with the defaults.
func validClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": DefaultIssuer,
		"aud": []string{DefaultAudience},
		"sub": testUserID,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"jti": "tok-1",
		"sv":  0,
	}
}

// decodeSegment decodes one base64url JSON segment of a compact JWS.
func decodeSegment(t testing.TB, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment %q: %v", seg, err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("segment %s: %v", b, err)
	}
	return m
}

func splitToken(t testing.TB, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q: got %d parts, want 3", token, len(parts))
	}
	return parts
}

func wantUnauthorized(t *testing.T, s *Sessions, token string) {
	t.Helper()
	sub, err := s.Verify(token)
	if got := domain.KindOf(err); got != domain.Unauthorized {
		t.Errorf("Verify error kind: got %v (%v), want %v", got, err, domain.Unauthorized)
	}
	if sub != (Session{}) {
		t.Errorf("Verify session: got %+v, want none", sub)
	}
}

func TestSessions_Issue(t *testing.T) {
	t.Parallel()
	key := newTestKey(t)
	pub := key.Public().(ed25519.PublicKey)
	s := newTestSessions(t, key, "", "", 0)
	now := time.Now()
	token, exp, err := s.Issue(testUserID, 7, now)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	parts := splitToken(t, token)

	t.Run("Header", func(t *testing.T) {
		header := decodeSegment(t, parts[0])
		if got := header["alg"]; got != "EdDSA" {
			t.Errorf("alg: got %v, want %v", got, "EdDSA")
		}
		if got, want := header["kid"], Thumbprint(pub); got != want {
			t.Errorf("kid: got %v, want %v", got, want)
		}
	})

	t.Run("Claims", func(t *testing.T) {
		claims := decodeSegment(t, parts[1])
		for _, name := range []string{"iss", "aud", "sub", "iat", "exp", "jti", "sv"} {
			if _, ok := claims[name]; !ok {
				t.Errorf("claim %s: got none, want one", name)
			}
		}
		if got := claims["iss"]; got != DefaultIssuer {
			t.Errorf("iss: got %v, want %v", got, DefaultIssuer)
		}
		var aud []any
		switch v := claims["aud"].(type) {
		case string:
			aud = []any{v}
		case []any:
			aud = v
		}
		if len(aud) != 1 || aud[0] != DefaultAudience {
			t.Errorf("aud: got %v, want %v", claims["aud"], DefaultAudience)
		}
		if got := claims["sub"]; got != testUserID {
			t.Errorf("sub: got %v, want %v", got, testUserID)
		}
		if got, want := claims["iat"], float64(now.Unix()); got != want {
			t.Errorf("iat: got %v, want %v", got, want)
		}
		if got, want := claims["exp"], float64(now.Add(DefaultTTL).Unix()); got != want {
			t.Errorf("exp: got %v, want %v", got, want)
		}
		if got := claims["sv"]; got != float64(7) {
			t.Errorf("sv: got %v, want 7", got)
		}
		if jti, _ := claims["jti"].(string); len(jti) < 22 {
			t.Errorf("jti: got %q, want 128 random bits", jti)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		want := time.Unix(now.Add(DefaultTTL).Unix(), 0)
		if !exp.Equal(want) {
			t.Errorf("got %v, want %v", exp, want)
		}
	})

	t.Run("Signature", func(t *testing.T) {
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatalf("signature: %v", err)
		}
		if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Errorf("ed25519.Verify: got false, want true")
		}
	})
}

func TestSessions_Verify(t *testing.T) {
	t.Parallel()
	key := newTestKey(t)
	s := newTestSessions(t, key, "", "", 0)
	kid := Thumbprint(key.Public().(ed25519.PublicKey))
	now := time.Now()
	edHeader := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}

	t.Run("OK", func(t *testing.T) {
		sub, err := s.Verify(mustIssue(t, s, testUserID, now))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if sub.UserID != testUserID {
			t.Errorf("got %v, want %v", sub, testUserID)
		}
	})

	t.Run("HandBuilt", func(t *testing.T) {
		// Control for the hand-built cases below: done right, they verify.
		sub, err := s.Verify(signEdDSA(t, key, edHeader, validClaims(now)))
		if err != nil || sub.UserID != testUserID {
			t.Errorf("got %v, %v, want %v, nil", sub, err, testUserID)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		short := newTestSessions(t, key, "", "", time.Hour)
		wantUnauthorized(t, s, mustIssue(t, short, testUserID, now.Add(-2*time.Hour)))
	})

	t.Run("IssuedInFuture", func(t *testing.T) {
		wantUnauthorized(t, s, mustIssue(t, s, testUserID, now.Add(time.Hour)))
	})

	t.Run("OtherKey", func(t *testing.T) {
		other := newTestSessions(t, newTestKey(t), "", "", 0)
		wantUnauthorized(t, s, mustIssue(t, other, testUserID, now))
	})

	t.Run("OtherKeySameKid", func(t *testing.T) {
		wantUnauthorized(t, s, signEdDSA(t, newTestKey(t), edHeader, validClaims(now)))
	})

	t.Run("OtherIssuer", func(t *testing.T) {
		other := newTestSessions(t, key, "someone-else", "", 0)
		wantUnauthorized(t, s, mustIssue(t, other, testUserID, now))
	})

	t.Run("OtherAudience", func(t *testing.T) {
		other := newTestSessions(t, key, "", "another-api", 0)
		wantUnauthorized(t, s, mustIssue(t, other, testUserID, now))
	})

	t.Run("AlgNone", func(t *testing.T) {
		for _, alg := range []string{"none", "None", "NONE"} {
			token := b64JSON(t, map[string]any{"alg": alg, "typ": "JWT", "kid": kid}) + "." +
				b64JSON(t, validClaims(now)) + "."
			wantUnauthorized(t, s, token)
		}
	})

	t.Run("HS256", func(t *testing.T) {
		// Algorithm confusion: an HMAC keyed with what a verifier might hold.
		input := b64JSON(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." +
			b64JSON(t, validClaims(now))
		for _, secret := range [][]byte{key.Public().(ed25519.PublicKey), []byte(kid), key} {
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(input))
			wantUnauthorized(t, s, input+"."+base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
		}
	})

	t.Run("UnknownKid", func(t *testing.T) {
		header := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": "some-other-key"}
		wantUnauthorized(t, s, signEdDSA(t, key, header, validClaims(now)))
	})

	t.Run("NoKid", func(t *testing.T) {
		header := map[string]any{"alg": "EdDSA", "typ": "JWT"}
		wantUnauthorized(t, s, signEdDSA(t, key, header, validClaims(now)))
	})

	t.Run("TamperedPayload", func(t *testing.T) {
		parts := splitToken(t, mustIssue(t, s, testUserID, now))
		claims := decodeSegment(t, parts[1])
		claims["sub"] = "usr_01HZY3V4Q8J6XK2M5N7P9R0AAA"
		wantUnauthorized(t, s, parts[0]+"."+b64JSON(t, claims)+"."+parts[2])
	})

	t.Run("TamperedSignature", func(t *testing.T) {
		parts := splitToken(t, mustIssue(t, s, testUserID, now))
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[0] ^= 1
		wantUnauthorized(t, s, parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig))
	})

	t.Run("NoExp", func(t *testing.T) {
		claims := validClaims(now)
		delete(claims, "exp")
		wantUnauthorized(t, s, signEdDSA(t, key, edHeader, claims))
	})

	t.Run("NoSubject", func(t *testing.T) {
		claims := validClaims(now)
		delete(claims, "sub")
		wantUnauthorized(t, s, signEdDSA(t, key, edHeader, claims))
	})

	t.Run("Garbage", func(t *testing.T) {
		for _, token := range []string{"", ".", "..", "a.b.c", "not a token"} {
			wantUnauthorized(t, s, token)
		}
	})
}

func TestSessions_JWKS(t *testing.T) {
	t.Parallel()
	key := newTestKey(t)
	pub := key.Public().(ed25519.PublicKey)
	s := newTestSessions(t, key, "", "", 0)

	set := s.JWKS()
	if len(set.Keys) != 1 {
		t.Fatalf("keys: got %v, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	for _, c := range []struct{ name, got, want string }{
		{"kty", k.Kty, "OKP"},
		{"crv", k.Crv, "Ed25519"},
		{"x", k.X, base64.RawURLEncoding.EncodeToString(pub)},
		{"kid", k.Kid, Thumbprint(pub)},
		{"alg", k.Alg, "EdDSA"},
		{"use", k.Use, "sig"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}

	t.Run("JSON", func(t *testing.T) {
		b, err := json.Marshal(set)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var doc struct {
			Keys []map[string]string `json:"keys"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if len(doc.Keys) != 1 || doc.Keys[0]["kty"] != "OKP" || doc.Keys[0]["x"] != k.X || doc.Keys[0]["kid"] != k.Kid {
			t.Errorf("got %s, want one key with kty, x, kid", b)
		}
	})

	t.Run("VerifiesToken", func(t *testing.T) {
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil {
			t.Fatalf("x: %v", err)
		}
		if len(x) != ed25519.PublicKeySize {
			t.Fatalf("x length: got %v, want %v", len(x), ed25519.PublicKeySize)
		}
		parts := splitToken(t, mustIssue(t, s, testUserID, time.Now()))
		if got := decodeSegment(t, parts[0])["kid"]; got != k.Kid {
			t.Errorf("token kid: got %v, want %v", got, k.Kid)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatalf("signature: %v", err)
		}
		if !ed25519.Verify(ed25519.PublicKey(x), []byte(parts[0]+"."+parts[1]), sig) {
			t.Errorf("ed25519.Verify with JWKS x: got false, want true")
		}
	})
}

func TestThumbprint(t *testing.T) {
	t.Parallel()
	t.Run("RFC8037", func(t *testing.T) {
		// RFC 8037 appendix A.3.
		x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
		if err != nil {
			t.Fatalf("x: %v", err)
		}
		const want = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
		if got := Thumbprint(ed25519.PublicKey(x)); got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("RFC7638", func(t *testing.T) {
		// Required members only, in lexicographic order, no whitespace:
		// encoding/json writes map keys sorted and compact.
		pub := newTestKey(t).Public().(ed25519.PublicKey)
		canonical, err := json.Marshal(map[string]string{
			"x": base64.RawURLEncoding.EncodeToString(pub), "kty": "OKP", "crv": "Ed25519",
		})
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		sum := sha256.Sum256(canonical)
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if got := Thumbprint(pub); got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func TestNewSessions(t *testing.T) {
	t.Parallel()
	t.Run("BadKeyLength", func(t *testing.T) {
		key := newTestKey(t)
		for _, k := range []ed25519.PrivateKey{
			nil,
			key.Seed(),
			ed25519.PrivateKey(key.Public().(ed25519.PublicKey)),
			key[:63],
			append(append(ed25519.PrivateKey{}, key...), 0),
		} {
			s, err := NewSessions(k, "", "", 0)
			if err == nil || s != nil {
				t.Errorf("NewSessions(%d-byte key): got %v, %v, want nil, an error", len(k), s, err)
			}
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		for _, ttl := range []time.Duration{0, -time.Minute} {
			s := newTestSessions(t, newTestKey(t), "", "", ttl)
			if s.issuer != DefaultIssuer || s.audience != DefaultAudience || s.ttl != DefaultTTL {
				t.Errorf("got %v, %v, %v, want %v, %v, %v",
					s.issuer, s.audience, s.ttl, DefaultIssuer, DefaultAudience, DefaultTTL)
			}
		}
	})

	t.Run("Custom", func(t *testing.T) {
		key := newTestKey(t)
		s := newTestSessions(t, key, "iss", "aud", 10*time.Minute)
		now := time.Now()
		token, exp, err := s.Issue(testUserID, 7, now)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		if want := time.Unix(now.Add(10*time.Minute).Unix(), 0); !exp.Equal(want) {
			t.Errorf("exp: got %v, want %v", exp, want)
		}
		claims := decodeSegment(t, splitToken(t, token)[1])
		if claims["iss"] != "iss" {
			t.Errorf("iss: got %v, want %v", claims["iss"], "iss")
		}
		if sub, err := s.Verify(token); err != nil || sub.UserID != testUserID {
			t.Errorf("Verify: got %v, %v, want %v, nil", sub, err, testUserID)
		}
	})
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func TestLoadOrCreateSigningKey(t *testing.T) {
	t.Parallel()
	t.Run("CreatesThenLoads", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "keys", "sessions")
		path := filepath.Join(dir, "signing.pem")
		key, err := LoadOrCreateSigningKey(path)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if len(key) != ed25519.PrivateKeySize {
			t.Errorf("key length: got %v, want %v", len(key), ed25519.PrivateKeySize)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("file mode: got %v, want %v", got, os.FileMode(0o600))
		}
		if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
			t.Errorf("dir mode: got %v, %v, want %v", di.Mode().Perm(), err, os.FileMode(0o700))
		}

		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		block, rest := pem.Decode(b)
		if block == nil || block.Type != "PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
			t.Fatalf("file: got %q, want one PRIVATE KEY PEM block", b)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("ParsePKCS8PrivateKey: %v", err)
		}
		if onDisk, ok := parsed.(ed25519.PrivateKey); !ok || !onDisk.Equal(key) {
			t.Errorf("key on disk: got %T, want the returned ed25519.PrivateKey", parsed)
		}

		again, err := LoadOrCreateSigningKey(path)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if !again.Equal(key) {
			t.Errorf("loaded key: got another key, want the created one")
		}
	})

	t.Run("LoadsExisting", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "signing.pem")
		key := newTestKey(t)
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		writePEM(t, path, "PRIVATE KEY", der)
		got, err := LoadOrCreateSigningKey(path)
		if err != nil || !got.Equal(key) {
			t.Errorf("got %v, want the written key", err)
		}
	})

	// Exposes a bug: createSigningKey makes the file (O_EXCL) before it
	// writes the key, so a concurrent caller can read it empty and fail.
	// Several rounds, since each is a race that is lost often, not always.
	t.Run("Concurrent", func(t *testing.T) {
		// Several processes starting at once must all get the one key.
		for round := range 20 {
			path := filepath.Join(t.TempDir(), "k", "signing.pem")
			const n = 8
			keys := make([]ed25519.PrivateKey, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { keys[i], errs[i] = LoadOrCreateSigningKey(path) })
			}
			wg.Wait()
			failed := false
			for i := range n {
				if errs[i] != nil {
					t.Errorf("round %d, caller %d: got error %v, want nil", round, i, errs[i])
					failed = true
				} else if !keys[i].Equal(keys[0]) && errs[0] == nil {
					t.Errorf("round %d, caller %d: got another key, want the same as caller 0", round, i)
					failed = true
				}
			}
			if failed {
				return
			}
		}
	})

	ed, err := x509.MarshalPKCS8PrivateKey(newTestKey(t))
	if err != nil {
		t.Fatalf("marshal ed25519: %v", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate ecdsa: %v", err)
	}
	ec, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatalf("marshal ecdsa: %v", err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatalf("generate rsa: %v", err)
	}
	rs, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatalf("marshal rsa: %v", err)
	}

	bad := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{"NotPEM", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("not a key at all\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"Empty", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"OtherPEMType", func(t *testing.T, path string) { writePEM(t, path, "CERTIFICATE", ed) }},
		{"ECPEMType", func(t *testing.T, path string) { writePEM(t, path, "EC PRIVATE KEY", ed) }},
		{"BadDER", func(t *testing.T, path string) { writePEM(t, path, "PRIVATE KEY", []byte("garbage")) }},
		{"RSA", func(t *testing.T, path string) { writePEM(t, path, "PRIVATE KEY", rs) }},
		{"ECDSA", func(t *testing.T, path string) { writePEM(t, path, "PRIVATE KEY", ec) }},
		{"Directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "signing.pem")
			tt.write(t, path)
			before, _ := os.ReadFile(path)
			key, err := LoadOrCreateSigningKey(path)
			if err == nil || key != nil {
				t.Errorf("got %d-byte key, %v, want nil, an error", len(key), err)
			}
			// A bad key file is reported, never replaced.
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Errorf("file: got %q, want unchanged %q", after, before)
			}
		})
	}
}

// FuzzSessions_Verify checks that Verify never panics on untrusted input,
// fails only as Unauthorized, and accepts nothing but this key's tokens.
func FuzzSessions_Verify(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	s := newTestSessions(f, key, "", "", 0)
	valid := mustIssue(f, s, testUserID, time.Now())
	f.Add(valid)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(valid[:len(valid)-2])
	f.Fuzz(func(t *testing.T, token string) {
		sub, err := s.Verify(token)
		if err != nil {
			if got := domain.KindOf(err); got != domain.Unauthorized {
				t.Errorf("Verify(%q) error kind: got %v, want %v", token, got, domain.Unauthorized)
			}
			return
		}
		if sub.UserID == "" {
			t.Errorf("Verify(%q): got empty subject and no error", token)
		}
	})
}
