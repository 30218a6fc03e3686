package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// signRaw builds a compact JWS from raw header and claims JSON, signed
// with key: the signature is right, so only the content decides.
func signRaw(key ed25519.PrivateKey, header, claims string) string {
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}

// TestSessions_VerifyStrict: tokens signed with the right key but holding
// what RFC 7515 and RFC 7519 do not allow are refused.
func TestSessions_VerifyStrict(t *testing.T) {
	t.Parallel()
	key := newTestKey(t)
	s := newTestSessions(t, key, "", "", 0)
	kid := Thumbprint(key.Public().(ed25519.PublicKey))
	now := time.Now().Unix()
	header := fmt.Sprintf(`{"alg":"EdDSA","typ":"JWT","kid":%q}`, kid)
	claims := func(iat, exp string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":[%q],"sub":%q,"iat":%s,"exp":%s,"jti":"tok-1","sv":3}`, DefaultIssuer, DefaultAudience, testUserID, iat, exp)
	}
	iat, exp := fmt.Sprint(now), fmt.Sprint(now+3600)

	for name, tc := range map[string]struct{ header, claims string }{
		"Control":          {header, claims(iat, exp)},
		"Whitespace":       {strings.Replace(header, ",", " ,\n ", -1), strings.Replace(claims(iat, exp), ":", " : ", -1)},
		"FractionalExp":    {header, claims(iat, exp+".5")},
		"UnknownNonCritic": {strings.Replace(header, "{", `{"x-extra":1,`, 1), claims(iat, exp)},
	} {
		t.Run("OK/"+name, func(t *testing.T) {
			sub, err := s.Verify(signRaw(key, tc.header, tc.claims))
			if err != nil || sub.UserID != testUserID || sub.Epoch != 3 || sub.TokenID != "tok-1" {
				t.Errorf("got %+v, %v, want %q, nil", sub, err, testUserID)
			}
		})
	}

	crit := func(v string) string { return strings.Replace(header, "{", `{"crit":`+v+`,"x-ext":true,`, 1) }
	for name, tc := range map[string]struct{ header, claims string }{
		"CritUnknown":       {crit(`["x-ext"]`), claims(iat, exp)},
		"CritEmpty":         {crit(`[]`), claims(iat, exp)},
		"CritRegistered":    {crit(`["exp"]`), claims(iat, exp)},
		"CritNotList":       {crit(`"x-ext"`), claims(iat, exp)},
		"CritNull":          {crit(`null`), claims(iat, exp)},
		"CritB64":           {strings.Replace(header, "{", `{"b64":false,"crit":["b64"],`, 1), claims(iat, exp)},
		"ExpString":         {header, claims(iat, `"`+exp+`"`)},
		"ExpFarString":      {header, claims(iat, `"99999999999"`)},
		"IatString":         {header, claims(`"`+iat+`"`, exp)},
		"NbfString":         {header, strings.Replace(claims(iat, exp), "{", `{"nbf":"`+iat+`",`, 1)},
		"ExpNull":           {header, claims(iat, `null`)},
		"ExpBool":           {header, claims(iat, `true`)},
		"ExpObject":         {header, claims(iat, `{}`)},
		"ExpTwice":          {header, strings.Replace(claims(iat, exp), "{", `{"exp":1,`, 1)},
		"ExpTwiceOtherCase": {header, strings.Replace(claims(iat, exp), "{", `{"EXP":1,`, 1)},
		"ExpOtherCase":      {header, strings.Replace(claims(iat, exp), `"exp"`, `"eXp"`, 1)},
		"ExpStringUpper":    {header, strings.Replace(claims(iat, exp), `"exp":`+exp, `"EXP":"99999999999"`, 1)},
		"SubLongS":          {header, strings.Replace(claims(iat, exp), `"sub"`, `"\u017fub"`, 1)},
		"CritOtherCase":     {strings.Replace(header, "{", `{"CRIT":["x"],`, 1), claims(iat, exp)},
		"SubTwice":          {header, strings.Replace(claims(iat, exp), "{", `{"sub":"usr_01HZY3V4Q8J6XK2M5N7P9R0AAA",`, 1)},
		"KidTwice":          {strings.Replace(header, "{", `{"kid":"other",`, 1), claims(iat, exp)},
		"AlgTwice":          {strings.Replace(header, "{", `{"alg":"none",`, 1), claims(iat, exp)},
		"ClaimsNotObject":   {header, `["sub"]`},
		"ClaimsTrailing":    {header, claims(iat, exp) + `{}`},
		"HeaderTrailing":    {header + ` 1`, claims(iat, exp)},
		"HeaderNotObject":   {`"EdDSA"`, claims(iat, exp)},
		"ClaimsNotJSON":     {header, `{"sub":`},
		"ClaimsEmptyString": {header, ``},
		// Tokens issued before sessions could be revoked carry no sv (and
		// no jti): they are refused, and sv must be a whole number.
		"SvMissing":    {header, strings.Replace(claims(iat, exp), `,"sv":3`, ``, 1)},
		"SvString":     {header, strings.Replace(claims(iat, exp), `"sv":3`, `"sv":"3"`, 1)},
		"SvNull":       {header, strings.Replace(claims(iat, exp), `"sv":3`, `"sv":null`, 1)},
		"SvNegative":   {header, strings.Replace(claims(iat, exp), `"sv":3`, `"sv":-1`, 1)},
		"SvFraction":   {header, strings.Replace(claims(iat, exp), `"sv":3`, `"sv":3.5`, 1)},
		"SvOtherCase":  {header, strings.Replace(claims(iat, exp), `"sv":3`, `"SV":3`, 1)},
		"SvTwice":      {header, strings.Replace(claims(iat, exp), "{", `{"sv":4,`, 1)},
		"JtiMissing":   {header, strings.Replace(claims(iat, exp), `"jti":"tok-1",`, ``, 1)},
		"JtiMalformed": {header, strings.Replace(claims(iat, exp), `"jti":"tok-1"`, `"jti":"a b"`, 1)},
	} {
		t.Run("Refused/"+name, func(t *testing.T) {
			wantUnauthorized(t, s, signRaw(key, tc.header, tc.claims))
		})
	}

	t.Run("Refused/PaddedSegment", func(t *testing.T) {
		parts := splitToken(t, signRaw(key, header, claims(iat, exp)))
		wantUnauthorized(t, s, parts[0]+"=."+parts[1]+"."+parts[2])
	})
	t.Run("Refused/TooLong", func(t *testing.T) {
		long := strings.Replace(claims(iat, exp), "{", `{"pad":"`+strings.Repeat("a", maxTokenLength)+`",`, 1)
		wantUnauthorized(t, s, signRaw(key, header, long))
	})
}

// FuzzSessions_VerifyContent signs whatever header and claims the fuzzer
// makes with the right key, so only their content decides: Verify must
// fail only as Unauthorized, and what it accepts holds no crit header, only
// numbers in exp, nbf and iat, no member twice, and this key's kid.
func FuzzSessions_VerifyContent(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	s := newTestSessions(f, key, "", "", 0)
	kid := Thumbprint(key.Public().(ed25519.PublicKey))
	header := fmt.Sprintf(`{"alg":"EdDSA","typ":"JWT","kid":%q}`, kid)
	now := time.Now().Unix()
	claims := fmt.Sprintf(`{"iss":%q,"aud":[%q],"sub":%q,"iat":%d,"exp":%d,"jti":"t","sv":0}`, DefaultIssuer, DefaultAudience, testUserID, now, now+3600)
	f.Add(header, claims)
	f.Add(strings.Replace(header, "{", `{"crit":["x"],"x":1,`, 1), claims)
	f.Add(strings.Replace(header, "{", `{"crit":[],`, 1), claims)
	f.Add(header, strings.Replace(claims, fmt.Sprint(now+3600), fmt.Sprintf(`"%d"`, now+3600), 1))
	f.Add(header, strings.Replace(claims, "{", `{"nbf":"0",`, 1))
	f.Add(header, strings.Replace(claims, "{", `{"sub":"x",`, 1))
	f.Add(`{"alg":"none"}`, claims)
	f.Add(header, strings.Replace(claims, `"sv":0`, `"sv":"0"`, 1))
	f.Add(header, strings.Replace(claims, `"sv":0`, `"sv":1e3`, 1))
	f.Add(header, strings.Replace(claims, `"sv":0`, `"SV":0`, 1))
	f.Add(header, strings.Replace(claims, `,"jti":"t"`, ``, 1))
	f.Fuzz(func(t *testing.T, header, claims string) {
		sub, err := s.Verify(signRaw(key, header, claims))
		if err != nil {
			if got := domain.KindOf(err); got != domain.Unauthorized {
				t.Fatalf("error kind: got %v (%v), want %v", got, err, domain.Unauthorized)
			}
			return
		}
		if sub.UserID == "" {
			t.Fatal("accepted with an empty subject")
		}
		h, c := decodeStrict(t, header), decodeStrict(t, claims)
		if _, ok := h["crit"]; ok {
			t.Fatalf("accepted header %s with crit", header)
		}
		if h["kid"] != kid {
			t.Fatalf("accepted header %s: kid is not %q", header, kid)
		}
		for member, v := range c {
			for _, name := range []string{"exp", "nbf", "iat", "sv"} {
				if !strings.EqualFold(member, name) {
					continue
				}
				if member != name {
					t.Fatalf("accepted claims %s: %q read as %s", claims, member, name)
				}
				if _, isNumber := v.(json.Number); !isNumber {
					t.Fatalf("accepted claims %s: %s is %T, want a number", claims, name, v)
				}
			}
		}
		if _, ok := c["exp"]; !ok {
			t.Fatalf("accepted claims %s without exp", claims)
		}
		if n, ok := c["sv"].(json.Number); !ok || n.String() != fmt.Sprint(sub.Epoch) {
			t.Fatalf("accepted claims %s: sv %v, session epoch %d, want the same whole number", claims, c["sv"], sub.Epoch)
		}
		if c["jti"] != sub.TokenID || !domain.ValidTokenID(sub.TokenID) {
			t.Fatalf("accepted claims %s: jti %v, token id %q", claims, c["jti"], sub.TokenID)
		}
	})
}

// decodeStrict decodes an accepted segment: one JSON object, numbers kept
// as json.Number; and it checks no member was named twice by comparing
// the member count with a token walk.
func decodeStrict(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("accepted %q, which is not a JSON object: %v", s, err)
	}
	members, err := segmentMembers(base64.RawURLEncoding.EncodeToString([]byte(s)))
	if err != nil || len(members) != len(m) {
		t.Fatalf("accepted %q: members %v, %v, want %d distinct", s, len(members), err, len(m))
	}
	return m
}
