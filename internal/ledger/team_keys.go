package ledger

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// forCaller hands a team key to userID when their role in the team
// allows action (see domain.Team.KeyAccess), so that the key's commands
// take them for its owner and record them as the actor. A user's own key
// (or a missing one) is left as is: its commands check its owner.
// Errors: NotFound (not a member: the key is invisible to them),
// Forbidden (role), Conflict (a change while the team is disabled).
func (s *Service) forCaller(k *domain.Key, userID string, action domain.KeyAction) error {
	if !k.Exists() || k.TeamID == "" {
		return nil
	}
	t, _, _ := s.teams.Get(k.TeamID)
	if err := t.KeyAccess(userID, action, k.UserID); err != nil {
		return err
	}
	*k = k.ForMember(userID)
	return nil
}

// checkTeamCreate checks that userID may create a key for cmd's team
// (and its service account): developers and up create the team's keys,
// owners and admins those of service accounts, which must exist and be
// in force. It returns the team's key count bound's error, too.
func (s *Service) checkTeamCreate(cmd CreateKey) error {
	t, _, _ := s.teams.Get(cmd.TeamID)
	if err := t.KeyAccess(cmd.UserID, domain.KeyCreate, ""); err != nil {
		if domain.KindOf(err) == domain.NotFound {
			return domain.Errorf(domain.NotFound, "team not found")
		}
		return err
	}
	if cmd.ServiceAccount != "" {
		if err := t.CanManageMembers(cmd.UserID); err != nil {
			return domain.Errorf(domain.Forbidden, "only the team's owners and admins create keys of service accounts")
		}
		sa, ok := t.ServiceAccounts[cmd.ServiceAccount]
		switch {
		case !ok || sa.Deleted:
			return domain.Errorf(domain.NotFound, "service account not found")
		case sa.Disabled:
			return domain.Errorf(domain.Conflict, "service account is disabled")
		}
	}
	if s.maxKeys > 0 && s.keys.TeamActiveCount(cmd.TeamID) >= s.maxKeys {
		return domain.Errorf(domain.Conflict, "key limit reached: at most %d unrevoked keys per team; revoke one first", s.maxKeys)
	}
	return nil
}

// ListTeamKeys returns a page of a team's keys, newest first, for a
// member (any role), and the cursor of the next page. Errors: NotFound
// (no such team, or not a member), Invalid (limit, cursor).
func (s *Service) ListTeamKeys(userID, teamID string, limit int, cursor string) ([]domain.Key, string, error) {
	if _, err := s.Team(userID, teamID); err != nil {
		return nil, "", err
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		return nil, "", domain.Errorf(domain.Invalid, "limit must be between 1 and %d", MaxPageSize)
	}
	return s.keys.ListByTeam(teamID, limit, cursor)
}

// CreateServiceAccount adds a service account to a team on behalf of
// UserID (an owner or admin). Errors: NotFound, Forbidden, Invalid
// (name), Conflict (too many), Unavailable.
type CreateServiceAccount struct {
	UserID string
	TeamID string
	Name   string
}

// CommandName implements Command.
func (CreateServiceAccount) CommandName() string { return nameCreateServiceAccount }

// CreateServiceAccount runs cmd and returns the new account. Errors: see
// CreateServiceAccount (the type).
func (s *Service) CreateServiceAccount(ctx context.Context, cmd CreateServiceAccount) (_ domain.ServiceAccount, err error) {
	defer s.observed(cmd, time.Now(), &err)
	id := s.newID(domain.ServiceAccountIDPrefix)
	err = s.updateTeam(ctx, cmd.TeamID, func(t *domain.Team) ([]domain.Event, error) {
		return s.withNewIDs(t.CreateServiceAccount(cmd.UserID, id, cmd.Name, s.now()))
	})
	if err != nil {
		return domain.ServiceAccount{}, err
	}
	t, _, _ := s.teams.Get(cmd.TeamID)
	return t.ServiceAccounts[id], nil
}

// ChangeServiceAccount disables, enables or deletes a team's service
// account on behalf of UserID (an owner or admin). A disabled or deleted
// account's keys stop validating at once, everywhere; a deleted one's for
// good. Errors: NotFound, Forbidden, Invalid (reason), Unavailable.
type ChangeServiceAccount struct {
	UserID         string
	TeamID         string
	ServiceAccount string
	Action         domain.ServiceAccountAction
	Reason         string
}

// CommandName implements Command.
func (ChangeServiceAccount) CommandName() string { return nameChangeServiceAccount }

// ChangeServiceAccount runs cmd. Errors: see ChangeServiceAccount (the
// type).
func (s *Service) ChangeServiceAccount(ctx context.Context, cmd ChangeServiceAccount) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateTeam(ctx, cmd.TeamID, func(t *domain.Team) ([]domain.Event, error) {
		return s.withNewIDs(t.ChangeServiceAccount(cmd.UserID, cmd.ServiceAccount, cmd.Action, cmd.Reason, s.now()))
	})
}

// AdminListTeams returns every team, oldest first.
func (s *Service) AdminListTeams() []domain.Team { return s.teams.All() }

// AdminTeamMembers returns a team's members for an admin. Errors:
// NotFound, Unavailable, Internal.
func (s *Service) AdminTeamMembers(ctx context.Context, teamID string) ([]TeamMember, error) {
	t, _, ok := s.teams.Get(teamID)
	if !ok {
		return nil, domain.Errorf(domain.NotFound, "team not found")
	}
	return s.membersOf(ctx, t)
}

// AdminTransferTeam makes a user an owner of a team on an admin's
// behalf: how a team whose owners left or were erased gets one again.
// Errors: NotFound (team, or no such user, or an erased one), Invalid,
// Conflict, Unavailable.
type AdminTransferTeam struct {
	Actor   string // the admin, recorded in the event
	TeamID  string
	Owner   string // the user who becomes an owner
	Reason  string
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (AdminTransferTeam) CommandName() string { return nameAdminTransferTeam }

// AdminTransferTeam runs cmd. Errors: see AdminTransferTeam (the type).
func (s *Service) AdminTransferTeam(ctx context.Context, cmd AdminTransferTeam) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	if u, ok := s.users.ByID(cmd.Owner); !ok || u.Erased {
		return domain.Errorf(domain.NotFound, "user not found")
	}
	return s.updateTeam(ctx, cmd.TeamID, func(t *domain.Team) ([]domain.Event, error) {
		events, err := s.withNewIDs(t.Transfer(cmd.Actor, cmd.Owner, cmd.Reason, s.now()))
		return withRequest(events, cmd.Request), err
	})
}

// AdminSetTeamDisabled disables a team (none of its keys validate, on
// every node at once) or enables it again, on an admin's behalf.
// Errors: NotFound, Invalid (reason), Unavailable.
type AdminSetTeamDisabled struct {
	Actor   string
	TeamID  string
	Disable bool
	Reason  string
	Request *domain.SignedRequest
}

// CommandName implements Command.
func (AdminSetTeamDisabled) CommandName() string { return nameAdminSetTeamDisabled }

// AdminSetTeamDisabled runs cmd. Errors: see AdminSetTeamDisabled (the
// type).
func (s *Service) AdminSetTeamDisabled(ctx context.Context, cmd AdminSetTeamDisabled) (err error) {
	defer s.observed(cmd, time.Now(), &err)
	return s.updateTeam(ctx, cmd.TeamID, func(t *domain.Team) ([]domain.Event, error) {
		events, err := s.withNewIDs(t.SetDisabled(cmd.Actor, cmd.Disable, cmd.Reason, s.now()))
		return withRequest(events, cmd.Request), err
	})
}
