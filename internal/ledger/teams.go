package ledger

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// Team command names, as Observe reports them. They are metric label
// values: never change one.
const (
	nameCreateTeam           = "create_team"
	nameInviteMember         = "invite_member"
	nameJoinTeam             = "join_team"
	nameChangeMemberRole     = "change_member_role"
	nameRemoveMember         = "remove_member"
	nameCreateServiceAccount = "create_service_account"
	nameChangeServiceAccount = "change_service_account"
	nameAdminTransferTeam    = "admin_transfer_team"
	nameAdminSetTeamDisabled = "admin_set_team_disabled"
)

// TeamMailer is what a Mailer also implements to mail team invitations;
// a Mailer without it (or no Mailer) leaves the token to the inviter.
type TeamMailer interface {
	// TeamInvitation sends to the address the token that joins team.
	TeamInvitation(to, team string, token domain.Token)
}

// updateTeam runs load-decide-append for one team.
func (s *Service) updateTeam(ctx context.Context, teamID string, decide func(t *domain.Team) ([]domain.Event, error)) error {
	return s.update(ctx, domain.CategoryTeam, teamID, func() ([]domain.Event, uint64, error) {
		t, seq, _ := s.teams.Get(teamID)
		events, err := decide(&t)
		return events, seq, err
	})
}

// CreateTeam makes a new team whose first owner is UserID.
// Errors: Invalid (name), Conflict (UserID is in domain.MaxTeamsPerUser
// teams already), Unavailable.
type CreateTeam struct {
	UserID string
	Name   string
}

// CommandName implements Command.
func (CreateTeam) CommandName() string { return nameCreateTeam }

// CreateTeam runs cmd and returns the team. Errors: see CreateTeam (the
// type).
func (s *Service) CreateTeam(ctx context.Context, cmd CreateTeam) (_ domain.Team, err error) {
	defer s.observed(cmd, time.Now(), &err)
	if err := s.checkTeamCount(cmd.UserID); err != nil {
		return domain.Team{}, err
	}
	id := s.newID(domain.TeamIDPrefix)
	err = s.updateTeam(ctx, id, func(t *domain.Team) ([]domain.Event, error) {
		return s.withNewIDs(t.CreateTeam(id, cmd.Name, cmd.UserID, s.now()))
	})
	if err != nil {
		return domain.Team{}, err
	}
	t, _, _ := s.teams.Get(id)
	return t, nil
}

// checkTeamCount refuses a user one more team past
// domain.MaxTeamsPerUser: a bound against floods, not a guarantee under
// concurrent commands.
func (s *Service) checkTeamCount(userID string) error {
	if n := len(s.teams.OfUser(userID)); n >= domain.MaxTeamsPerUser {
		return domain.Errorf(domain.Conflict, "team limit reached: a user is in at most %d teams; leave one first", domain.MaxTeamsPerUser)
	}
	return nil
}

// withNewIDs gives events fresh ids.
func (s *Service) withNewIDs(events []domain.Event, err error) ([]domain.Event, error) {
	for i := range events {
		events[i].ID = s.newID("")
	}
	return events, err
}

// Teams returns the teams userID is a member of, in joining order.
func (s *Service) Teams(userID string) []domain.Team { return s.teams.OfUser(userID) }

// Team returns a team userID is a member of. Errors: NotFound (missing,
// or userID not a member: the two are indistinguishable).
func (s *Service) Team(userID, teamID string) (domain.Team, error) {
	t, _, _ := s.teams.Get(teamID)
	if err := t.CanRead(userID); err != nil {
		return domain.Team{}, err
	}
	return t, nil
}

// TeamMember is a member as listed: the email comes from the user's
// sealed data ("" once they are erased); the log never holds it.
type TeamMember struct {
	domain.Member
	Email string
}

// TeamMembers returns the members of a team userID is a member of, by
// role (owners first) and email. Errors: NotFound, Unavailable, Internal.
func (s *Service) TeamMembers(ctx context.Context, userID, teamID string) ([]TeamMember, error) {
	t, err := s.Team(userID, teamID)
	if err != nil {
		return nil, err
	}
	return s.membersOf(ctx, t)
}

func (s *Service) membersOf(ctx context.Context, t domain.Team) ([]TeamMember, error) {
	out := make([]TeamMember, 0, len(t.Members))
	for _, m := range t.Members {
		tm := TeamMember{Member: m}
		if u, ok := s.users.ByID(m.UserID); ok {
			u, err := s.reveal(ctx, u)
			if err != nil {
				return nil, err
			}
			tm.Email = u.Email
		}
		out = append(out, tm)
	}
	rank := map[domain.TeamRole]int{domain.TeamOwner: 0, domain.TeamAdmin: 1, domain.TeamDeveloper: 2, domain.TeamViewer: 3}
	slices.SortFunc(out, func(a, b TeamMember) int {
		return cmp.Or(cmp.Compare(rank[a.Role], rank[b.Role]), strings.Compare(a.Email, b.Email), strings.Compare(a.UserID, b.UserID))
	})
	return out, nil
}

// InviteMember issues a single-use invitation to join a team with a
// role, on behalf of UserID (an owner or admin; only owners invite
// owners). The token is returned once, and mailed to Email when the
// service has a mailer that mails team invitations; the log keeps its
// hash, never the address. Errors: NotFound (no such team, or not a
// member), Forbidden (role), Invalid (role, email, expiry), Conflict (too
// many open invitations), Unavailable.
type InviteMember struct {
	UserID    string
	TeamID    string
	Role      domain.TeamRole
	Email     string        // optional: where to mail the token
	ExpiresIn time.Duration // 0: domain.DefaultTeamInvitationTTL
}

// CommandName implements Command.
func (InviteMember) CommandName() string { return nameInviteMember }

// LogValue implements slog.LogValuer, leaving the address out.
func (c InviteMember) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()), slog.String("user", c.UserID), slog.String("team", c.TeamID))
}

// TeamInvite is an issued team invitation with its token, which only its
// issuer (and the address it was mailed to) ever sees.
type TeamInvite struct {
	ID        string
	Role      domain.TeamRole
	Token     domain.Token
	ExpiresAt time.Time
	Mailed    bool
}

// InviteMember runs cmd. Errors: see InviteMember (the type).
func (s *Service) InviteMember(ctx context.Context, cmd InviteMember) (_ TeamInvite, err error) {
	defer s.observed(cmd, time.Now(), &err)
	if cmd.ExpiresIn == 0 {
		cmd.ExpiresIn = domain.DefaultTeamInvitationTTL
	}
	email := ""
	if cmd.Email != "" {
		if email, err = domain.NormalizeEmail(cmd.Email); err != nil {
			return TeamInvite{}, err
		}
	}
	token, err := domain.NewToken(s.newID(domain.TeamInvitationIDPrefix), s.random)
	if err != nil {
		return TeamInvite{}, err
	}
	now := s.now()
	expires := now.Add(cmd.ExpiresIn)
	var name string
	err = s.updateTeam(ctx, cmd.TeamID, func(t *domain.Team) ([]domain.Event, error) {
		name = t.Name
		return s.withNewIDs(t.Invite(cmd.UserID, token, cmd.Role, expires, now))
	})
	if err != nil {
		return TeamInvite{}, err
	}
	inv := TeamInvite{ID: token.Aggregate, Role: cmd.Role, Token: token, ExpiresAt: expires.UTC()}
	if m, ok := s.mailer.(TeamMailer); ok && email != "" {
		m.TeamInvitation(email, name, token)
		inv.Mailed = true
	}
	return inv, nil
}

// JoinTeam makes UserID a member of the team whose invitation Token is,
// with its role, using the invitation up. Errors: Invalid (malformed
// token), NotFound (no such open invitation: unknown, used, expired or a
// wrong secret alike), Conflict (already a member, or in
// domain.MaxTeamsPerUser teams), Unavailable.
type JoinTeam struct {
	UserID string
	Token  string // never logged: see LogValue
}

// CommandName implements Command.
func (JoinTeam) CommandName() string { return nameJoinTeam }

// LogValue implements slog.LogValuer, leaving the token out.
func (c JoinTeam) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()), slog.String("user", c.UserID))
}

// JoinTeam runs cmd and returns the team joined. Errors: see JoinTeam
// (the type).
func (s *Service) JoinTeam(ctx context.Context, cmd JoinTeam) (_ domain.Team, err error) {
	defer s.observed(cmd, time.Now(), &err)
	token, err := domain.ParseTeamInvitationToken(cmd.Token)
	if err != nil {
		return domain.Team{}, err
	}
	teamID := s.teams.ByInvitation(token.Aggregate)
	if teamID == "" {
		return domain.Team{}, domain.Errorf(domain.NotFound, "invitation not found, used or expired")
	}
	if err := s.checkTeamCount(cmd.UserID); err != nil {
		return domain.Team{}, err
	}
	err = s.updateTeam(ctx, teamID, func(t *domain.Team) ([]domain.Event, error) {
		return s.withNewIDs(t.Join(cmd.UserID, token, s.now()))
	})
	if err != nil {
		return domain.Team{}, err
	}
	t, _, _ := s.teams.Get(teamID)
	return t, nil
}

// ChangeMemberRole gives a member a new role on behalf of UserID.
// Errors: NotFound, Forbidden, Invalid, Conflict (the last owner),
// Unavailable.
type ChangeMemberRole struct {
	UserID string
	TeamID string
	Member string
	Role   domain.TeamRole
}

// CommandName implements Command.
func (ChangeMemberRole) CommandName() string { return nameChangeMemberRole }

// ChangeMemberRole runs cmd. Errors: see ChangeMemberRole (the type).
func (s *Service) ChangeMemberRole(ctx context.Context, cmd ChangeMemberRole) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateTeam(ctx, cmd.TeamID, func(t *domain.Team) ([]domain.Event, error) {
		return s.withNewIDs(t.ChangeRole(cmd.UserID, cmd.Member, cmd.Role, s.now()))
	})
}

// RemoveMember removes a member from a team (or UserID leaves, when
// Member is UserID). The team's keys, those the member created included,
// stay the team's and keep validating. Errors: NotFound, Forbidden,
// Conflict (the last owner), Unavailable.
type RemoveMember struct {
	UserID string
	TeamID string
	Member string
}

// CommandName implements Command.
func (RemoveMember) CommandName() string { return nameRemoveMember }

// RemoveMember runs cmd. Errors: see RemoveMember (the type).
func (s *Service) RemoveMember(ctx context.Context, cmd RemoveMember) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateTeam(ctx, cmd.TeamID, func(t *domain.Team) ([]domain.Event, error) {
		return s.withNewIDs(t.RemoveMember(cmd.UserID, cmd.Member, s.now()))
	})
}

// leaveTeams takes an erased user out of every team they are in, on
// behalf of actor (whoever erased them), keeping req in the events.
func (s *Service) leaveTeams(ctx context.Context, actor, userID string, req *domain.SignedRequest) error {
	for _, t := range s.teams.OfUser(userID) {
		err := s.updateTeam(ctx, t.ID, func(t *domain.Team) ([]domain.Event, error) {
			events, err := s.withNewIDs(t.RemoveErased(actor, userID, s.now()))
			return withRequest(events, req), err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
