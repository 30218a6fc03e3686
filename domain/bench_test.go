package domain_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// Microbenchmarks of the parsing on every validation, comparable with
// benchstat across commits.

func BenchmarkParseCredentials(b *testing.B) {
	secret, err := domain.NewSecret(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		b.Fatal(err)
	}
	const key = "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C"
	enc := base64.StdEncoding.EncodeToString
	b.Run("Headers", func(b *testing.B) {
		k, s := enc([]byte(key)), enc([]byte(secret.Reveal()))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := domain.ParseCredentials([]string{k}, []string{s}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Authorization", func(b *testing.B) {
		h := "ApiKey " + enc([]byte(key+":"+secret.Reveal()))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := domain.ParseCredentials(nil, nil, []string{h}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSecretMatches(b *testing.B) {
	secret, err := domain.NewSecret(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		b.Fatal(err)
	}
	stored := secret.Hash()
	b.ReportAllocs()
	for b.Loop() {
		if !domain.SecretMatches(stored, secret) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkValidationParsers measures what a validation parses: the
// secret to its hash and the key to its id.
func BenchmarkValidationParsers(b *testing.B) {
	secret, err := domain.NewSecret(bytes.NewReader(bytes.Repeat([]byte{0x42}, 32)))
	if err != nil {
		b.Fatal(err)
	}
	s, key := secret.Reveal(), "ak_01ARZ3NDEKTSV4RRFFQ69G5FAV"
	b.Run("ParseSecret", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := domain.ParseSecret(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseSecretHash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := domain.ParseSecretHash(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseAPIKeyID", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := domain.ParseAPIKeyID(key); !ok {
				b.Fatal("refused")
			}
		}
	})
}
