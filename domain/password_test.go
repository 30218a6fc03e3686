package domain_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keyledger/keyledger/domain"
)

// testList is a small list of common passwords, folded, as the policy
// sees one (the real list is tested with the policy in internal/pwlist).
type testList map[string]bool

func (l testList) Contains(folded string) bool { return l[folded] }

var commonPasswords = testList{"password": true, "iloveyou": true, "qwertyuiop": true, "trustno1": true,
	"123456789": true, "monkey": true, "!@#$%^&*": true, "longestpasswordonthelist": true}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	const email = "alice.smith@example.com"
	tests := []struct {
		name string
		in   string
		want string // a part of the error message; "" for none
	}{
		{"ErrEmpty", "", "at least 15 characters"},
		{"ErrFourteen", "x7#kq!mv9s-Lp2", "at least 15 characters"},
		{"OKFifteen", "x7#kq!mv9s-Lp2w", ""},
		// 15 'é' is 30 bytes: the limit counts characters, not bytes.
		{"OKFifteenRunes", "éèêëēėęàáâäæãåā", ""},
		// 14 characters in more than 15 bytes.
		{"ErrFourteenRunes", "éèêëēėęàáâäæãå", "at least 15 characters"},
		{"OKMax", strings.Repeat("abcdefgh", 128), ""}, // a pattern, but 8 long
		{"OKMaxRunes", strings.Repeat("€uro!", 204) + "€uro", ""},
		{"ErrTooLong", strings.Repeat("abcdefgh", 128) + "x", "at most 1024 characters"},
		{"ErrTooManyRunes", strings.Repeat("€uro!", 204) + "€uro€", "at most 1024 characters"},
		{"ErrInvalidUTF8", "correct horse battery \xff", "valid UTF-8"},
		{"ErrInvalidUTF8Only", strings.Repeat("\xff", 20), "valid UTF-8"},
		// An invalid byte far past any bcrypt-style 72-byte cut, and past
		// 256: the whole password is read, nothing is truncated.
		{"ErrInvalidUTF8AtEnd", strings.Repeat("abcdefgh", 40) + "\xc3", "valid UTF-8"},

		// Found: fifteen spaces, one character repeated, the email.
		{"ErrSpaces", strings.Repeat(" ", 15), "only spaces"},
		{"ErrWhiteSpace", " \t\u00a0\u2003 \n\r\v\f\u3000\u2028    ", "only spaces"},
		{"ErrRepeatedChar", "aaaaaaaaaaaaaaa", "single character repeated"},
		{"ErrRepeatedCharCase", "aAaAaAaAaAaAaAa", "single character repeated"},
		{"ErrRepeatedCharSpaced", "a a a a a a a a", "single character repeated"},
		{"ErrRepeatedDigit", strings.Repeat("7", 40), "single character repeated"},
		{"ErrRepeatedRune", strings.Repeat("€", 15), "single character repeated"},
		{"ErrTwoChars", "aaaaaaaaaaaaaab", "too few different"},
		{"ErrTwoCharsBinary", "1001011101001101", "too few different"},
		{"ErrShortPattern", "abcabcabcabcabc", "short pattern"},
		{"ErrShortPatternFour", "ab1!ab1!ab1!ab1!", "short pattern"},
		{"ErrSequenceDigits", "123456789012345", "consecutive"},
		{"ErrSequenceDown", "zyxwvutsrqponmlk", "consecutive"},
		{"ErrSequenceLetters", "ABCDEFGHIJKLMNOP", "consecutive"},
		{"ErrEmail", email, "email address"},
		{"ErrEmailCase", "Alice.Smith@Example.COM", "email address"},
		{"ErrLocalPart", "alice.smith1234", "email address"},
		{"ErrLocalPartPadded", "!!alice.smith2024!", "email address"},
		{"ErrLocalPartRepeated", "alice.smithalice.smith", "email address"},
		{"ErrEmailSpaced", "alice.smith @ example.com", "email address"},
		{"ErrEmailSequence", email + "123456789", "email address"},

		// The list, and what an attacker's rules derive from it first.
		{"ErrListed", "longestpasswordonthelist", "commonly used"},
		{"ErrListedCase", "LongestPasswordOnTheList", "commonly used"},
		{"ErrListedSpaced", "longest password on the list", "commonly used"},
		{"ErrListedRepeated", "passwordpassword", "commonly used"},
		{"ErrListedRepeatedSpaced", "I love you I love you", "commonly used"},
		{"ErrListedTripled", "monkeymonkeymonkey", "commonly used"},
		{"ErrListedDigits", "password1234567", "commonly used"},
		{"ErrListedYearBang", "qwertyuiop2024!", "commonly used"},
		{"ErrListedListedDigits", "password123456789", "commonly used"},
		{"ErrListedTwoAffixes", "password1234!!!!!!", "commonly used"},
		{"ErrListedPrefix", "123456789password", "commonly used"},
		{"ErrListedBothSides", "2024password2024", "commonly used"},
		{"ErrListedDigitInside", "trustno1trustno1", "commonly used"},
		{"ErrListedSymbols", "iloveyou!@#$%^&*", "commonly used"},
		{"ErrListedSeqSuffix", "monkey345678901", "commonly used"},

		// Good passphrases and passwords, with spaces and any characters.
		{"OKPassphrase", "correct horse battery staple", ""},
		{"OKPassphraseEmailLike", "alice smith likes long walks", ""},
		{"OKListedInside", "my password is not password", ""},
		{"OKListedWithRandomSuffix", "password" + "8#k2!q9@7%", ""}, // ten random symbols are real strength
		{"OKListedPlusWord", "iloveyou so much, really", ""},
		{"OKRandom", "x7#kq!mv9s-Lp2w", ""},
		{"OKUnicode", "Grüße aus Köln am Rhein", ""},
		{"OKThreeChars", "abcaabbcabcacba", ""},
		{"OKLongPattern", "horse battery horse battery", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := domain.ValidatePassword(tc.in, email, commonPasswords)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if domain.KindOf(err) != domain.Invalid {
				t.Errorf("kind: got %v, want %v", domain.KindOf(err), domain.Invalid)
			}
		})
	}
}

func TestValidatePassword_NoEmail(t *testing.T) {
	t.Parallel()
	if err := domain.ValidatePassword("alice.smith@example.com", "", commonPasswords); err != nil {
		t.Fatalf("got %v, want no error without an email to compare", err)
	}
}

func TestValidatePassword_NoList(t *testing.T) {
	t.Parallel()
	err := domain.ValidatePassword("correct horse battery staple", "a@example.com", nil)
	if domain.KindOf(err) != domain.Internal {
		t.Fatalf("got %v, want an Internal error: no list fails closed", err)
	}
}

func TestFoldPassword(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Pass Word":           "password",
		" \tA\u00a0B\u3000c ": "abc",
		"ÉCOLE":               "école",
		"":                    "",
	} {
		if got := domain.FoldPassword(in); got != want {
			t.Errorf("FoldPassword(%q): got %q, want %q", in, got, want)
		}
	}
}

// refusalExamples give every refusal of the policy once: its messages are
// constants, so none can quote a password.
var refusalExamples = []string{"correct horse \xff", "short", strings.Repeat("abcdefgh", 129), strings.Repeat(" ", 15),
	"aaaaaaaaaaaaaaa", "aaaaaaaaaaaaaab", "abcabcabcabcabc", "123456789012345", "alice.smith1234", "password1234567"}

// refusals returns every message the policy may give.
func refusals(t *testing.T) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, p := range refusalExamples {
		err := domain.ValidatePassword(p, "alice.smith@example.com", commonPasswords)
		if err == nil {
			t.Fatalf("%q: got no error, want one", p)
		}
		m[err.Error()] = true
	}
	if len(m) != len(refusalExamples) {
		t.Fatalf("got %d different refusals, want %d", len(m), len(refusalExamples))
	}
	return m
}

func FuzzValidatePassword(f *testing.F) {
	f.Add("correct horse battery staple", "alice@example.com")
	f.Add("password1234567", "bob@example.com")
	f.Add("alice1234567890", "alice@example.com")
	f.Add("!!!!password!!!!password", "")
	f.Add(strings.Repeat("ab", 20), "x@example.com")
	f.Add("12345678901234567890", "a@b.c")
	f.Add("\u00a0\u00a0 \xff", "")
	var known map[string]bool
	f.Fuzz(func(t *testing.T, password, email string) {
		if known == nil {
			known = refusals(t)
		}
		err := domain.ValidatePassword(password, email, commonPasswords)
		if again := domain.ValidatePassword(password, email, commonPasswords); !errors.Is(again, err) && (again == nil) != (err == nil) {
			t.Fatalf("not deterministic: %v, then %v", err, again)
		}
		if err == nil {
			n := utf8.RuneCountInString(password)
			folded := domain.FoldPassword(password)
			switch {
			case !utf8.ValidString(password) || n < domain.MinPasswordLength || n > domain.MaxPasswordLength:
				t.Fatalf("accepted %q: length %d or not UTF-8", password, n)
			case commonPasswords.Contains(folded):
				t.Fatalf("accepted %q: on the list", password)
			case email != "" && folded == domain.FoldPassword(email):
				t.Fatalf("accepted %q: the email", password)
			}
			return
		}
		if domain.KindOf(err) != domain.Invalid {
			t.Fatalf("kind: got %v, want %v", domain.KindOf(err), domain.Invalid)
		}
		if !known[err.Error()] {
			t.Fatalf("refusal %q is none of the policy's constant messages", err)
		}
	})
}
