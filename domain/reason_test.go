package domain_test

import (
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

func TestStanding_Decide(t *testing.T) {
	t.Parallel()
	active := domain.Standing{Exists: true, CanSign: true}
	expiring := active
	expiring.ExpiresAt = t2
	with := func(s domain.Standing, f func(*domain.Standing)) domain.Standing { f(&s); return s }
	tests := []struct {
		name       string
		standing   domain.Standing
		now        time.Time
		want       domain.Reason
		wantSecret domain.Reason // DecideSecret with the right secret
		wantSigner domain.Reason
		wantStatus domain.KeyStatus
	}{
		{"OK", active, t1, domain.ReasonOK, domain.ReasonOK, domain.ReasonOK, domain.StatusActive},
		{"OKBeforeExpiry", expiring, t2.Add(-time.Nanosecond), domain.ReasonOK, domain.ReasonOK, domain.ReasonOK, domain.StatusActive},
		{"ErrUnknownKey", domain.Standing{}, t1, domain.ReasonUnknownKey, domain.ReasonUnknownKey, domain.ReasonUnknownKey, domain.StatusActive},
		{"ErrExpiredAtExpiry", expiring, t2, domain.ReasonExpired, domain.ReasonExpired, domain.ReasonExpired, domain.StatusExpired},
		{"ErrRevoked", with(active, func(s *domain.Standing) { s.Revoked = true }), t1,
			domain.ReasonRevoked, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked},
		{"ErrRevokedWinsOverExpired", with(expiring, func(s *domain.Standing) { s.Revoked = true }), t2,
			domain.ReasonRevoked, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked},
		{"ErrUserDisabled", with(active, func(s *domain.Standing) { s.OwnerDisabled = true }), t1,
			domain.ReasonUserDisabled, domain.ReasonUserDisabled, domain.ReasonUserDisabled, domain.StatusActive},
		{"ErrExpiredWinsOverUserDisabled", with(expiring, func(s *domain.Standing) { s.OwnerDisabled = true }), t2,
			domain.ReasonExpired, domain.ReasonExpired, domain.ReasonExpired, domain.StatusExpired},
		{"ErrSignedOnly", with(active, func(s *domain.Standing) { s.SignedOnly = true }), t1,
			domain.ReasonOK, domain.ReasonSignedOnly, domain.ReasonOK, domain.StatusActive},
		{"ErrSignedOnlyRevoked", with(active, func(s *domain.Standing) { s.SignedOnly, s.Revoked = true, true }), t1,
			domain.ReasonRevoked, domain.ReasonSignedOnly, domain.ReasonRevoked, domain.StatusRevoked},
		{"ErrKeyDisabled", with(active, func(s *domain.Standing) { s.Disabled = true }), t1,
			domain.ReasonKeyDisabled, domain.ReasonKeyDisabled, domain.ReasonKeyDisabled, domain.StatusDisabled},
		{"ErrKeyDisabledWinsOverUserDisabled", with(active, func(s *domain.Standing) { s.Disabled, s.OwnerDisabled = true, true }), t1,
			domain.ReasonKeyDisabled, domain.ReasonKeyDisabled, domain.ReasonKeyDisabled, domain.StatusDisabled},
		{"ErrRevokedWinsOverDisabled", with(active, func(s *domain.Standing) { s.Disabled, s.Revoked = true, true }), t1,
			domain.ReasonRevoked, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked},
		{"ErrNoPublicKey", with(active, func(s *domain.Standing) { s.CanSign = false }), t1,
			domain.ReasonOK, domain.ReasonOK, domain.ReasonNoPublicKey, domain.StatusActive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.standing.Decide(tc.now); got != tc.want {
				t.Errorf("Decide: got %v, want %v", got, tc.want)
			}
			if got := tc.standing.DecideSecret(true, tc.now); got != tc.wantSecret {
				t.Errorf("DecideSecret: got %v, want %v", got, tc.wantSecret)
			}
			if got := tc.standing.DecideSigner(tc.now); got != tc.wantSigner {
				t.Errorf("DecideSigner: got %v, want %v", got, tc.wantSigner)
			}
			if got := tc.standing.Status(tc.now); got != tc.wantStatus {
				t.Errorf("Status: got %v, want %v", got, tc.wantStatus)
			}
			wrong := domain.ReasonWrongSecret
			if !tc.standing.Exists {
				wrong = domain.ReasonUnknownKey
			}
			if got := tc.standing.DecideSecret(false, tc.now); got != wrong {
				t.Errorf("DecideSecret with a wrong secret: got %v, want %v", got, wrong)
			}
		})
	}
}

func TestKey_Usable(t *testing.T) {
	t.Parallel()
	k := givenKey(t, keyCreated(t0, domain.KeyCreated{SecretHash: hashA, ExpiresAt: timePtr(t2)}))
	for _, tc := range []struct {
		name          string
		now           time.Time
		ownerDisabled bool
		want          domain.Reason
	}{
		{"OK", t1, false, domain.ReasonOK},
		{"ErrUserDisabled", t1, true, domain.ReasonUserDisabled},
		{"ErrExpired", t2, false, domain.ReasonExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := k.Usable(tc.now, tc.ownerDisabled); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	var missing domain.Key
	if got := missing.Usable(t1, false); got != domain.ReasonUnknownKey {
		t.Errorf("missing key: got %v, want %v", got, domain.ReasonUnknownKey)
	}
}

func TestReasons(t *testing.T) {
	t.Parallel()
	all := domain.Reasons()
	if len(all) == 0 || all[0] != domain.ReasonOK {
		t.Fatalf("got %v, want ReasonOK first", all)
	}
	seen := map[domain.Reason]bool{}
	for _, r := range all {
		if r == "" || seen[r] {
			t.Errorf("reason %q: empty or listed twice", r)
		}
		seen[r] = true
	}
	// Every reason a decision can give is listed.
	for _, r := range []domain.Reason{domain.ReasonUnknownKey, domain.ReasonWrongSecret, domain.ReasonSignedOnly,
		domain.ReasonNoPublicKey, domain.ReasonRevoked, domain.ReasonExpired, domain.ReasonUserDisabled} {
		if !seen[r] {
			t.Errorf("Reasons: %q missing", r)
		}
	}
}
