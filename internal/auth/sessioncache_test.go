package auth

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for Sessions.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// TestSessions_VerifiedCacheHonoursExpiry: a token verified once, and so
// remembered, is refused once its exp plus the leeway has passed, exactly
// as a token never seen before; up to then it is taken from the cache.
func TestSessions_VerifiedCacheHonoursExpiry(t *testing.T) {
	t.Parallel()
	s := newTestSessions(t, newTestKey(t), "", "", time.Minute)
	issued := time.Now().Truncate(time.Second)
	c := &clock{t: issued}
	s.now = c.now
	token := mustIssue(t, s, testUserID, issued)
	first, err := s.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if s.verified.len() != 1 {
		t.Fatalf("remembers %d tokens after one verified, want 1", s.verified.len())
	}
	exp := first.ExpiresAt
	c.set(exp.Add(s.leeway - time.Nanosecond))
	if again, err := s.Verify(token); err != nil || again != first {
		t.Fatalf("just before exp+leeway: %+v, %v; want %+v", again, err, first)
	}
	c.set(exp.Add(s.leeway))
	wantUnauthorized(t, s, token)
	if s.verified.len() != 0 {
		t.Fatalf("remembers %d tokens after the only one expired, want 0", s.verified.len())
	}
	c.set(exp.Add(-time.Second)) // a clock set back does not bring it back unverified
	if _, err := s.Verify(token); err != nil {
		t.Fatalf("verified again before exp: %v", err)
	}
}

// TestSessions_VerifiedCacheOnlyTakesWhatVerified: refused tokens are not
// remembered (each is refused again, in full), and a token differing in
// one character from a remembered one is not taken for it.
func TestSessions_VerifiedCacheOnlyTakesWhatVerified(t *testing.T) {
	t.Parallel()
	key := newTestKey(t)
	s := newTestSessions(t, key, "", "", time.Minute)
	now := time.Now()
	token := mustIssue(t, s, testUserID, now)
	if _, err := s.Verify(token); err != nil {
		t.Fatal(err)
	}
	parts := splitToken(t, token)
	sig := []byte(parts[2])
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	forged := parts[0] + "." + parts[1] + "." + string(sig)
	for range 2 {
		wantUnauthorized(t, s, forged)
		wantUnauthorized(t, s, token+" ")
		wantUnauthorized(t, s, strings.TrimSuffix(token, parts[2]))
	}
	other := newTestSessions(t, newTestKey(t), "", "", time.Minute)
	for range 2 {
		wantUnauthorized(t, s, mustIssue(t, other, testUserID, now))
	}
	if n := s.verified.len(); n != 1 {
		t.Fatalf("remembers %d tokens, want only the one that verified", n)
	}
}

// TestVerifiedSessions_LeastRecentlyUsedGoes: the cache holds at most its
// bound, dropping the least recently used token first.
func TestVerifiedSessions_LeastRecentlyUsedGoes(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c := newVerifiedSessions(3)
	key := func(i int) [sha256.Size]byte { return sha256.Sum256(fmt.Appendf(nil, "token %d", i)) }
	for i := range 3 {
		c.add(key(i), Session{TokenID: fmt.Sprint(i)}, now.Add(time.Hour))
	}
	if _, ok := c.get(key(0), now); !ok { // 0 used: 1 is now the oldest
		t.Fatal("token 0 forgotten")
	}
	c.add(key(3), Session{TokenID: "3"}, now.Add(time.Hour))
	if c.len() != 3 {
		t.Fatalf("holds %d, want 3", c.len())
	}
	for i, want := range []bool{true, false, true, true} {
		if sess, ok := c.get(key(i), now); ok != want || ok && sess.TokenID != fmt.Sprint(i) {
			t.Errorf("token %d: %+v, %v; want remembered %v", i, sess, ok, want)
		}
	}
}
