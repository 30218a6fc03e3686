package pwlist_test

import (
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/pwlist"
)

// TestValidatePassword_CommonList runs the policy with the embedded list:
// what the issue found accepted, common passwords with an attacker's first
// rules applied, and passwords people should be able to choose.
func TestValidatePassword_CommonList(t *testing.T) {
	t.Parallel()
	const email = "carol@example.com"
	tests := []struct {
		name string
		in   string
		want string // a part of the error message; "" for none
	}{
		{"ErrFifteenSpaces", strings.Repeat(" ", 15), "only spaces"},
		{"ErrRepeatedChar", "aaaaaaaaaaaaaaa", "single character repeated"},
		{"ErrEmail", email, "email address"},
		{"ErrLocalPart", "Carol Carol Carol", "email address"},
		{"ErrListedLong", "qwertyuiopasdfghjkl", "commonly used"},
		{"ErrListedRepeated", "Password Password", "commonly used"},
		{"ErrListedDigits", "Password12345678", "commonly used"},
		{"ErrListedYear", "iloveyou2024!!!", "commonly used"},
		{"ErrListedPadded", "!!!!dragon!!!!!!", "commonly used"},
		{"ErrTwoListedJoined", "trustno1123456789", "commonly used"},
		{"ErrKeyboardWalk", "1qaz2wsx3edc4rfv", "commonly used"},
		{"OKPassphrase", "correct horse battery staple", ""},
		{"OKPassphrase2", "a long and unguessable passphrase", ""},
		{"OKRandom", "x7#kq!mv9s-Lp2w", ""},
		{"OKSentence", "my cat sleeps on the warm keyboard", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := domain.ValidatePassword(tc.in, email, pwlist.Common())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// BenchmarkValidatePassword measures the whole policy check with the
// embedded list, for a typical passphrase, a refused one, and the
// costliest inputs: 128 characters (the longest searched for added digits
// and symbols) with 32 digits at both ends, so every split is looked up,
// and 1024 characters. Compare with argon2id: ~30 ms per hash.
func BenchmarkValidatePassword(b *testing.B) {
	list := pwlist.Common()
	for name, p := range map[string]string{
		"Passphrase": "correct horse battery staple",
		"Listed":     "Password12345678",
		"Worst128":   strings.Repeat("9081726354", 4)[:32] + strings.Repeat("xkcd936q", 8) + strings.Repeat("4536271809", 4)[:32],
		"Max1024":    strings.Repeat("9081726354", 4)[:32] + strings.Repeat("xkcd936q", 120) + strings.Repeat("4536271809", 4)[:32],
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				_ = domain.ValidatePassword(p, "carol@example.com", list)
			}
		})
	}
}
