// Package ledger runs keyledger's use cases: each command loads the
// aggregate's state from the projections, lets the domain decide, appends
// the resulting events with the expected stream sequence, and waits until
// the projections show them, so a caller always reads its own writes.
//
// Each use case takes one command value (CreateKey, RevokeKey, ...) and
// has one entry point on Service, named after it. Transports (HTTP, the
// admin CLI) call a Service; it is safe for concurrent use.
package ledger

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/pwlist"
	"github.com/keyledger/keyledger/projections"
)

// EventLog is the part of the event store the use cases need.
type EventLog interface {
	// Append stores events all or none. Errors: Conflict, Unavailable.
	Append(ctx context.Context, events ...eventstore.Pending) ([]uint64, error)
	// LastSequence returns the stream sequence of an aggregate's last event.
	// Errors: Unavailable.
	LastSequence(ctx context.Context, category, aggregate string) (uint64, error)
}

// Progress is the projector's position, awaited after every write.
type Progress interface {
	// WaitFor blocks until seq is handled, applied or skipped.
	// Errors: Unavailable.
	WaitFor(ctx context.Context, seq uint64) error
	// WaitApplied blocks until seq is handled and reports whether it was
	// applied. Errors: Unavailable, projections.ErrSkipped (wrapped).
	WaitApplied(ctx context.Context, seq uint64) error
}

// maxAttempts bounds load-decide-append retries after a conflict.
const maxAttempts = 5

// Service runs the use cases.
type Service struct {
	log       EventLog
	progress  Progress
	keys      *projections.Keys
	users     *projections.Users
	dataKeys  DataKeys
	admins    *projections.Admins
	passwords *auth.Passwords
	common    domain.PasswordList
	throttle  *auth.Throttle
	logger    *slog.Logger
	now       func() time.Time
	random    io.Reader
	wait      time.Duration
	maxKeys   int
	observe   func(command string, kind domain.Kind, took time.Duration)

	missingKeys   atomic.Uint64
	verifications *projections.Verifications
	invitations   *projections.Invitations
	registration  Registration
	mailer        Mailer
	identities    *projections.Identities
	teams         *projections.Teams
}

// Config holds a Service's dependencies. All but Logger, Now and Random are
// required.
type Config struct {
	Log      EventLog
	Progress Progress
	Keys     *projections.Keys
	Users    *projections.Users
	// DataKeys holds the users' data keys and the email hash key.
	DataKeys DataKeys
	// Admins is the read model of admin keys (nil: none, so every signed
	// admin request is refused and no admin key can be enrolled).
	Admins    *projections.Admins
	Passwords *auth.Passwords
	Throttle  *auth.Throttle
	Logger    *slog.Logger
	Now       func() time.Time // default time.Now
	Random    io.Reader        // default crypto/rand.Reader
	// WaitTimeout bounds how long a command waits for the projections to
	// show its own write after the log acknowledged it (default 10s); past
	// it the command reports Unavailable although the write is stored.
	WaitTimeout time.Duration
	// MaxKeysPerUser bounds a user's keys that are not revoked (default
	// DefaultMaxKeysPerUser; negative: no limit).
	MaxKeysPerUser int
	// Observe, if set, is called once after each command with its
	// CommandName, the kind of the error it returned ("" on success) and
	// how long it took: metrics plug in here. It is called on the
	// command's goroutine, concurrently for concurrent commands, and must
	// not block. Queries (ListKeys, GetKey, ...) are not observed.
	Observe func(command string, kind domain.Kind, took time.Duration)
	// CommonPasswords is the list new passwords must not be on (nil: the
	// embedded pwlist.Common, read when the first Service is built, so
	// that no registration waits for it).
	CommonPasswords domain.PasswordList

	// Verifications and Invitations are the read models of the sign-up
	// aggregates (nil: empty ones, so nobody waits for a verification and
	// no invitation works).
	Verifications *projections.Verifications
	Invitations   *projections.Invitations
	// Registration is who may sign up (default RegistrationOpen);
	// RegistrationVerified needs a Mailer.
	Registration Registration
	// Mailer sends the sign-up messages (nil: none, which only
	// RegistrationVerified needs).
	Mailer Mailer
	// Identities is the read model of identities at OpenID providers
	// linked to users (nil: an empty one over Users, so no identity is
	// linked).
	Identities *projections.Identities
	// Teams is the read model of teams (nil: an empty one, so no team
	// exists for this service's reads).
	Teams *projections.Teams
}

// DefaultMaxKeysPerUser is the default bound on a user's unrevoked keys.
const DefaultMaxKeysPerUser = 100

// New returns a Service, or an error if a required dependency is missing.
func New(cfg Config) (*Service, error) {
	if cfg.Log == nil || cfg.Progress == nil || cfg.Keys == nil || cfg.Users == nil ||
		cfg.Passwords == nil || cfg.Throttle == nil {
		return nil, errors.New("ledger: missing dependency")
	}
	if cfg.DataKeys == nil {
		return nil, errNoDataKeys
	}
	s := &Service{log: cfg.Log, progress: cfg.Progress, keys: cfg.Keys, users: cfg.Users, dataKeys: cfg.DataKeys, admins: cfg.Admins,
		passwords: cfg.Passwords, throttle: cfg.Throttle, logger: cfg.Logger, now: cfg.Now, random: cfg.Random,
		wait: cfg.WaitTimeout, maxKeys: cfg.MaxKeysPerUser, observe: cfg.Observe}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.admins == nil {
		s.admins = projections.NewAdmins()
	}
	if s.common = cfg.CommonPasswords; s.common == nil {
		s.common = pwlist.Common()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.random == nil {
		s.random = rand.Reader
	}
	if s.wait <= 0 {
		s.wait = 10 * time.Second
	}
	if s.maxKeys == 0 {
		s.maxKeys = DefaultMaxKeysPerUser
	}
	if s.identities = cfg.Identities; s.identities == nil {
		s.identities = projections.NewIdentities(cfg.Users)
	}
	if s.teams = cfg.Teams; s.teams == nil {
		s.teams = projections.NewTeams()
	}
	if err := s.signUpConfig(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// newID returns prefix + a new ULID.
func (s *Service) newID(prefix string) string {
	return prefix + ulid.MustNew(ulid.Timestamp(s.now()), s.random).String()
}

// appendAndWait appends events and waits until the projections show them.
// An event they skipped (its signature not trusted, say) is stored but in
// force nowhere: the command then fails as Internal, never succeeds.
func (s *Service) appendAndWait(ctx context.Context, events ...eventstore.Pending) error {
	seqs, err := s.log.Append(ctx, events...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.wait)
	defer cancel()
	for i, seq := range seqs {
		err := s.progress.WaitApplied(ctx, seq)
		if errors.Is(err, projections.ErrSkipped) {
			err = fmt.Errorf("event at sequence %d was not applied by the read models: %w", seq, err)
			s.logger.Error("command not in force", "type", events[i].Event.Type,
				"aggregate", events[i].Event.Aggregate, "seq", seq, "err", err)
			return domain.Wrap(domain.Internal, err, "internal error")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// update runs load-decide-append for one aggregate: decide loads its
// current state, returns the events to record and the stream sequence of
// its last event; after a conflict it waits for the projections to catch up
// with the subject's last message and decides again, a bounded number of
// times. The expected sequence is then that last message, whatever it
// was: a message the projections skipped (one the ledger did not sign)
// must not block the aggregate forever.
func (s *Service) update(ctx context.Context, category, aggregate string, decide func() ([]domain.Event, uint64, error)) error {
	var floor uint64 // the subject's last sequence, as learnt after a conflict
	for attempt := 1; ; attempt++ {
		events, seq, err := decide()
		if err != nil || len(events) == 0 {
			return err
		}
		pending := make([]eventstore.Pending, len(events))
		for i, e := range events {
			pending[i] = eventstore.Pending{Event: e, ExpectedSeq: max(seq, floor)}
		}
		err = s.appendAndWait(ctx, pending...)
		if domain.KindOf(err) != domain.Conflict || attempt == maxAttempts {
			return err
		}
		if floor, err = s.log.LastSequence(ctx, category, aggregate); err != nil {
			return err
		}
		if err := s.progress.WaitFor(ctx, floor); err != nil {
			return err
		}
	}
}

// updateKey runs update for one key: decide gets the key's current state
// and returns the events to record (none: nothing to do).
func (s *Service) updateKey(ctx context.Context, apiKey string, decide func(k *domain.Key) ([]domain.Event, error)) error {
	return s.update(ctx, domain.CategoryKey, apiKey, func() ([]domain.Event, uint64, error) {
		k, seq, _ := s.keys.Get(apiKey)
		events, err := decide(&k)
		return events, seq, err
	})
}

// withRequest keeps the admin's signed request in each event.
func withRequest(events []domain.Event, req *domain.SignedRequest) []domain.Event {
	for i := range events {
		events[i].Request = req
	}
	return events
}

// updateUser runs load-decide-append for one user.
func (s *Service) updateUser(ctx context.Context, userID string, decide func(u *domain.User) ([]domain.Event, error)) error {
	return s.update(ctx, domain.CategoryUser, userID, func() ([]domain.Event, uint64, error) {
		u, seq, _ := s.users.Get(userID)
		events, err := decide(&u)
		return events, seq, err
	})
}
