package auth

import "testing"

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
