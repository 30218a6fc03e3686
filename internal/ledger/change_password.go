package ledger

import (
	"context"
	"crypto/rand"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// ChangePassword is a user replacing their password, confirmed with the
// current one. It records user.password_changed with the new hash sealed
// under the user's data key, which ends every earlier session of the user
// on every instance. Errors: NotFound (no such user), Invalid (the new
// password breaks the policy), Forbidden (wrong current password, or the
// user is disabled), RateLimited, Conflict (the password changed
// meanwhile, or too many races), Unavailable (auth.ErrBusy, or run it
// again), Internal.
type ChangePassword struct {
	UserID          string
	CurrentPassword string // never logged: see LogValue
	NewPassword     string // never logged: see LogValue
}

// CommandName implements Command.
func (ChangePassword) CommandName() string { return nameChangePassword }

// LogValue implements slog.LogValuer, leaving the passwords out.
func (c ChangePassword) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()), slog.String("user", c.UserID))
}

// ChangePassword checks the current password and the new one's policy,
// and records the change. Errors: see ChangePassword (the type).
func (s *Service) ChangePassword(ctx context.Context, cmd ChangePassword) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	u, ok := s.users.ByID(cmd.UserID)
	if !ok || u.Erased {
		return domain.Errorf(domain.NotFound, "user not found")
	}
	if u, err = s.reveal(ctx, u); err != nil {
		return err
	}
	if err := domain.ValidatePassword(cmd.NewPassword, u.Email, s.common); err != nil {
		return err
	}
	if err := s.confirmPassword(u, cmd.CurrentPassword, "wrong current password: the password was not changed"); err != nil {
		return err
	}
	hash, err := s.passwords.Hash(cmd.NewPassword)
	if err != nil {
		return err
	}
	key, err := s.dataKeys.Get(ctx, u.ID)
	if domain.KindOf(err) == domain.NotFound && u.Personal == "" {
		// Registered before personal data was sealed: the change seals
		// it from now on.
		key, err = s.dataKeys.Create(ctx, u.ID)
	}
	if err != nil {
		return err
	}
	// The nonce always comes from crypto/rand, never from s.random (which
	// tests fix): a nonce repeated under one key would undo GCM.
	sealed, err := domain.SealPersonal(key, u.ID, domain.TypeUserPasswordChanged, domain.SchemaOf(domain.TypeUserPasswordChanged),
		domain.Personal{Email: u.Email, PasswordHash: hash}, rand.Reader)
	if err != nil {
		return err
	}
	return s.updateUser(ctx, u.ID, func(cur *domain.User) ([]domain.Event, error) {
		if cur.Personal != u.Personal || cur.Personal == "" && cur.PasswordHash != u.PasswordHash {
			// The current password was checked against a value that
			// another change has replaced since.
			return nil, domain.Errorf(domain.Conflict, "the password changed meanwhile: try again")
		}
		return cur.ChangePassword(sealed, s.now())
	})
}
