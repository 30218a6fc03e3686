package domain_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

const invitationID = "inv_01JH6Z3Q8X4N6V2R9T5M7K3B1D"

// fixedToken is a token of aggregate whose random part is n repeated.
func fixedToken(t testing.TB, aggregate string, n byte) domain.Token {
	t.Helper()
	tok, err := domain.NewToken(aggregate, bytes.NewReader(bytes.Repeat([]byte{n}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signupSampleEvents holds one event of every sign-up type, with every
// field set: the frozen samples of testdata/events/v1.
func signupSampleEvents() []domain.Event {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	binding := domain.Hash{0: 0x12, 31: 0x34}
	return []domain.Event{
		{ID: "01JH6Z3Q8X4N6V2R9T5M7K3B3A", Type: domain.TypeVerificationRequested, Schema: 1, Aggregate: alice,
			Version: 1, Time: at, Actor: alice,
			Data: domain.VerificationRequested{TokenHash: domain.Hash{0: 0xab, 31: 0x01}, ExpiresAt: at.Add(24 * time.Hour)}},
		{ID: "01JH6Z3Q8X4N6V2R9T5M7K3B3B", Type: domain.TypeVerificationCompleted, Schema: 1, Aggregate: alice,
			Version: 2, Time: at.Add(time.Hour), Actor: alice, Prev: domain.Hash{0: 0xac, 31: 0x02},
			Data: domain.VerificationCompleted{}},
		{ID: "01JH6Z3Q8X4N6V2R9T5M7K3B3C", Type: domain.TypeInvitationIssued, Schema: 1, Aggregate: invitationID,
			Version: 1, Time: at, Actor: "admin:root",
			Data: domain.InvitationIssued{TokenHash: domain.Hash{0: 0xad, 31: 0x03}, EmailBinding: &binding,
				ExpiresAt: at.Add(7 * 24 * time.Hour)}},
		{ID: "01JH6Z3Q8X4N6V2R9T5M7K3B3D", Type: domain.TypeInvitationUsed, Schema: 1, Aggregate: invitationID,
			Version: 2, Time: at.Add(2 * time.Hour), Actor: alice, Prev: domain.Hash{0: 0xae, 31: 0x04},
			Data: domain.InvitationUsed{UserID: alice}},
	}
}

// signupEventChecks are the checks of the frozen sign-up samples, run by
// TestVersion1Events.
func signupEventChecks() map[string]func(t *testing.T, e domain.Event) {
	return map[string]func(t *testing.T, e domain.Event){
		"verification.requested": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B3A", "verification.requested", alice, 1, "2026-12-01T10:00:00Z", alice)
			d, ok := e.Data.(domain.VerificationRequested)
			if !ok {
				t.Fatalf("Data: got %T, want domain.VerificationRequested", e.Data)
			}
			checkField(t, "TokenHash", hex.EncodeToString(d.TokenHash[:]), "ab"+strings.Repeat("0", 60)+"01")
			checkField(t, "ExpiresAt", d.ExpiresAt.UTC().Format(time.RFC3339Nano), "2026-12-02T10:00:00Z")
		},
		"verification.completed": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B3B", "verification.completed", alice, 2, "2026-12-01T11:00:00Z", alice)
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "ac"+strings.Repeat("0", 60)+"02")
			if _, ok := e.Data.(domain.VerificationCompleted); !ok {
				t.Fatalf("Data: got %T, want domain.VerificationCompleted", e.Data)
			}
		},
		"invitation.issued": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B3C", "invitation.issued", invitationID, 1, "2026-12-01T10:00:00Z", "admin:root")
			d, ok := e.Data.(domain.InvitationIssued)
			if !ok {
				t.Fatalf("Data: got %T, want domain.InvitationIssued", e.Data)
			}
			checkField(t, "TokenHash", hex.EncodeToString(d.TokenHash[:]), "ad"+strings.Repeat("0", 60)+"03")
			if d.EmailBinding == nil {
				t.Fatal("EmailBinding: got nil, want the binding")
			}
			checkField(t, "EmailBinding", hex.EncodeToString(d.EmailBinding[:]), "12"+strings.Repeat("0", 60)+"34")
			checkField(t, "ExpiresAt", d.ExpiresAt.UTC().Format(time.RFC3339Nano), "2026-12-08T10:00:00Z")
		},
		"invitation.used": func(t *testing.T, e domain.Event) {
			checkEnvelope(t, e, "01JH6Z3Q8X4N6V2R9T5M7K3B3D", "invitation.used", invitationID, 2, "2026-12-01T12:00:00Z", alice)
			checkField(t, "Prev", hex.EncodeToString(e.Prev[:]), "ae"+strings.Repeat("0", 60)+"04")
			d, ok := e.Data.(domain.InvitationUsed)
			if !ok {
				t.Fatalf("Data: got %T, want domain.InvitationUsed", e.Data)
			}
			checkField(t, "UserID", d.UserID, alice)
		},
	}
}

func TestToken_Parse(t *testing.T) {
	t.Parallel()
	tok := fixedToken(t, alice, 7)
	got, err := domain.ParseToken(tok.Reveal())
	if err != nil || got.Reveal() != tok.Reveal() || got.Hash() != tok.Hash() {
		t.Fatalf("ParseToken(Reveal()): got %v, %v, want the token back", got, err)
	}
	if s := tok.String(); strings.Contains(s, tok.Reveal()[len(alice)+1:]) {
		t.Errorf("String: got %q, want the secret part redacted", s)
	}
	inv := fixedToken(t, invitationID, 8)
	if _, err := domain.ParseToken(inv.Reveal()); err != nil {
		t.Errorf("ParseToken(invitation token): got %v, want nil", err)
	}
	secret := tok.Reveal()[len(alice)+1:]
	for _, bad := range []string{"", alice, alice + ".", alice + "." + secret[1:], alice + "." + secret + "A",
		"usr_x." + secret, "ak_01JH6Z3Q8X4N6V2R9T5M7K3B1C." + secret, alice + "." + strings.Repeat("/", 43),
		alice + "." + secret[:42] + "=", " " + tok.Reveal(), tok.Reveal() + "\n", alice + "." + secret[:42] + "B"} {
		if _, err := domain.ParseToken(bad); domain.KindOf(err) != domain.Invalid {
			t.Errorf("ParseToken(%q): got %v, want Invalid", bad, err)
		}
	}
}

// verificationGiven folds events into a Verification.
func verificationGiven(t *testing.T, events []domain.Event) domain.Verification {
	t.Helper()
	var v domain.Verification
	for _, e := range events {
		if err := v.Apply(e); err != nil {
			t.Fatalf("given: %v", err)
		}
	}
	return v
}

func TestVerification(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	first, second := fixedToken(t, alice, 1), fixedToken(t, alice, 2)
	var none domain.Verification
	requested, err := none.Request(alice, first, at)
	if err != nil {
		t.Fatal(err)
	}
	pending := verificationGiven(t, requested)
	if !pending.Pending || !pending.ExpiresAt.Equal(at.Add(domain.VerificationTTL)) {
		t.Fatalf("after request: got %+v, want pending until %v", pending, at.Add(domain.VerificationTTL))
	}
	t.Run("Complete", func(t *testing.T) {
		t.Parallel()
		v := pending
		events, err := v.Complete(first, at.Add(time.Hour))
		if err != nil || len(events) != 1 || events[0].Type != domain.TypeVerificationCompleted || events[0].Version != 2 {
			t.Fatalf("got %v, %v, want one verification.completed at version 2", events, err)
		}
		done := verificationGiven(t, append(append([]domain.Event{}, requested...), events...))
		if done.Pending {
			t.Fatal("after completion: still pending")
		}
		// Single use: the same token, or any, does nothing more.
		if _, err := done.Complete(first, at.Add(time.Hour)); !errors.Is(err, domain.ErrVerificationInvalid) {
			t.Errorf("second use: got %v, want ErrVerificationInvalid", err)
		}
		if _, err := done.Request(alice, second, at.Add(2*time.Hour)); !errors.Is(err, domain.ErrAlreadyVerified) {
			t.Errorf("new link after completion: got %v, want ErrAlreadyVerified", err)
		}
	})
	refusals := []struct {
		name  string
		token domain.Token
		at    time.Time
	}{
		{"ErrWrongToken", second, at.Add(time.Hour)},
		{"ErrOtherUser", fixedToken(t, bob, 1), at.Add(time.Hour)},
		{"ErrExpired", first, at.Add(domain.VerificationTTL)},
		{"ErrZeroToken", domain.Token{Aggregate: alice}, at},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := pending
			if events, err := v.Complete(tc.token, tc.at); !errors.Is(err, domain.ErrVerificationInvalid) || events != nil {
				t.Errorf("got %v, %v, want ErrVerificationInvalid", events, err)
			}
		})
	}
	t.Run("Resend", func(t *testing.T) {
		t.Parallel()
		v := pending
		if _, err := v.Request(alice, second, at.Add(time.Second)); !errors.Is(err, domain.ErrResendTooSoon) {
			t.Fatalf("resend at once: got %v, want ErrResendTooSoon", err)
		}
		events, err := v.Request(alice, second, at.Add(domain.ResendInterval))
		if err != nil {
			t.Fatal(err)
		}
		v = verificationGiven(t, append(append([]domain.Event{}, requested...), events...))
		if _, err := v.Complete(first, at.Add(2*time.Minute)); !errors.Is(err, domain.ErrVerificationInvalid) {
			t.Errorf("old token after resend: got %v, want ErrVerificationInvalid", err)
		}
		if _, err := v.Complete(second, at.Add(2*time.Minute)); err != nil {
			t.Errorf("new token after resend: got %v, want nil", err)
		}
	})
}

func TestInvitation(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tok := fixedToken(t, invitationID, 3)
	issue := func(t *testing.T, email string) domain.Invitation {
		t.Helper()
		var i domain.Invitation
		events, err := i.Issue(domain.IssueInvitation{Token: tok, Email: email, ExpiresAt: at.Add(time.Hour), Actor: "admin:root"}, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := i.Apply(events[0]); err != nil {
			t.Fatal(err)
		}
		return i
	}
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		i := issue(t, "")
		events, err := i.Use(tok, "carol@example.com", alice, at.Add(time.Minute))
		if err != nil || len(events) != 1 || events[0].Data != (domain.InvitationUsed{UserID: alice}) {
			t.Fatalf("got %v, %v, want invitation.used by alice", events, err)
		}
		if err := i.Apply(events[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := i.Use(tok, "dave@example.com", bob, at.Add(time.Minute)); !errors.Is(err, domain.ErrInvitationInvalid) {
			t.Errorf("reuse: got %v, want ErrInvitationInvalid", err)
		}
	})
	t.Run("BoundToEmail", func(t *testing.T) {
		t.Parallel()
		i := issue(t, "Carol@Example.com")
		if _, err := i.Use(tok, "mallory@example.com", alice, at); !errors.Is(err, domain.ErrInvitationInvalid) {
			t.Errorf("another address: got %v, want ErrInvitationInvalid", err)
		}
		if _, err := i.Use(tok, "carol@example.com", alice, at); err != nil {
			t.Errorf("the invited address: got %v, want nil", err)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		i := issue(t, "")
		for name, use := range map[string]func() error{
			"ErrExpired":    func() error { _, err := i.Use(tok, "c@example.com", alice, at.Add(time.Hour)); return err },
			"ErrWrongToken": func() error { _, err := i.Use(fixedToken(t, invitationID, 4), "c@example.com", alice, at); return err },
			"ErrUnknown": func() error {
				var none domain.Invitation
				_, err := none.Use(tok, "c@example.com", alice, at)
				return err
			},
		} {
			if err := use(); !errors.Is(err, domain.ErrInvitationInvalid) || domain.KindOf(err) != domain.Forbidden {
				t.Errorf("%s: got %v, want ErrInvitationInvalid (Forbidden)", name, err)
			}
		}
	})
	t.Run("IssueInvalid", func(t *testing.T) {
		t.Parallel()
		for name, cmd := range map[string]domain.IssueInvitation{
			"ErrPast":     {Token: tok, ExpiresAt: at},
			"ErrTooLong":  {Token: tok, ExpiresAt: at.Add(domain.MaxInvitationTTL + time.Second)},
			"ErrBadEmail": {Token: tok, Email: "not an address", ExpiresAt: at.Add(time.Hour)},
			"ErrBadID":    {Token: fixedToken(t, alice, 1), ExpiresAt: at.Add(time.Hour)},
		} {
			var i domain.Invitation
			if _, err := i.Issue(cmd, at); domain.KindOf(err) != domain.Invalid {
				t.Errorf("%s: got %v, want Invalid", name, err)
			}
		}
	})
	t.Run("NoAddressInLog", func(t *testing.T) {
		t.Parallel()
		var i domain.Invitation
		events, err := i.Issue(domain.IssueInvitation{Token: tok, Email: "carol@example.com", ExpiresAt: at.Add(time.Hour)}, at)
		if err != nil {
			t.Fatal(err)
		}
		events[0].ID = "01JH6Z3Q8X4N6V2R9T5M7K3B3E"
		b, err := domain.EncodeEvent(events[0])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("carol")) || bytes.Contains(b, []byte(tok.Reveal()[len(invitationID)+1:])) {
			t.Errorf("invitation.issued %s: got the address or the token in the log, want neither", b)
		}
	})
}

func FuzzParseToken(f *testing.F) {
	f.Add(fixedToken(f, alice, 9).Reveal())
	f.Add(fixedToken(f, invitationID, 9).Reveal())
	f.Add(alice + ".")
	f.Add("inv_.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := domain.ParseToken(s)
		if err != nil {
			if domain.KindOf(err) != domain.Invalid || !tok.IsZero() {
				t.Fatalf("got %v (kind %v), %v, want Invalid and a zero token", err, domain.KindOf(err), tok)
			}
			return
		}
		if tok.Reveal() != s {
			t.Fatalf("Reveal: got %q, want the input %q back: a token is never normalised", tok.Reveal(), s)
		}
		if again, err := domain.ParseToken(tok.Reveal()); err != nil || again.Hash() != tok.Hash() {
			t.Fatalf("round trip: got %v, %v", again, err)
		}
	})
}
