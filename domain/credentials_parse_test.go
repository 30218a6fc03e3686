package domain_test

import (
	"crypto/sha256"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// refAPIKeyID is ParseAPIKeyID the slow way: the form check, then the
// ULID decoded as a base32 number with math/big.
func refAPIKeyID(s string) ([16]byte, bool) {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var id [16]byte
	body, ok := strings.CutPrefix(s, domain.APIKeyPrefix)
	if !ok || len(body) != 26 || body[0] > '7' {
		return id, false
	}
	n := new(big.Int)
	for i := 0; i < len(body); i++ {
		v := strings.IndexByte(alphabet, body[i])
		if v < 0 {
			return id, false
		}
		n.Lsh(n, 5).Or(n, big.NewInt(int64(v)))
	}
	n.FillBytes(id[:])
	return id, true
}

func TestParseAPIKeyID(t *testing.T) {
	valid := "ak_01ARZ3NDEKTSV4RRFFQ69G5FAV"
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"OK", valid, true},
		{"Smallest", "ak_00000000000000000000000000", true},
		{"Largest", "ak_7ZZZZZZZZZZZZZZZZZZZZZZZZZ", true},
		{"PastLargest", "ak_80000000000000000000000000", false},
		{"LowerCase", "ak_01arz3ndektsv4rrffq69g5fav", false},
		{"LetterI", "ak_01ARZ3NDEKTSV4RRFFQ69G5FAI", false},
		{"LetterL", "ak_01ARZ3NDEKTSV4RRFFQ69G5FAL", false},
		{"LetterO", "ak_01ARZ3NDEKTSV4RRFFQ69G5FAO", false},
		{"LetterU", "ak_01ARZ3NDEKTSV4RRFFQ69G5FAU", false},
		{"Short", valid[:len(valid)-1], false},
		{"Long", valid + "0", false},
		{"NoPrefix", "01ARZ3NDEKTSV4RRFFQ69G5FAVxxx", false},
		{"UserID", "usr_01ARZ3NDEKTSV4RRFFQ69G5FAV", false},
		{"NonASCII", "ak_01ARZ3NDEKTSV4RRFFQ69G5F\u00c4", false},
		{"Empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := domain.ParseAPIKeyID(tc.in)
			want, wantOK := refAPIKeyID(tc.in)
			if ok != tc.ok || wantOK != tc.ok || id != want {
				t.Fatalf("ParseAPIKeyID(%q) = %x, %v; want %x, %v", tc.in, id, ok, want, tc.ok)
			}
			if domain.ValidAPIKey(tc.in) != tc.ok {
				t.Fatalf("ValidAPIKey(%q) = %v, want %v", tc.in, !tc.ok, tc.ok)
			}
		})
	}
	t.Run("Random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
		for range 10000 {
			b := []byte("ak_")
			b = append(b, "01234567"[rng.IntN(8)])
			for range 25 {
				b = append(b, alphabet[rng.IntN(len(alphabet))])
			}
			id, ok := domain.ParseAPIKeyID(string(b))
			want, _ := refAPIKeyID(string(b))
			if !ok || id != want {
				t.Fatalf("ParseAPIKeyID(%q) = %x, %v; want %x, true", b, id, ok, want)
			}
		}
	})
}

func FuzzParseAPIKeyID(f *testing.F) {
	f.Add("ak_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	f.Add("ak_7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("ak_8ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Add("ak_01arz3ndektsv4rrffq69g5fav")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		id, ok := domain.ParseAPIKeyID(in)
		want, wantOK := refAPIKeyID(in)
		if ok != wantOK || id != want {
			t.Fatalf("ParseAPIKeyID(%q) = %x, %v; want %x, %v", in, id, ok, want, wantOK)
		}
	})
}

func TestParseSecretHash(t *testing.T) {
	for _, v := range secretVectors {
		s, err := domain.ParseSecret(v.want)
		if err != nil {
			t.Fatal(err)
		}
		h, err := domain.ParseSecretHash(v.want)
		if err != nil || h != s.Hash() || h != sha256.Sum256([]byte(v.want)) {
			t.Fatalf("ParseSecretHash(%q) = %x, %v; want %x, nil", v.want, h, err, s.Hash())
		}
		// Every single-character change breaks the format or the checksum.
		for i := range len(v.want) {
			b := []byte(v.want)
			b[i] ^= 1
			if h, err := domain.ParseSecretHash(string(b)); !errors.Is(err, domain.ErrBadCredentials) || h != (domain.Hash{}) {
				t.Fatalf("ParseSecretHash(%q) = %x, %v; want zero, %v", b, h, err, domain.ErrBadCredentials)
			}
		}
	}
}

// TestValidationParsers_NoAllocations: the parsers on the validation hot
// path allocate nothing.
func TestValidationParsers_NoAllocations(t *testing.T) {
	secret, key := secretVectors[1].want, "ak_01ARZ3NDEKTSV4RRFFQ69G5FAV"
	if n := testing.AllocsPerRun(100, func() {
		if _, err := domain.ParseSecretHash(secret); err != nil {
			t.Fatal(err)
		}
		if _, ok := domain.ParseAPIKeyID(key); !ok {
			t.Fatal("key refused")
		}
		if _, ok := domain.HashSecretForm(secret); !ok || !domain.ValidSecret(secret) {
			t.Fatal("secret refused")
		}
	}); n != 0 {
		t.Fatalf("got %v allocations a call, want 0", n)
	}
}
