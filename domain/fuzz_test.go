package domain_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// More seeds are in testdata/fuzz/<FuzzName>.

// fieldValues turns a fuzzed value and 2 bits of mode into a header
// field's values: 0 none for "" else one, 1 exactly one, 2 the value twice,
// 3 an empty value then the value.
func fieldValues(s string, mode uint8) []string {
	switch mode & 3 {
	case 1:
		return []string{s}
	case 2:
		return []string{s, s}
	case 3:
		return []string{"", s}
	}
	if s == "" {
		return nil
	}
	return []string{s}
}

func FuzzParseCredentials(f *testing.F) {
	secret := secretVectors[1].want
	b64 := base64.StdEncoding.EncodeToString
	auth := "ApiKey " + b64([]byte(apiKey+":"+secret))
	f.Add(b64([]byte(apiKey)), b64([]byte(secret)), "", uint8(0))
	f.Add("", "", auth, uint8(0))
	f.Add(b64([]byte(apiKey)), b64([]byte(secret)), "Bearer x", uint8(0))
	f.Add("", "", "apikey "+base64.RawStdEncoding.EncodeToString([]byte(apiKey+":"+secret)), uint8(0))
	f.Add("", "", "ApiKey Og==", uint8(0))
	f.Add("!", "", "ApiKey", uint8(0))
	f.Add(b64([]byte(apiKey)), b64([]byte(secret)), auth, uint8(0))
	f.Add("", "", auth, uint8(2<<4))
	f.Add(b64([]byte(apiKey)), b64([]byte(secret)), "", uint8(2))
	f.Add(b64([]byte(apiKey)), b64([]byte(secret)), "", uint8(3<<2|1))
	f.Add("", "", "Api\u212aey "+b64([]byte(apiKey+":"+secret)), uint8(0))
	f.Fuzz(func(t *testing.T, xKey, xSecret, auth string, mode uint8) {
		keys, secrets, auths := fieldValues(xKey, mode), fieldValues(xSecret, mode>>2), fieldValues(auth, mode>>4)
		key, s, err := domain.ParseCredentials(keys, secrets, auths)
		if err != nil {
			if !errors.Is(err, domain.ErrBadCredentials) || domain.KindOf(err) != domain.Unauthorized {
				t.Fatalf("error: got %v (kind %v), want %v", err, domain.KindOf(err), domain.ErrBadCredentials)
			}
			if key != "" || !s.IsZero() {
				t.Fatalf("failure: got %q, %q, want empty results", key, s.Reveal())
			}
			return
		}
		if !domain.ValidAPIKey(key) {
			t.Fatalf("api key: got %q, want a valid one", key)
		}
		// Every field was sent at most once, and one style was used.
		if len(keys) > 1 || len(secrets) > 1 || len(auths) > 1 {
			t.Fatalf("accepted %q, %q, %q: want a field sent twice refused", keys, secrets, auths)
		}
		// What was parsed held no line break and nothing outside the
		// standard alphabet: such input is refused, never normalised.
		used := xKey + xSecret
		if scheme, _, _ := strings.Cut(strings.Trim(auth, " \t"), " "); len(auths) == 1 && strings.EqualFold(scheme, "apikey") {
			if !domain.EqualFoldASCII(scheme, "apikey") {
				t.Fatalf("accepted scheme %q: want ASCII only", scheme)
			}
			if len(keys)+len(secrets) > 0 {
				t.Fatalf("accepted %q, %q beside %q: want both styles refused", keys, secrets, auths)
			}
			used = auth
		}
		if strings.ContainsAny(used, "\r\n-_") {
			t.Fatalf("accepted %q, %q, %q: want line breaks and the URL-safe alphabet refused", xKey, xSecret, auth)
		}
		again, err := domain.ParseSecret(s.Reveal())
		if err != nil || again.Reveal() != s.Reveal() {
			t.Fatalf("ParseSecret(%q): got %q, %v, want the same secret", s.Reveal(), again.Reveal(), err)
		}
		if strings.Contains(key, ":") {
			t.Fatalf("api key: got %q, want no colon in it", key)
		}
		// The canonical forms of what was parsed parse to the same values.
		forms := [][3][]string{
			{nil, nil, {"ApiKey " + b64([]byte(key+":"+s.Reveal()))}},
			{{b64([]byte(key))}, {b64([]byte(s.Reveal()))}, nil},
		}
		for _, form := range forms {
			k2, s2, err := domain.ParseCredentials(form[0], form[1], form[2])
			if err != nil || k2 != key || s2.Reveal() != s.Reveal() {
				t.Fatalf("ParseCredentials(%q): got %q, %q, %v, want %q, %q, nil", form, k2, s2.Reveal(), err, key, s.Reveal())
			}
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	for _, v := range secretVectors {
		f.Add(v.want)
	}
	f.Add("")
	f.Add("sk_")
	f.Add(strings.Repeat("z", domain.SecretLength))
	f.Fuzz(func(t *testing.T, in string) {
		s, err := domain.ParseSecret(in)
		if h, hashErr := domain.ParseSecretHash(in); (hashErr == nil) != (err == nil) || err == nil && h != s.Hash() {
			t.Fatalf("ParseSecretHash: got %x, %v; ParseSecret: %v", h, hashErr, err)
		}
		if domain.ValidSecret(in) != (err == nil) {
			t.Fatalf("ValidSecret = %v; ParseSecret: %v", domain.ValidSecret(in), err)
		}
		// HashSecretForm checks the form only: every secret ParseSecret
		// takes has it, with the same hash; what it refuses, ParseSecret does.
		if h, ok := domain.HashSecretForm(in); err == nil && (!ok || h != s.Hash()) ||
			ok && h != sha256.Sum256([]byte(in)) || !ok && err == nil {
			t.Fatalf("HashSecretForm: got %x, %v; ParseSecret: %v", h, ok, err)
		}
		if err != nil {
			if !errors.Is(err, domain.ErrBadCredentials) || !s.IsZero() {
				t.Fatalf("got %q, %v, want zero secret and %v", s.Reveal(), err, domain.ErrBadCredentials)
			}
			return
		}
		if got := len(s.Reveal()); got != domain.SecretLength {
			t.Fatalf("length: got %v, want %v", got, domain.SecretLength)
		}
		if s.Reveal() != in {
			t.Fatalf("got %q, want the input %q", s.Reveal(), in)
		}
		again, err := domain.ParseSecret(s.Reveal())
		if err != nil || again.Reveal() != s.Reveal() {
			t.Fatalf("re-parse: got %q, %v, want %q, nil", again.Reveal(), err, s.Reveal())
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	for _, e := range append(sampleEvents(), limitsSampleEvents()...) {
		b, err := domain.EncodeEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"key.created","schema":2}`))
	f.Add([]byte(`{"type":"key.credits_added","schema":1,"data":{"add":-1}}`))
	f.Add([]byte(`{"type":"key.created","schema":3}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := domain.DecodeEvent(in)
		if err != nil {
			return
		}
		if e.Schema != domain.SchemaFor(e.Data) {
			// An older schema, upcast: the writer never writes it again.
			if e.Schema < 1 || e.Schema > domain.SchemaOf(e.Type) {
				t.Fatalf("decoded schema %d of %s, which no writer wrote", e.Schema, e.Type)
			}
			return
		}
		b, err := domain.EncodeEvent(e)
		if err != nil {
			t.Fatalf("EncodeEvent of decoded %+v: got %v, want nil", e, err)
		}
		e2, err := domain.DecodeEvent(b)
		if err != nil {
			t.Fatalf("DecodeEvent(%s): got %v, want nil", b, err)
		}
		if e2.ID != e.ID || e2.Type != e.Type || e2.Schema != e.Schema || e2.Aggregate != e.Aggregate ||
			e2.Version != e.Version || !e2.Time.Equal(e.Time) || e2.Actor != e.Actor {
			t.Fatalf("envelope: got %+v, want %+v", e2, e)
		}
		if !dataEqualInstant(e2.Data, e.Data) {
			t.Fatalf("data: got %s, want %s", showData(e2.Data), showData(e.Data))
		}
		// And the encoding is now a fixed point.
		b2, err := domain.EncodeEvent(e2)
		if err != nil || string(b2) != string(b) {
			t.Fatalf("re-encode: got %s, %v, want %s", b2, err, b)
		}
	})
}

// dataEqualInstant is dataEqual with times compared as instants only: a
// decoded expiry keeps the zone it was written with.
func dataEqualInstant(a, b domain.EventData) bool {
	return dataEqual(utcTimes(a), utcTimes(b))
}

// utcTimes returns d with its times in UTC.
func utcTimes(d domain.EventData) domain.EventData {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	switch v := d.(type) {
	case domain.KeyCreated:
		v.ExpiresAt = utc(v.ExpiresAt)
		return v
	case domain.KeySecretRegenerated:
		v.PreviousExpiresAt = utc(v.PreviousExpiresAt)
		return v
	case domain.KeyExpiryChanged:
		v.ExpiresAt = utc(v.ExpiresAt)
		return v
	}
	return d
}
