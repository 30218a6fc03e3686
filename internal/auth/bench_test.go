package auth

import (
	"testing"
	"time"
)

// BenchmarkPasswords_Hash measures one argon2id hash with the default
// parameters: the cost of a registration that the password policy's
// check (internal/pwlist BenchmarkValidatePassword) is compared with.
func BenchmarkPasswords_Hash(b *testing.B) {
	p, err := NewPasswords(DefaultArgon2)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessions_Verify measures verifying one session token: in full
// (a token not seen before, an Ed25519 verification) and again (taken
// from the verified tokens).
func BenchmarkSessions_Verify(b *testing.B) {
	s := newTestSessions(b, newTestKey(b), "", "", time.Hour)
	token := mustIssue(b, s, testUserID, time.Now())
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			s.verified = newVerifiedSessions(1)
			if _, err := s.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
}
