package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// PasswordList is a list of commonly used or breached passwords, held in
// the folded form FoldPassword gives. Implementations are safe for
// concurrent use.
type PasswordList interface {
	// Contains reports whether folded (a FoldPassword result) is on the
	// list.
	Contains(folded string) bool
}

// FoldPassword returns p lower-cased with every white-space character
// removed: the form in which a password is compared with the list of common
// passwords and with the user's email address, so that "Pass Word" and
// "password" are one value. It is never what is hashed: the password is
// hashed exactly as typed.
func FoldPassword(p string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, strings.ToLower(p))
}

// Why a password is refused, in words for the person choosing it. None
// quotes the password.
var (
	errPasswordUTF8     = Errorf(Invalid, "password must be valid UTF-8")
	errPasswordShort    = Errorf(Invalid, "password must be at least %d characters", MinPasswordLength)
	errPasswordLong     = Errorf(Invalid, "password must be at most %d characters", MaxPasswordLength)
	errPasswordSpaces   = Errorf(Invalid, "the password must not be only spaces")
	errPasswordOneChar  = Errorf(Invalid, "the password must not be a single character repeated")
	errPasswordTwoChars = Errorf(Invalid, "the password uses too few different characters")
	errPasswordPattern  = Errorf(Invalid, "the password must not repeat a short pattern")
	errPasswordSequence = Errorf(Invalid, "the password must not be a run of consecutive characters such as 12345 or abcde")
	errPasswordEmail    = Errorf(Invalid, "the password must not be your email address or the part before the @")
	errPasswordCommon   = Errorf(Invalid, "this password is on a list of commonly used passwords "+
		"(or is one of them repeated, or with digits or symbols added); choose another")
)

// Limits of the policy's pattern checks, in characters.
const (
	// shortPattern is the longest unit whose repetition is refused
	// whatever it is ("abab...", "1234 1234 ...").
	shortPattern = 4
	// maxAffix is the longest run of digits and symbols before or after a
	// common password (or the email) that the policy looks behind: a
	// longer run is not a "trivial" addition.
	maxAffix = 32
	// freeAffix is the length up to which any digits and symbols added to
	// a common password are trivial: a year, a "!", "123".
	freeAffix = 4
	// maxDerived is the longest password in which the policy looks for a
	// common one with digits and symbols added: longer ones are not what
	// an attacker's first rules produce, and the search stays cheap.
	maxDerived = 128
)

// ValidatePassword checks a new password against the policy of NIST SP
// 800-63B-4 (3.1.1.2): valid UTF-8, MinPasswordLength to MaxPasswordLength
// characters (code points, never truncated), and not guessable from what
// an online attacker tries first. No composition rules: any characters,
// spaces included, in any mix.
//
// Refused, in this order, with an error (Invalid) that says why:
//   - only white space, a single character repeated, or only two
//     different characters;
//   - a short pattern (up to 4 characters) repeated, or a run of
//     consecutive letters or digits ("abcdef...", "98765...");
//   - the email address or its local part (the part before the @),
//     or one of them repeated or with trivial digits and symbols added;
//   - a password on common (a list of common and breached passwords), or
//     one repeated, or with trivial digits and symbols added.
//
// Comparisons use FoldPassword: case and white space do not count, so
// "Password Password" is "passwordpassword". Digits and symbols added
// before or after a listed value are trivial when each added run is at
// most 4 characters, is itself on the list, is a short pattern repeated, a
// run of consecutive digits, or two such pieces ("1234!!!!"); a longer
// random run is real strength and is not refused. Added runs are looked
// for in passwords of up to 128 characters.
//
// email is the normalised address the password is for ("" skips that
// check). A nil common list refuses every password (Internal): the policy
// fails closed.
func ValidatePassword(password, email string, common PasswordList) error {
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		return errPasswordUTF8
	case n < MinPasswordLength:
		return errPasswordShort
	case n > MaxPasswordLength:
		return errPasswordLong
	}
	if common == nil {
		return Errorf(Internal, "no list of common passwords to check against")
	}
	folded := []rune(FoldPassword(password))
	switch distinct(folded) {
	case 0:
		return errPasswordSpaces
	case 1:
		return errPasswordOneChar
	case 2:
		return errPasswordTwoChars
	}
	if p := period(folded); p <= shortPattern && p < len(folded) {
		return errPasswordPattern
	}
	if consecutive(folded) {
		return errPasswordSequence
	}
	c := policyCheck{common: common}
	if email != "" {
		femail := FoldPassword(email)
		local, _, _ := strings.Cut(femail, "@")
		if c.derived(folded, func(s string) bool { return s == femail || s == local }) {
			return errPasswordEmail
		}
	}
	if c.derived(folded, common.Contains) {
		return errPasswordCommon
	}
	return nil
}

type policyCheck struct {
	common PasswordList
}

// derived reports whether r is a base value (for which base is true), a
// base value repeated, or either with trivial digits and symbols before or
// after it.
func (c policyCheck) derived(r []rune, base func(string) bool) bool {
	if repeats(r, base) {
		return true
	}
	if len(r) > maxDerived {
		return false
	}
	// Runs of non-letters at either end, as far as maxAffix reaches.
	pre := 0
	for pre < len(r) && pre < maxAffix && !unicode.IsLetter(r[pre]) {
		pre++
	}
	suf := 0
	for suf < len(r) && suf < maxAffix && !unicode.IsLetter(r[len(r)-1-suf]) {
		suf++
	}
	if pre == 0 && suf == 0 {
		return false
	}
	// Which lengths of those runs are trivial, worked out once.
	preOK := c.trivialAffixes(r[:pre], false)
	sufOK := c.trivialAffixes(r[len(r)-suf:], true)
	for i := 0; i <= pre; i++ {
		if !preOK[i] {
			continue
		}
		for j := 0; j <= suf && i+j < len(r); j++ {
			if (i > 0 || j > 0) && sufOK[j] && repeats(r[i:len(r)-j], base) {
				return true
			}
		}
	}
	return false
}

// repeats reports whether r is a base value repeated one or more times.
func repeats(r []rune, base func(string) bool) bool {
	p := period(r)
	for unit := p; unit <= len(r); unit += p {
		if len(r)%unit == 0 && base(string(r[:unit])) {
			return true
		}
	}
	return false
}

// trivialAffixes reports, for each length n from 0 to len(run), whether
// the first n characters of run (the last n if fromEnd) add next to
// nothing to a guessable password: one simple piece (see simpleAffix) or
// two.
func (c policyCheck) trivialAffixes(run []rune, fromEnd bool) []bool {
	piece := func(n int) []rune { // the affix of length n
		if fromEnd {
			return run[len(run)-n:]
		}
		return run[:n]
	}
	// simple[n]: the affix of length n is one simple piece; its outer
	// pieces are those, so each is worked out once.
	simple := make([]bool, len(run)+1)
	for n := range simple {
		simple[n] = c.simpleAffix(piece(n))
	}
	ok := make([]bool, len(run)+1)
	for n := range ok {
		ok[n] = simple[n]
		a := piece(n)
		for k := 1; k < n && !ok[n]; k++ {
			// outer piece of k characters, inner piece of n-k.
			inner := a[k:]
			if fromEnd {
				inner = a[:n-k]
			}
			ok[n] = simple[k] && c.simpleAffix(inner)
		}
	}
	return ok
}

// simpleAffix reports whether a run of digits and symbols is one guessable
// piece: at most freeAffix long, consecutive digits, a short pattern
// repeated, or on the list.
func (c policyCheck) simpleAffix(a []rune) bool {
	return len(a) <= freeAffix || consecutive(a) || period(a) <= shortPattern || c.common.Contains(string(a))
}

// distinct returns the number of different runes in r, counting no
// further than 3.
func distinct(r []rune) int {
	var seen []rune
	for _, c := range r {
		found := false
		for _, s := range seen {
			found = found || s == c
		}
		if !found {
			if seen = append(seen, c); len(seen) == 3 {
				break
			}
		}
	}
	return len(seen)
}

// period returns the length of the shortest unit that r repeats whole
// (len(r) when it repeats none; 0 for an empty r).
func period(r []rune) int {
	if len(r) == 0 {
		return 0
	}
	// Knuth-Morris-Pratt failure function: the longest proper border of r.
	var buf [maxDerived]int // no allocation for short inputs
	fail := buf[:0]
	if len(r) <= len(buf) {
		fail = buf[:len(r)]
	} else {
		fail = make([]int, len(r))
	}
	for i, k := 1, 0; i < len(r); i++ {
		for k > 0 && r[i] != r[k] {
			k = fail[k-1]
		}
		if r[i] == r[k] {
			k++
		}
		fail[i] = k
	}
	if p := len(r) - fail[len(r)-1]; len(r)%p == 0 {
		return p
	}
	return len(r)
}

// consecutive reports whether r, of at least 3 characters, is a run of
// consecutive digits or letters, going up or down ("3456789012" counts
// digits round from 9 to 0).
func consecutive(r []rune) bool {
	if len(r) < 3 {
		return false
	}
	for _, step := range []rune{1, -1} {
		ok := true
		for i := 1; i < len(r) && ok; i++ {
			ok = next(r[i-1], step) == r[i]
		}
		if ok {
			return true
		}
	}
	return false
}

// next returns the digit or letter after c in direction step (digits wrap
// round; letters a-z do not), or -1.
func next(c, step rune) rune {
	switch {
	case c >= '0' && c <= '9':
		return '0' + (c-'0'+step+10)%10
	case c >= 'a' && c <= 'z':
		if n := c + step; n >= 'a' && n <= 'z' {
			return n
		}
	}
	return -1
}
