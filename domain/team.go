package domain

import (
	"encoding/base64"
	"fmt"
	"maps"
	"strings"
	"time"
)

// A team is an aggregate (CategoryTeam, aggregate: the team id) whose
// members share keys: a key created for the team (KeyCreated.TeamID)
// belongs to the team, not to the member who made it, and each member
// acts on it as their role allows (TeamRole.Can). Service accounts are
// principals of a team that own keys but never log in.
//
// Team events never carry personal data: members are user ids, and the
// email an invitation was mailed to is never recorded.

// Team event types. They are part of the log format: never rename one.
const (
	TypeTeamCreated                = "team.created"
	TypeTeamInvitationIssued       = "team.invitation_issued"
	TypeTeamMemberJoined           = "team.member_joined"
	TypeTeamMemberRoleChanged      = "team.member_role_changed"
	TypeTeamMemberRemoved          = "team.member_removed"
	TypeTeamServiceAccountCreated  = "team.service_account_created"
	TypeTeamServiceAccountDisabled = "team.service_account_disabled"
	TypeTeamServiceAccountEnabled  = "team.service_account_enabled"
	TypeTeamServiceAccountDeleted  = "team.service_account_deleted"
	TypeTeamDisabled               = "team.disabled"
	TypeTeamEnabled                = "team.enabled"
	TypeTeamOwnershipTransferred   = "team.ownership_transferred"
)

// teamTypes are the team event types this code knows.
var teamTypes = map[string]bool{TypeTeamCreated: true, TypeTeamInvitationIssued: true, TypeTeamMemberJoined: true,
	TypeTeamMemberRoleChanged: true, TypeTeamMemberRemoved: true, TypeTeamServiceAccountCreated: true,
	TypeTeamServiceAccountDisabled: true, TypeTeamServiceAccountEnabled: true, TypeTeamServiceAccountDeleted: true,
	TypeTeamDisabled: true, TypeTeamEnabled: true, TypeTeamOwnershipTransferred: true}

// CategoryTeam is the category of team aggregates.
const CategoryTeam = "team"

// Team id prefixes; a ULID follows each.
const (
	TeamIDPrefix           = "tm_"
	TeamInvitationIDPrefix = "tmi_"
	ServiceAccountIDPrefix = "sa_"
)

// Team bounds.
const (
	// MaxTeamNameLength is the longest team or service account name, in
	// characters.
	MaxTeamNameLength = 100
	// MaxTeamMembers bounds a team's members.
	MaxTeamMembers = 1000
	// MaxTeamInvitations bounds a team's open invitations (neither used
	// nor expired).
	MaxTeamInvitations = 100
	// MaxTeamsPerUser bounds the teams a user is a member of: creating or
	// joining one more is refused.
	MaxTeamsPerUser = 100
	// MaxServiceAccounts bounds a team's service accounts, deleted ones
	// included.
	MaxServiceAccounts = 100
	// DefaultTeamInvitationTTL and MaxTeamInvitationTTL bound how long a
	// team invitation works.
	DefaultTeamInvitationTTL = 7 * 24 * time.Hour
	MaxTeamInvitationTTL     = 30 * 24 * time.Hour
)

// ValidTeamID reports whether s has the form of a team id.
func ValidTeamID(s string) bool {
	return strings.HasPrefix(s, TeamIDPrefix) && validULID(s[len(TeamIDPrefix):])
}

// ValidServiceAccountID reports whether s has the form of a service
// account id.
func ValidServiceAccountID(s string) bool {
	return strings.HasPrefix(s, ServiceAccountIDPrefix) && validULID(s[len(ServiceAccountIDPrefix):])
}

// ValidTeamInvitationID reports whether s has the form of a team
// invitation id.
func ValidTeamInvitationID(s string) bool {
	return strings.HasPrefix(s, TeamInvitationIDPrefix) && validULID(s[len(TeamInvitationIDPrefix):])
}

// ParseTeamInvitationToken parses a team invitation's token: its
// invitation id, a dot and 256 random bits (see Token). Errors: Invalid.
func ParseTeamInvitationToken(s string) (Token, error) {
	if len(s) > MaxTokenLength {
		return Token{}, errBadToken
	}
	agg, secret, ok := strings.Cut(s, ".")
	if !ok || !ValidTeamInvitationID(agg) || len(secret) != tokenSecretLength {
		return Token{}, errBadToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(secret)
	if err != nil || len(b) != 32 {
		return Token{}, errBadToken
	}
	return Token{Aggregate: agg, secret: secret}, nil
}

// TeamRole is what a member may do in a team.
type TeamRole string

// Team roles, from most to least powerful.
const (
	// TeamOwner manages the team, its members (owners included) and keys.
	TeamOwner TeamRole = "owner"
	// TeamAdmin manages members (not owners), service accounts and all
	// the team's keys.
	TeamAdmin TeamRole = "admin"
	// TeamDeveloper creates keys and manages the keys they created.
	TeamDeveloper TeamRole = "developer"
	// TeamViewer reads the team's keys and their usage.
	TeamViewer TeamRole = "viewer"
)

// Valid reports whether r is one of the team roles.
func (r TeamRole) Valid() bool {
	switch r {
	case TeamOwner, TeamAdmin, TeamDeveloper, TeamViewer:
		return true
	}
	return false
}

// manages reports whether r manages members and all keys.
func (r TeamRole) manages() bool { return r == TeamOwner || r == TeamAdmin }

// KeyAction is what a member wants to do with a team key.
type KeyAction int

// Key actions.
const (
	// KeyRead reads a key, its limits and usage.
	KeyRead KeyAction = iota
	// KeyCreate creates a key for the team.
	KeyCreate
	// KeyManage changes a key: edit, regenerate, disable, enable, top
	// up, revoke.
	KeyManage
)

// Member is a team member.
type Member struct {
	UserID   string
	Role     TeamRole
	JoinedAt time.Time
}

// TeamInvitation is an open invitation to join a team.
type TeamInvitation struct {
	ID        string
	Role      TeamRole
	TokenHash Hash
	ExpiresAt time.Time
}

// ServiceAccount is a non-human principal of a team: it owns keys and
// never logs in. A disabled or deleted one's keys do not validate.
type ServiceAccount struct {
	ID        string
	Name      string
	CreatedBy string
	CreatedAt time.Time
	Disabled  bool
	Deleted   bool
}

// Team is the team aggregate: the state folded from its events. The zero
// Team does not exist yet. Apply is its only mutator; it never changes a
// map a copy of the Team shares, it replaces it.
type Team struct {
	ID              string
	Name            string
	CreatedAt       time.Time
	Disabled        bool
	Members         map[string]Member         // user id -> member
	Invitations     map[string]TeamInvitation // invitation id -> open invitation
	ServiceAccounts map[string]ServiceAccount // id -> service account
	Version         uint64
	LastHash        Hash
}

// Exists reports whether the team has been created.
func (t *Team) Exists() bool { return t.Version > 0 }

// RoleOf returns userID's role in the team, and whether they are a member.
func (t *Team) RoleOf(userID string) (TeamRole, bool) {
	m, ok := t.Members[userID]
	return m.Role, ok
}

// Owners returns how many owners the team has.
func (t *Team) Owners() int {
	n := 0
	for _, m := range t.Members {
		if m.Role == TeamOwner {
			n++
		}
	}
	return n
}

// TeamCreated records a new team and its first owner.
type TeamCreated struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
}

// TeamInvitationIssued records an invitation to join a team with a role:
// the log keeps the hash of its single-use token, never the address it
// was mailed to.
type TeamInvitationIssued struct {
	Invitation string    `json:"invitation"`
	Role       TeamRole  `json:"role"`
	TokenHash  Hash      `json:"token_hash"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// TeamMemberJoined records a user joining a team with the role of the
// invitation they used (which is used up).
type TeamMemberJoined struct {
	UserID     string   `json:"user_id"`
	Role       TeamRole `json:"role"`
	Invitation string   `json:"invitation"`
}

// TeamMemberRoleChanged records a member's new role.
type TeamMemberRoleChanged struct {
	UserID string   `json:"user_id"`
	Role   TeamRole `json:"role"`
}

// TeamMemberRemoved records a member leaving or being removed (or erased:
// Reason says so). The team's keys stay the team's.
type TeamMemberRemoved struct {
	UserID string `json:"user_id"`
	Reason string `json:"reason,omitempty"`
}

// TeamServiceAccountCreated records a new service account of the team.
type TeamServiceAccountCreated struct {
	ServiceAccount string `json:"service_account"`
	Name           string `json:"name"`
}

// TeamServiceAccountDisabled records that a service account's keys stop
// validating until it is enabled.
type TeamServiceAccountDisabled struct {
	ServiceAccount string `json:"service_account"`
	Reason         string `json:"reason,omitempty"`
}

// TeamServiceAccountEnabled lifts a TeamServiceAccountDisabled.
type TeamServiceAccountEnabled struct {
	ServiceAccount string `json:"service_account"`
	Reason         string `json:"reason,omitempty"`
}

// TeamServiceAccountDeleted records that a service account is gone for
// good: its keys never validate again.
type TeamServiceAccountDeleted struct {
	ServiceAccount string `json:"service_account"`
	Reason         string `json:"reason,omitempty"`
}

// TeamDisabled records that none of the team's keys validate until the
// team is enabled; an admin's act.
type TeamDisabled struct {
	Reason string `json:"reason,omitempty"`
}

// TeamEnabled lifts a TeamDisabled.
type TeamEnabled struct {
	Reason string `json:"reason,omitempty"`
}

// TeamOwnershipTransferred records that an admin made a user an owner of
// the team (a member, if they were not one).
type TeamOwnershipTransferred struct {
	UserID string `json:"user_id"`
	Reason string `json:"reason,omitempty"`
}

// EventType implements EventData.
func (TeamCreated) EventType() string { return TypeTeamCreated }

// EventType implements EventData.
func (TeamInvitationIssued) EventType() string { return TypeTeamInvitationIssued }

// EventType implements EventData.
func (TeamMemberJoined) EventType() string { return TypeTeamMemberJoined }

// EventType implements EventData.
func (TeamMemberRoleChanged) EventType() string { return TypeTeamMemberRoleChanged }

// EventType implements EventData.
func (TeamMemberRemoved) EventType() string { return TypeTeamMemberRemoved }

// EventType implements EventData.
func (TeamServiceAccountCreated) EventType() string { return TypeTeamServiceAccountCreated }

// EventType implements EventData.
func (TeamServiceAccountDisabled) EventType() string { return TypeTeamServiceAccountDisabled }

// EventType implements EventData.
func (TeamServiceAccountEnabled) EventType() string { return TypeTeamServiceAccountEnabled }

// EventType implements EventData.
func (TeamServiceAccountDeleted) EventType() string { return TypeTeamServiceAccountDeleted }

// EventType implements EventData.
func (TeamDisabled) EventType() string { return TypeTeamDisabled }

// EventType implements EventData.
func (TeamEnabled) EventType() string { return TypeTeamEnabled }

// EventType implements EventData.
func (TeamOwnershipTransferred) EventType() string { return TypeTeamOwnershipTransferred }

// decodeTeamEvent decodes the payload of a team event of schema 1, or
// returns nil for a bad one.
func decodeTeamEvent(typ string, raw []byte) EventData {
	switch typ {
	case TypeTeamCreated:
		if d, ok := decodePayload[TeamCreated](raw); ok && ValidUserID(d.Owner) {
			return d
		}
	case TypeTeamInvitationIssued:
		if d, ok := decodePayload[TeamInvitationIssued](raw); ok && ValidTeamInvitationID(d.Invitation) && d.Role.Valid() {
			return d
		}
	case TypeTeamMemberJoined:
		if d, ok := decodePayload[TeamMemberJoined](raw); ok && ValidUserID(d.UserID) && d.Role.Valid() {
			return d
		}
	case TypeTeamMemberRoleChanged:
		if d, ok := decodePayload[TeamMemberRoleChanged](raw); ok && ValidUserID(d.UserID) && d.Role.Valid() {
			return d
		}
	case TypeTeamMemberRemoved:
		if d, ok := decodePayload[TeamMemberRemoved](raw); ok && ValidUserID(d.UserID) {
			return d
		}
	case TypeTeamServiceAccountCreated:
		if d, ok := decodePayload[TeamServiceAccountCreated](raw); ok && ValidServiceAccountID(d.ServiceAccount) {
			return d
		}
	case TypeTeamServiceAccountDisabled:
		if d, ok := decodePayload[TeamServiceAccountDisabled](raw); ok && ValidServiceAccountID(d.ServiceAccount) {
			return d
		}
	case TypeTeamServiceAccountEnabled:
		if d, ok := decodePayload[TeamServiceAccountEnabled](raw); ok && ValidServiceAccountID(d.ServiceAccount) {
			return d
		}
	case TypeTeamServiceAccountDeleted:
		if d, ok := decodePayload[TeamServiceAccountDeleted](raw); ok && ValidServiceAccountID(d.ServiceAccount) {
			return d
		}
	case TypeTeamDisabled:
		return decodeData[TeamDisabled](raw)
	case TypeTeamEnabled:
		return decodeData[TeamEnabled](raw)
	case TypeTeamOwnershipTransferred:
		if d, ok := decodePayload[TeamOwnershipTransferred](raw); ok && ValidUserID(d.UserID) {
			return d
		}
	}
	return nil
}

// Apply folds one event into the team, for new events and replay alike.
// It rejects events that do not follow the team's history.
func (t *Team) Apply(e Event) error {
	if e.Version != t.Version+1 {
		return fmt.Errorf("apply %s to %s: version %d after %d", e.Type, e.Aggregate, e.Version, t.Version)
	}
	if _, ok := e.Data.(TeamCreated); ok != !t.Exists() {
		return fmt.Errorf("apply %s to %s: team created twice or not yet", e.Type, e.Aggregate)
	}
	if t.Exists() && e.Aggregate != t.ID {
		return fmt.Errorf("apply %s of %s to team %s", e.Type, e.Aggregate, t.ID)
	}
	fail := func(what string) error { return fmt.Errorf("apply %s to %s: %s", e.Type, e.Aggregate, what) }
	switch d := e.Data.(type) {
	case TeamCreated:
		if !ValidTeamID(e.Aggregate) || ValidateTeamName(d.Name) != nil {
			return fail("malformed team id or name")
		}
		t.ID, t.Name, t.CreatedAt = e.Aggregate, d.Name, e.Time
		t.Members = map[string]Member{d.Owner: {UserID: d.Owner, Role: TeamOwner, JoinedAt: e.Time}}
		t.Invitations, t.ServiceAccounts = map[string]TeamInvitation{}, map[string]ServiceAccount{}
	case TeamInvitationIssued:
		if _, ok := t.Invitations[d.Invitation]; ok {
			return fail("invitation issued twice")
		}
		inv := maps.Clone(t.Invitations)
		maps.DeleteFunc(inv, func(_ string, i TeamInvitation) bool { return !e.Time.Before(i.ExpiresAt) })
		inv[d.Invitation] = TeamInvitation{ID: d.Invitation, Role: d.Role, TokenHash: d.TokenHash, ExpiresAt: d.ExpiresAt.UTC()}
		t.Invitations = inv
	case TeamMemberJoined:
		if _, ok := t.Invitations[d.Invitation]; !ok {
			return fail("no such open invitation")
		}
		if _, ok := t.Members[d.UserID]; ok {
			return fail("already a member")
		}
		inv := maps.Clone(t.Invitations)
		delete(inv, d.Invitation)
		t.Invitations = inv
		t.setMember(d.UserID, Member{UserID: d.UserID, Role: d.Role, JoinedAt: e.Time})
	case TeamMemberRoleChanged:
		m, ok := t.Members[d.UserID]
		if !ok {
			return fail("not a member")
		}
		m.Role = d.Role
		t.setMember(d.UserID, m)
	case TeamMemberRemoved:
		if _, ok := t.Members[d.UserID]; !ok {
			return fail("not a member")
		}
		members := maps.Clone(t.Members)
		delete(members, d.UserID)
		t.Members = members
	case TeamServiceAccountCreated:
		if _, ok := t.ServiceAccounts[d.ServiceAccount]; ok || ValidateTeamName(d.Name) != nil {
			return fail("service account exists or has a bad name")
		}
		t.setServiceAccount(ServiceAccount{ID: d.ServiceAccount, Name: d.Name, CreatedBy: e.Actor, CreatedAt: e.Time})
	case TeamServiceAccountDisabled, TeamServiceAccountEnabled, TeamServiceAccountDeleted:
		id := serviceAccountOf(d)
		sa, ok := t.ServiceAccounts[id]
		if !ok || sa.Deleted {
			return fail("no such service account")
		}
		switch d.(type) {
		case TeamServiceAccountDisabled:
			sa.Disabled = true
		case TeamServiceAccountEnabled:
			sa.Disabled = false
		case TeamServiceAccountDeleted:
			sa.Deleted = true
		}
		t.setServiceAccount(sa)
	case TeamDisabled:
		t.Disabled = true
	case TeamEnabled:
		t.Disabled = false
	case TeamOwnershipTransferred:
		m, ok := t.Members[d.UserID]
		if !ok {
			m = Member{UserID: d.UserID, JoinedAt: e.Time}
		}
		m.Role = TeamOwner
		t.setMember(d.UserID, m)
	default:
		return fmt.Errorf("apply %s to team %s: not a team event", e.Type, e.Aggregate)
	}
	t.Version, t.LastHash = e.Version, e.Hash
	return nil
}

func serviceAccountOf(d EventData) string {
	switch d := d.(type) {
	case TeamServiceAccountDisabled:
		return d.ServiceAccount
	case TeamServiceAccountEnabled:
		return d.ServiceAccount
	case TeamServiceAccountDeleted:
		return d.ServiceAccount
	}
	return ""
}

func (t *Team) setMember(id string, m Member) {
	members := maps.Clone(t.Members)
	members[id] = m
	t.Members = members
}

func (t *Team) setServiceAccount(sa ServiceAccount) {
	s := maps.Clone(t.ServiceAccounts)
	s[sa.ID] = sa
	t.ServiceAccounts = s
}

// ValidateTeamName checks a team's or service account's name: 1 to
// MaxTeamNameLength characters, with the rules of a key's name.
func ValidateTeamName(name string) error {
	if name == "" {
		return Errorf(Invalid, "name is required")
	}
	if err := ValidateKeyName(name); err != nil {
		return err
	}
	return nil
}

// errTeamNotFound is what a user who is not a member is told of a team:
// the same as of a team that does not exist.
var errTeamNotFound = Errorf(NotFound, "team not found")

// member returns the role of the acting user, NotFound for a non-member.
func (t *Team) member(userID string) (TeamRole, error) {
	role, ok := t.RoleOf(userID)
	if !t.Exists() || !ok {
		return "", errTeamNotFound
	}
	return role, nil
}

// CanRead returns nil when userID may see the team (is a member), else
// NotFound, exactly as for a team that does not exist.
func (t *Team) CanRead(userID string) error {
	_, err := t.member(userID)
	return err
}

// CanManageMembers returns nil when userID is an owner or admin of the
// team; NotFound for a non-member, Forbidden for other roles.
func (t *Team) CanManageMembers(userID string) error {
	role, err := t.member(userID)
	if err != nil {
		return err
	}
	if !role.manages() {
		return Errorf(Forbidden, "only the team's owners and admins may do this")
	}
	return nil
}

// KeyAccess decides whether userID may do action with a key of the team;
// createdBy is the user who created the key ("" for KeyCreate). It
// returns NotFound for a non-member (the key is invisible to them),
// Forbidden for a member whose role does not allow it, Conflict for a
// change while the team is disabled.
func (t *Team) KeyAccess(userID string, action KeyAction, createdBy string) error {
	role, err := t.member(userID)
	if err != nil {
		return Errorf(NotFound, "api key not found")
	}
	if action == KeyRead {
		return nil
	}
	if t.Disabled {
		return Errorf(Conflict, "team is disabled")
	}
	switch {
	case role.manages():
		return nil
	case role == TeamDeveloper && (action == KeyCreate || createdBy == userID):
		return nil
	case role == TeamDeveloper:
		return Errorf(Forbidden, "a developer manages only the keys they created")
	}
	return Errorf(Forbidden, "a viewer may only read the team's keys")
}

// record builds one event that follows the team's current version and
// checks it applies.
func (t *Team) record(id, actor string, now time.Time, d EventData) ([]Event, error) {
	e := Event{Type: d.EventType(), Schema: SchemaFor(d), Aggregate: id, Version: t.Version + 1,
		Time: now.UTC(), Actor: actor, Prev: t.LastHash, Data: d}
	probe := *t
	if err := probe.Apply(e); err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return []Event{e}, nil
}

// CreateTeam returns the events that create team id with owner as its
// first owner. Errors: Invalid (name, ids), Conflict (exists).
func (t *Team) CreateTeam(id, name, owner string, now time.Time) ([]Event, error) {
	if t.Exists() {
		return nil, Errorf(Conflict, "team already exists")
	}
	if !ValidTeamID(id) || !ValidUserID(owner) {
		return nil, Errorf(Invalid, "malformed team or user id")
	}
	if err := ValidateTeamName(name); err != nil {
		return nil, err
	}
	return t.record(id, owner, now, TeamCreated{Name: name, Owner: owner})
}

// Invite returns the events that issue an invitation to join with role,
// on behalf of actor (an owner or admin; only owners invite owners).
// Errors: NotFound, Forbidden, Invalid (role, expiry), Conflict (too many
// open invitations, or the team is disabled).
func (t *Team) Invite(actor string, token Token, role TeamRole, expiresAt time.Time, now time.Time) ([]Event, error) {
	if err := t.CanManageMembers(actor); err != nil {
		return nil, err
	}
	if t.Disabled {
		return nil, Errorf(Conflict, "team is disabled")
	}
	if !role.Valid() {
		return nil, Errorf(Invalid, "role must be owner, admin, developer or viewer")
	}
	if r, _ := t.RoleOf(actor); role == TeamOwner && r != TeamOwner {
		return nil, Errorf(Forbidden, "only owners may make owners")
	}
	if !ValidTeamInvitationID(token.Aggregate) || token.IsZero() {
		return nil, Errorf(Invalid, "malformed invitation token")
	}
	if !expiresAt.After(now) || expiresAt.Sub(now) > MaxTeamInvitationTTL {
		return nil, Errorf(Invalid, "expires_in must be positive and at most %s", MaxTeamInvitationTTL)
	}
	open := 0
	for _, i := range t.Invitations {
		if now.Before(i.ExpiresAt) {
			open++
		}
	}
	if open >= MaxTeamInvitations {
		return nil, Errorf(Conflict, "the team has %d open invitations: let some expire first", open)
	}
	return t.record(t.ID, actor, now, TeamInvitationIssued{Invitation: token.Aggregate, Role: role,
		TokenHash: token.Hash(), ExpiresAt: expiresAt.UTC()})
}

// errBadInvitation is the one answer to a token that does not let its
// holder in (unknown, used, expired, wrong secret): it says nothing more.
var errBadInvitation = Errorf(NotFound, "invitation not found, used or expired")

// Join returns the events that make userID a member with the role of the
// invitation token opens, using it up. Errors: NotFound (no such open
// invitation, a wrong secret, expired), Conflict (already a member, the
// team is full).
func (t *Team) Join(userID string, token Token, now time.Time) ([]Event, error) {
	inv, ok := t.Invitations[token.Aggregate]
	if !t.Exists() || !ok || !token.matches(inv.TokenHash) || !now.Before(inv.ExpiresAt) {
		return nil, errBadInvitation
	}
	if !ValidUserID(userID) {
		return nil, Errorf(Invalid, "malformed user id")
	}
	if t.Disabled {
		return nil, Errorf(Conflict, "team is disabled")
	}
	if _, member := t.Members[userID]; member {
		return nil, Errorf(Conflict, "already a member of the team")
	}
	if len(t.Members) >= MaxTeamMembers {
		return nil, Errorf(Conflict, "the team has %d members, the most it may", MaxTeamMembers)
	}
	return t.record(t.ID, userID, now, TeamMemberJoined{UserID: userID, Role: inv.Role, Invitation: inv.ID})
}

// ChangeRole returns the events that give member a new role, on behalf of
// actor: owners and admins change roles, only owners make or unmake
// owners, and the last owner keeps their role. Errors: NotFound (actor or
// member not in the team), Forbidden, Invalid (role), Conflict (last
// owner).
func (t *Team) ChangeRole(actor, member string, role TeamRole, now time.Time) ([]Event, error) {
	if err := t.CanManageMembers(actor); err != nil {
		return nil, err
	}
	if t.Disabled {
		return nil, Errorf(Conflict, "team is disabled")
	}
	if !role.Valid() {
		return nil, Errorf(Invalid, "role must be owner, admin, developer or viewer")
	}
	m, ok := t.Members[member]
	if !ok {
		return nil, Errorf(NotFound, "member not found")
	}
	actorRole, _ := t.RoleOf(actor)
	if (role == TeamOwner || m.Role == TeamOwner) && actorRole != TeamOwner {
		return nil, Errorf(Forbidden, "only owners may make or unmake owners")
	}
	if m.Role == role {
		return nil, nil
	}
	if m.Role == TeamOwner && t.Owners() == 1 {
		return nil, Errorf(Conflict, "the last owner cannot be demoted: make another owner first")
	}
	return t.record(t.ID, actor, now, TeamMemberRoleChanged{UserID: member, Role: role})
}

// RemoveMember returns the events that remove member from the team on
// behalf of actor: a member may always leave, owners and admins remove
// others, only owners remove owners, and the last owner stays. Errors:
// NotFound, Forbidden, Conflict (last owner).
func (t *Team) RemoveMember(actor, member string, now time.Time) ([]Event, error) {
	if _, err := t.member(actor); err != nil {
		return nil, err
	}
	m, ok := t.Members[member]
	if !ok {
		return nil, Errorf(NotFound, "member not found")
	}
	if actor != member {
		if err := t.CanManageMembers(actor); err != nil {
			return nil, err
		}
		if r, _ := t.RoleOf(actor); m.Role == TeamOwner && r != TeamOwner {
			return nil, Errorf(Forbidden, "only owners may remove owners")
		}
	}
	if m.Role == TeamOwner && t.Owners() == 1 {
		return nil, Errorf(Conflict, "the last owner cannot leave: make another owner first")
	}
	return t.record(t.ID, actor, now, TeamMemberRemoved{UserID: member})
}

// RemoveErased returns the events that take an erased user out of the
// team, on behalf of actor (whoever erased them), whatever their role:
// a team whose last owner is erased stays, with no owner, until an admin
// transfers it. No events when they are not a member.
func (t *Team) RemoveErased(actor, userID string, now time.Time) ([]Event, error) {
	if _, ok := t.Members[userID]; !ok {
		return nil, nil
	}
	return t.record(t.ID, actor, now, TeamMemberRemoved{UserID: userID, Reason: "erased"})
}

// CreateServiceAccount returns the events that add service account id
// named name, on behalf of actor (an owner or admin). Errors: NotFound,
// Forbidden, Invalid, Conflict (too many).
func (t *Team) CreateServiceAccount(actor, id, name string, now time.Time) ([]Event, error) {
	if err := t.CanManageMembers(actor); err != nil {
		return nil, err
	}
	if !ValidServiceAccountID(id) {
		return nil, Errorf(Invalid, "malformed service account id")
	}
	if err := ValidateTeamName(name); err != nil {
		return nil, err
	}
	if len(t.ServiceAccounts) >= MaxServiceAccounts {
		return nil, Errorf(Conflict, "the team has %d service accounts, the most it may", MaxServiceAccounts)
	}
	return t.record(t.ID, actor, now, TeamServiceAccountCreated{ServiceAccount: id, Name: name})
}

// ServiceAccountAction is a change to a service account.
type ServiceAccountAction int

// Service account actions.
const (
	DisableServiceAccount ServiceAccountAction = iota
	EnableServiceAccount
	DeleteServiceAccount
)

// ChangeServiceAccount returns the events that disable, enable or delete
// service account id on behalf of actor (an owner or admin). Nothing to
// do (disabling a disabled one, ...) returns no events. Errors: NotFound
// (no such account, or deleted), Forbidden, Invalid (reason).
func (t *Team) ChangeServiceAccount(actor, id string, action ServiceAccountAction, reason string, now time.Time) ([]Event, error) {
	if err := t.CanManageMembers(actor); err != nil {
		return nil, err
	}
	sa, ok := t.ServiceAccounts[id]
	if !ok || sa.Deleted {
		return nil, Errorf(NotFound, "service account not found")
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	var d EventData
	switch {
	case action == DisableServiceAccount && !sa.Disabled:
		d = TeamServiceAccountDisabled{ServiceAccount: id, Reason: reason}
	case action == EnableServiceAccount && sa.Disabled:
		d = TeamServiceAccountEnabled{ServiceAccount: id, Reason: reason}
	case action == DeleteServiceAccount:
		d = TeamServiceAccountDeleted{ServiceAccount: id, Reason: reason}
	default:
		return nil, nil
	}
	return t.record(t.ID, actor, now, d)
}

// SetDisabled returns the events that disable or enable the team on an
// admin's behalf (actor "admin:<name>"). Nothing to do returns no events.
// Errors: NotFound, Invalid (reason).
func (t *Team) SetDisabled(actor string, disable bool, reason string, now time.Time) ([]Event, error) {
	if !t.Exists() {
		return nil, errTeamNotFound
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	switch {
	case disable && !t.Disabled:
		return t.record(t.ID, actor, now, TeamDisabled{Reason: reason})
	case !disable && t.Disabled:
		return t.record(t.ID, actor, now, TeamEnabled{Reason: reason})
	}
	return nil, nil
}

// Transfer returns the events that make userID an owner of the team on an
// admin's behalf (actor "admin:<name>"): how a team whose owners left or
// were erased gets one again. An owner already: no events. Errors:
// NotFound, Invalid.
func (t *Team) Transfer(actor, userID, reason string, now time.Time) ([]Event, error) {
	if !t.Exists() {
		return nil, errTeamNotFound
	}
	if !ValidUserID(userID) {
		return nil, Errorf(Invalid, "malformed user id")
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	if r, ok := t.RoleOf(userID); ok && r == TeamOwner {
		return nil, nil
	}
	if _, ok := t.Members[userID]; !ok && len(t.Members) >= MaxTeamMembers {
		return nil, Errorf(Conflict, "the team has %d members, the most it may", MaxTeamMembers)
	}
	return t.record(t.ID, actor, now, TeamOwnershipTransferred{UserID: userID, Reason: reason})
}
