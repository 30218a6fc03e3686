package ledger

import (
	"context"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// CreateInvitation issues a single-use invitation to register, on an
// admin's behalf. The token is returned once; the log keeps its hash (and,
// for an invitation bound to an address, a hash of token and address).
// Errors: Invalid (email, expiry), Unavailable.
type CreateInvitation struct {
	Actor string // the admin, recorded in the event
	// Email, if set, is the one address the invitation admits.
	Email string
	// ExpiresIn is how long the invitation works (0:
	// domain.DefaultInvitationTTL; at most domain.MaxInvitationTTL).
	ExpiresIn time.Duration
	// Request is the admin's signed request, kept in the event (nil for an
	// admin acting with a session).
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (CreateInvitation) CommandName() string { return nameCreateInvitation }

// LogValue implements slog.LogValuer, leaving the address out.
func (c CreateInvitation) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()), slog.String("actor", c.Actor))
}

// Invitation is an issued invitation with its token, which only its
// issuer ever sees.
type Invitation struct {
	ID        string
	Token     domain.Token
	ExpiresAt time.Time
}

// CreateInvitation runs cmd. Errors: see CreateInvitation (the type).
func (s *Service) CreateInvitation(ctx context.Context, cmd CreateInvitation) (_ Invitation, err error) {
	defer s.observed(cmd, time.Now(), &err)
	if cmd.ExpiresIn == 0 {
		cmd.ExpiresIn = domain.DefaultInvitationTTL
	}
	token, err := domain.NewToken(s.newID(domain.InvitationIDPrefix), s.random)
	if err != nil {
		return Invitation{}, err
	}
	now := s.now()
	issue := domain.IssueInvitation{Token: token, Email: cmd.Email, ExpiresAt: now.Add(cmd.ExpiresIn), Actor: cmd.Actor}
	err = s.update(ctx, domain.CategoryInvitation, token.Aggregate, func() ([]domain.Event, uint64, error) {
		inv, seq := s.invitations.Get(token.Aggregate)
		events, err := inv.Issue(issue, now)
		return withRequest(events, cmd.Request), seq, err
	})
	if err != nil {
		return Invitation{}, err
	}
	return Invitation{ID: token.Aggregate, Token: token, ExpiresAt: issue.ExpiresAt.UTC()}, nil
}
