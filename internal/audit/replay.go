package audit

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// Filter selects the events Replay emits. Zero fields select everything.
type Filter struct {
	Key     string    // one API key's events
	User    string    // a user's own events and those of every key the user owns
	Team    string    // a team's events and those of every key the team owns
	Type    string    // one event type, e.g. "key.revoked"
	Since   time.Time // events at or after
	Until   time.Time // events before
	FromSeq uint64    // stream sequences at or after
	ToSeq   uint64    // stream sequences at or before
	// Forged includes messages the ledger did not write, marked as such.
	Forged bool
}

// Record is one replayed event: its place in the log and what it says.
type Record struct {
	Seq       uint64          `json:"seq"`
	Time      time.Time       `json:"time"`
	Type      string          `json:"type"`
	Aggregate string          `json:"aggregate"`
	Version   uint64          `json:"version,omitempty"`
	Actor     string          `json:"actor,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Forged    string          `json:"forged,omitempty"`
}

// Replay emits the events selected by f in log order, up to the head of
// the log at the call, or on and on if follow is set, until ctx ends.
// progress, if not nil, is called now and then with the sequence reached
// and the head. Errors: Unavailable, or emit's error.
func Replay(ctx context.Context, store *eventstore.Store, f Filter, follow bool, emit func(Record) error, progress func(seq, last uint64)) error {
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	if !follow && (head == 0 || (f.FromSeq > head)) {
		return nil
	}
	var subjects []string
	if f.Key != "" {
		subjects = []string{store.Subject(domain.CategoryKey, f.Key)}
		last, err := store.LastSequence(ctx, domain.CategoryKey, f.Key)
		if err != nil {
			return err
		}
		if (last == 0 || last < f.FromSeq) && !follow {
			return nil
		}
	}
	from := max(f.FromSeq, 1)
	if f.User != "" || f.Team != "" {
		// Which keys are the user's (or the team's) is learnt from their key.created
		// events, which may come before FromSeq: read from the start and
		// emit from FromSeq on.
		from = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan eventstore.RawMessage, 1024)
	sub, err := store.SubscribeSubjects(ctx, from, subjects, func(m eventstore.RawMessage) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}, nil)
	if err != nil {
		return err
	}
	defer sub.Stop()

	owned := map[string]bool{} // keys of f.User
	var seen uint64
	for {
		var m eventstore.RawMessage
		select {
		case <-ctx.Done():
			if follow && errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			return ctx.Err()
		case m = <-msgs:
		}
		if m.Seq <= seen {
			continue
		}
		seen = m.Seq
		if progress != nil && m.Seq%10000 == 0 {
			progress(m.Seq, head)
		}
		if f.ToSeq > 0 && m.Seq > f.ToSeq {
			return nil
		}
		if rec, ok := selectRecord(ctx, store, m, f, owned); ok && m.Seq >= f.FromSeq {
			if err := emit(rec); err != nil {
				return err
			}
		}
		if !follow && (m.Seq >= head || m.Pending == 0) {
			if progress != nil {
				progress(m.Seq, head)
			}
			return nil
		}
	}
}

// selectRecord decodes m and applies the filter.
func selectRecord(ctx context.Context, store *eventstore.Store, m eventstore.RawMessage, f Filter, owned map[string]bool) (Record, bool) {
	e, err := store.Decode(ctx, m)
	rec := Record{Seq: m.Seq, Time: m.Time.UTC(), Type: e.Type, Aggregate: e.Aggregate, Version: e.Version, Actor: e.Actor}
	switch {
	case errors.Is(err, eventstore.ErrForged):
		if !f.Forged {
			return Record{}, false
		}
		rec.Forged, rec.Data = err.Error(), json.RawMessage(nil)
	case err != nil && !errors.Is(err, domain.ErrUnknownEventType):
		return Record{}, false
	default:
		rec.Time = e.Time
		if e.Data != nil {
			rec.Data, _ = json.Marshal(e.Data)
		}
	}
	if f.User != "" {
		if d, ok := e.Data.(domain.KeyCreated); ok && d.UserID == f.User && d.TeamID == "" && err == nil {
			owned[e.Aggregate] = true
		}
		linked, _ := e.Data.(domain.IdentityLinked)
		mine := (e.Category() == domain.CategoryUser && e.Aggregate == f.User) ||
			(e.Category() == domain.CategoryKey && owned[e.Aggregate]) ||
			(e.Category() == domain.CategoryIdentity && linked.UserID == f.User && err == nil)
		if !mine {
			return Record{}, false
		}
	}
	if f.Team != "" {
		if d, ok := e.Data.(domain.KeyCreated); ok && d.TeamID == f.Team && err == nil {
			owned[e.Aggregate] = true
		}
		if !(e.Category() == domain.CategoryTeam && e.Aggregate == f.Team) && !(e.Category() == domain.CategoryKey && owned[e.Aggregate]) {
			return Record{}, false
		}
	}
	if f.Key != "" && (e.Category() != domain.CategoryKey || e.Aggregate != f.Key) {
		return Record{}, false
	}
	if f.Type != "" && rec.Type != f.Type {
		return Record{}, false
	}
	if !f.Since.IsZero() && rec.Time.Before(f.Since) {
		return Record{}, false
	}
	if !f.Until.IsZero() && !rec.Time.Before(f.Until) {
		return Record{}, false
	}
	return rec, true
}

// KeyAt reconstructs an API key as of a point in the log: time at (zero:
// now) or, if atSeq > 0, stream sequence atSeq. It folds the key's events
// with domain.Key.Apply, the fold every projection uses, and returns the
// state and the events folded. Errors: NotFound when the key did not exist
// then, Unavailable.
func KeyAt(ctx context.Context, store *eventstore.Store, apiKey string, at time.Time, atSeq uint64) (domain.Key, []domain.Event, error) {
	events, _, err := store.Load(ctx, domain.CategoryKey, apiKey)
	if err != nil {
		return domain.Key{}, nil, err
	}
	var k domain.Key
	var folded []domain.Event
	for _, e := range events {
		if !inRange(e, at, atSeq) {
			break
		}
		if err := k.Apply(e); err != nil {
			return domain.Key{}, nil, domain.Wrap(domain.Internal, err, "the key's history does not fold")
		}
		folded = append(folded, e)
	}
	if !k.Exists() {
		return domain.Key{}, nil, domain.Errorf(domain.NotFound, "api key %s did not exist then", apiKey)
	}
	return k, folded, nil
}

// UserAt is KeyAt for a user.
func UserAt(ctx context.Context, store *eventstore.Store, userID string, at time.Time, atSeq uint64) (domain.User, []domain.Event, error) {
	events, _, err := store.Load(ctx, domain.CategoryUser, userID)
	if err != nil {
		return domain.User{}, nil, err
	}
	var u domain.User
	var folded []domain.Event
	for _, e := range events {
		if !inRange(e, at, atSeq) {
			break
		}
		if err := u.Apply(e); err != nil {
			return domain.User{}, nil, domain.Wrap(domain.Internal, err, "the user's history does not fold")
		}
		folded = append(folded, e)
	}
	if !u.Exists() {
		return domain.User{}, nil, domain.Errorf(domain.NotFound, "user %s did not exist then", userID)
	}
	return u, folded, nil
}

// TeamAt is KeyAt for a team: its members, roles and service accounts
// at that point.
func TeamAt(ctx context.Context, store *eventstore.Store, teamID string, at time.Time, atSeq uint64) (domain.Team, []domain.Event, error) {
	events, _, err := store.Load(ctx, domain.CategoryTeam, teamID)
	if err != nil {
		return domain.Team{}, nil, err
	}
	var t domain.Team
	var folded []domain.Event
	for _, e := range events {
		if !inRange(e, at, atSeq) {
			break
		}
		if err := t.Apply(e); err != nil {
			return domain.Team{}, nil, domain.Wrap(domain.Internal, err, "the team's history does not fold")
		}
		folded = append(folded, e)
	}
	if !t.Exists() {
		return domain.Team{}, nil, domain.Errorf(domain.NotFound, "team %s did not exist then", teamID)
	}
	return t, folded, nil
}

func inRange(e domain.Event, at time.Time, atSeq uint64) bool {
	if atSeq > 0 {
		return e.Sequence <= atSeq
	}
	return at.IsZero() || !e.Time.After(at)
}
