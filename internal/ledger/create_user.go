package ledger

import (
	"context"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// CreateUser registers a user on an admin's behalf, with a role (the way
// to bootstrap the first admin).
// Errors: Invalid (email, password, role), Conflict (address taken),
// Unavailable.
type CreateUser struct {
	Actor    string // the admin, recorded in the events
	Email    string
	Password string // never logged: see LogValue
	Role     domain.Role
	// Request is the admin's signed request, kept in the events (nil for
	// an admin acting with a session).
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (CreateUser) CommandName() string { return nameCreateUser }

// LogValue implements slog.LogValuer, leaving the password out.
func (c CreateUser) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()), slog.String("actor", c.Actor),
		slog.String("role", string(c.Role)))
}

// CreateUser registers the user cmd describes and returns it.
// Errors: see CreateUser (the type).
func (s *Service) CreateUser(ctx context.Context, cmd CreateUser) (_ domain.User, err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.register(ctx, cmd.Actor, cmd.Email, cmd.Password, cmd.Role, cmd.Request, Preset{}, nil)
}
