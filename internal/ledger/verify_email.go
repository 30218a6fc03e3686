package ledger

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// VerifyEmail proves an account's address with the token mailed to it:
// the account becomes usable. A token works once, within
// domain.VerificationTTL, and only while it is the account's newest.
// Errors: Invalid (domain.ErrVerificationInvalid, for every token that does
// not work), Conflict (lost too many races), Unavailable.
type VerifyEmail struct {
	Token string // never logged: see LogValue
}

// CommandName implements Command.
func (VerifyEmail) CommandName() string { return nameVerifyEmail }

// LogValue implements slog.LogValuer, leaving the token out.
func (c VerifyEmail) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()))
}

// VerifyEmail runs cmd. Errors: see VerifyEmail (the type).
func (s *Service) VerifyEmail(ctx context.Context, cmd VerifyEmail) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	token, err := domain.ParseToken(cmd.Token)
	if err != nil || !domain.ValidUserID(token.Aggregate) {
		return domain.ErrVerificationInvalid
	}
	// The verification aggregate's optimistic concurrency makes the token
	// single-use across every serve instance: of two uses, the second
	// decides again on the completed verification and is refused.
	return s.update(ctx, domain.CategoryVerification, token.Aggregate, func() ([]domain.Event, uint64, error) {
		v, seq := s.verifications.Get(token.Aggregate)
		events, err := v.Complete(token, s.now())
		return events, seq, err
	})
}

// ResendVerification mails a new verification link to an address whose
// account waits for its verification; the older links stop working. It
// answers the same for every address (registered, verified, unknown):
// only the address's owner learns anything, by mail.
// Errors: Invalid (email), Unavailable.
type ResendVerification struct {
	Email string
}

// CommandName implements Command.
func (ResendVerification) CommandName() string { return nameResendVerification }

// LogValue implements slog.LogValuer, leaving the address out.
func (c ResendVerification) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()))
}

// ResendVerification runs cmd. Errors: see ResendVerification (the type).
func (s *Service) ResendVerification(ctx context.Context, cmd ResendVerification) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	email, err := domain.NormalizeEmail(cmd.Email)
	if err != nil {
		return err
	}
	u, ok, err := s.findByEmail(ctx, email)
	if err != nil {
		return err
	}
	if !ok || !s.verifications.Pending(u.ID) {
		return nil
	}
	token, err := domain.NewToken(u.ID, s.random)
	if err != nil {
		return err
	}
	err = s.update(ctx, domain.CategoryVerification, u.ID, func() ([]domain.Event, uint64, error) {
		v, seq := s.verifications.Get(u.ID)
		events, err := v.Request(u.ID, token, s.now())
		return events, seq, err
	})
	switch {
	case errors.Is(err, domain.ErrResendTooSoon), errors.Is(err, domain.ErrAlreadyVerified):
		return nil // nothing to send: the caller learns nothing either
	case err != nil:
		return err
	}
	s.mailer.Verification(email, token)
	return nil
}
