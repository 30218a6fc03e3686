package ledger

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/auth"
)

// Command names of the OpenID Connect use cases.
const (
	nameOIDCLogin    = "oidc_login"
	nameLinkIdentity = "link_identity"
)

// OIDCLogin logs in the person an OpenID provider vouched for: the
// issuer and subject of a verified ID token, and the verified address it
// asserted. The identity's user, if it has one, is logged in. Otherwise,
// an address that belongs to an account asks for that account's password
// first (Outcome.LinkTo; see LinkIdentity), and a free one creates a user
// without password, as the registration mode allows: open and verified
// (the provider verified the address), invite only when DomainAllowed
// (the operator named the domains it invites), never closed.
// Errors: Invalid (issuer, subject, email), Forbidden (registration
// closed, invite without DomainAllowed, a disabled user, an address not
// verified yet), Conflict (a concurrent login won the race: try again),
// Unavailable, Internal.
type OIDCLogin struct {
	Issuer  string
	Subject string
	// Email is the address the provider asserted as verified.
	Email string
	// DomainAllowed is true when the address's domain is on the allow
	// list the operator configured (--oidc-allowed-domains), false when
	// there is no list.
	DomainAllowed bool
	// Preset fixes the new user's id and event ids (zero: drawn afresh).
	Preset Preset
}

// CommandName implements Command.
func (OIDCLogin) CommandName() string { return nameOIDCLogin }

// LogValue implements slog.LogValuer, leaving the identity and the
// address out (personal data).
func (c OIDCLogin) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()))
}

// OIDCOutcome is the outcome of an OIDCLogin: either User, logged in
// (Created when this login registered it), or LinkTo, the id of the
// account that holds the address, which the person must confirm with its
// password before the identity logs in as it.
type OIDCOutcome struct {
	User    domain.User
	Created bool
	LinkTo  string
}

// errIdentityDisabled refuses the login of a disabled user: the provider
// proved who it is, so saying so tells nobody anything new.
var errIdentityDisabled = domain.Errorf(domain.Forbidden, "account disabled")

// OIDCLogin runs cmd. Errors: see OIDCLogin (the type).
func (s *Service) OIDCLogin(ctx context.Context, cmd OIDCLogin) (_ OIDCOutcome, err error) {
	defer s.observed(cmd, time.Now(), &err)
	out, err := s.oidcLogin(ctx, cmd)
	if domain.KindOf(err) != domain.Conflict {
		return out, err
	}
	// Two first logins of one identity at once (two tabs): one created
	// the user; once the read models show its link, this one logs in.
	key, kerr := s.dataKeys.EmailKey(ctx)
	if kerr != nil {
		return OIDCOutcome{}, kerr
	}
	seq, lerr := s.log.LastSequence(ctx, domain.CategoryIdentity, domain.IdentityAggregate(key, cmd.Issuer, cmd.Subject))
	if lerr != nil {
		return OIDCOutcome{}, lerr
	}
	wctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	if werr := s.progress.WaitFor(wctx, seq); werr != nil {
		return OIDCOutcome{}, werr
	}
	cmd.Preset = Preset{}
	return s.oidcLogin(ctx, cmd)
}

func (s *Service) oidcLogin(ctx context.Context, cmd OIDCLogin) (OIDCOutcome, error) {
	if err := domain.ValidateIdentity(cmd.Issuer, cmd.Subject); err != nil {
		return OIDCOutcome{}, err
	}
	email, err := domain.NormalizeEmail(cmd.Email)
	if err != nil {
		return OIDCOutcome{}, err
	}
	key, err := s.dataKeys.EmailKey(ctx)
	if err != nil {
		return OIDCOutcome{}, err
	}
	aggregate := domain.IdentityAggregate(key, cmd.Issuer, cmd.Subject)
	identity, identitySeq, holder := s.identities.Get(aggregate)
	if holder != "" {
		u, err := s.UserByID(ctx, holder)
		if err != nil {
			return OIDCOutcome{}, err
		}
		if u.Disabled {
			return OIDCOutcome{}, errIdentityDisabled
		}
		if err := s.checkVerified(u.ID); err != nil {
			return OIDCOutcome{}, err
		}
		return OIDCOutcome{User: u}, nil
	}
	if u, found, err := s.findByEmail(ctx, email); err != nil {
		return OIDCOutcome{}, err
	} else if found {
		return OIDCOutcome{LinkTo: u.ID}, nil
	}
	switch s.registration {
	case RegistrationOpen, RegistrationVerified:
	case RegistrationInvite:
		if !cmd.DomainAllowed {
			return OIDCOutcome{}, ErrInvitationRequired
		}
	default:
		return OIDCOutcome{}, ErrRegistrationClosed
	}
	noPassword := func() (string, error) { return "", nil }
	u, err := s.registerHashed(ctx, "", email, noPassword, domain.RoleUser, nil, cmd.Preset,
		func(userID string, ids []string) ([]eventstore.Pending, error) {
			events, err := domain.Link(domain.LinkIdentity{Aggregate: aggregate, UserID: userID, Identity: identity}, s.now())
			if err != nil {
				return nil, err
			}
			if len(ids) > 0 {
				events[0].ID = ids[0]
			}
			return []eventstore.Pending{{Event: events[0], ExpectedSeq: identitySeq}}, nil
		})
	if err != nil {
		return OIDCOutcome{}, err
	}
	// A registration repeated with the same Preset returns the user of
	// the first run, whose link is in the log already: this identity's
	// link must be there too, or the address was someone else's.
	if _, _, holder := s.identities.Get(aggregate); holder != u.ID {
		return OIDCOutcome{}, errEmailTaken
	}
	return OIDCOutcome{User: u, Created: true}, nil
}

// LinkIdentity links an identity at an OpenID provider to an existing
// account, once its owner confirmed with the account's password (after
// an OIDCLogin answered LinkTo). A wrong password counts as a failed
// login of the account's address from Client, throttled alike, and gives
// the same error. Errors: Unauthorized (wrong password, or the account is
// gone, disabled or holds another address now), Conflict (the identity
// is linked already: a link token works once), Forbidden (the address is
// not verified yet), RateLimited, Unavailable (auth.ErrBusy too),
// Internal.
type LinkIdentity struct {
	Issuer   string
	Subject  string
	Email    string // the address the provider asserted, normalised
	UserID   string // the account OIDCLogin named in LinkTo
	Password string // never logged: see LogValue
	// Client identifies where the attempt comes from, as for Login.
	Client string
}

// CommandName implements Command.
func (LinkIdentity) CommandName() string { return nameLinkIdentity }

// LogValue implements slog.LogValuer, leaving the password, the identity
// and the address out.
func (c LinkIdentity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("command", c.CommandName()), slog.String("user", c.UserID))
}

var errIdentityLinked = domain.Errorf(domain.Conflict, "this identity is linked already: log in again through the provider")

// LinkIdentity runs cmd and returns the user, now logged in through the
// identity too. Errors: see LinkIdentity (the type).
func (s *Service) LinkIdentity(ctx context.Context, cmd LinkIdentity) (_ domain.User, err error) {
	defer s.observed(cmd, time.Now(), &err)
	if err := domain.ValidateIdentity(cmd.Issuer, cmd.Subject); err != nil {
		return domain.User{}, err
	}
	email, err := domain.NormalizeEmail(cmd.Email)
	if err != nil {
		return domain.User{}, err
	}
	key, err := s.dataKeys.EmailKey(ctx)
	if err != nil {
		return domain.User{}, err
	}
	aggregate := domain.IdentityAggregate(key, cmd.Issuer, cmd.Subject)
	if _, _, holder := s.identities.Get(aggregate); holder != "" {
		return domain.User{}, errIdentityLinked
	}
	now := s.now()
	if wait := s.throttle.Attempt(email, cmd.Client, now); wait > 0 {
		return domain.User{}, domain.RateLimitedFor(wait, "too many failed attempts, try again later")
	}
	u, found := s.users.ByID(cmd.UserID)
	if found && !u.Erased {
		if u, err = s.reveal(ctx, u); err != nil {
			s.throttle.Refund(email, cmd.Client)
			return domain.User{}, err
		}
	}
	// The same hashing work whatever is wrong, as for Login.
	ok, verr := s.passwords.Verify(u.PasswordHash, cmd.Password)
	if errors.Is(verr, auth.ErrBusy) {
		s.throttle.Refund(email, cmd.Client)
		return domain.User{}, verr
	}
	if verr != nil {
		s.logger.Error("stored password hash unreadable", "user", u.ID, "err", verr)
	}
	if !found || u.Erased || u.Email != email || !ok || verr != nil || u.Disabled {
		return domain.User{}, errBadLogin
	}
	s.throttle.Succeed(email, cmd.Client)
	err = s.update(ctx, domain.CategoryIdentity, aggregate, func() ([]domain.Event, uint64, error) {
		identity, seq, holder := s.identities.Get(aggregate)
		if holder != "" {
			return nil, 0, errIdentityLinked
		}
		events, err := domain.Link(domain.LinkIdentity{Aggregate: aggregate, UserID: u.ID, Identity: identity}, s.now())
		if err != nil {
			return nil, 0, err
		}
		return events, seq, nil
	})
	if err != nil {
		return domain.User{}, err
	}
	if err := s.checkVerified(u.ID); err != nil {
		return domain.User{}, err
	}
	return u, nil
}
