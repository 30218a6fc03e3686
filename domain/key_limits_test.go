package domain_test

import (
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

var (
	perMinute = &domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)}
	hundred   = &domain.Credits{Remaining: 100, Refill: &domain.Refill{Amount: 50, Interval: domain.Period(time.Hour)}}
)

// limitedKey is apiKey created at t0 with a rate limit and credits.
func limitedKey() domain.Event {
	e := keyCreated(t0, domain.KeyCreated{SecretHash: hashA, RateLimit: perMinute, Credits: hundred})
	e.Schema = domain.KeyLimitsSchema
	return e
}

func TestKey_CreateWithLimits(t *testing.T) {
	t.Parallel()
	cmd := domain.CreateKey{APIKey: apiKey, UserID: alice, SecretHash: hashA, PublicKey: pubA,
		RateLimit: perMinute, Credits: hundred}
	with := func(edit func(c *domain.CreateKey)) domain.CreateKey { c := cmd; edit(&c); return c }
	runKeyCases(t, []keyCase{
		{name: "OK", when: create(cmd, t0), want: []domain.Event{limitedKey()}},
		{name: "PlainStaysSchema3", when: create(with(func(c *domain.CreateKey) { c.RateLimit, c.Credits = nil, nil }), t0),
			want: []domain.Event{keyCreated(t0, domain.KeyCreated{SecretHash: hashA})}},
		{name: "ZeroCredits", when: create(with(func(c *domain.CreateKey) { c.RateLimit, c.Credits = nil, &domain.Credits{} }), t0),
			want: []domain.Event{func() domain.Event {
				e := keyCreated(t0, domain.KeyCreated{SecretHash: hashA, Credits: &domain.Credits{}})
				e.Schema = 4
				return e
			}()}},
		{name: "ErrLimitZero", when: create(with(func(c *domain.CreateKey) { c.RateLimit = &domain.RateLimit{Window: domain.Period(time.Second)} }), t0),
			wantKind: domain.Invalid},
		{name: "ErrLimitTooHigh", when: create(with(func(c *domain.CreateKey) {
			c.RateLimit = &domain.RateLimit{Limit: domain.MaxRateLimit + 1, Window: domain.Period(time.Second)}
		}), t0), wantKind: domain.Invalid},
		{name: "ErrWindowTooLong", when: create(with(func(c *domain.CreateKey) {
			c.RateLimit = &domain.RateLimit{Limit: 1, Window: domain.Period(48 * time.Hour)}
		}), t0), wantKind: domain.Invalid},
		{name: "ErrWindowSubSecond", when: create(with(func(c *domain.CreateKey) {
			c.RateLimit = &domain.RateLimit{Limit: 1, Window: domain.Period(1500 * time.Millisecond)}
		}), t0), wantKind: domain.Invalid},
		{name: "ErrCreditsTooMany", when: create(with(func(c *domain.CreateKey) {
			c.Credits = &domain.Credits{Remaining: domain.MaxCredits + 1}
		}), t0), wantKind: domain.Invalid},
		{name: "ErrRefillZero", when: create(with(func(c *domain.CreateKey) {
			c.Credits = &domain.Credits{Remaining: 1, Refill: &domain.Refill{Interval: domain.Period(time.Hour)}}
		}), t0), wantKind: domain.Invalid},
		{name: "ErrRefillTooOften", when: create(with(func(c *domain.CreateKey) {
			c.Credits = &domain.Credits{Remaining: 1, Refill: &domain.Refill{Amount: 1, Interval: domain.Period(time.Second)}}
		}), t0), wantKind: domain.Invalid},
	})
}

func TestKey_EditLimits(t *testing.T) {
	t.Parallel()
	plain := keyCreated(t0, domain.KeyCreated{})
	edit := func(e domain.KeyEdit) func(*domain.Key) ([]domain.Event, error) {
		return func(k *domain.Key) ([]domain.Event, error) { return k.Edit(alice, e, t1) }
	}
	perSecond := &domain.RateLimit{Limit: 5, Window: domain.Period(time.Second)}
	runKeyCases(t, []keyCase{
		{name: "SetBoth", given: []domain.Event{plain},
			when: edit(domain.KeyEdit{SetRateLimit: true, RateLimit: perMinute, SetCredits: true, Credits: hundred}),
			want: []domain.Event{
				keyEvent(2, t1, domain.KeyRateLimitChanged{RateLimit: perMinute}),
				keyEvent(3, t1, domain.KeyCreditsChanged{Credits: hundred}),
			}},
		{name: "ChangeRateLimit", given: []domain.Event{limitedKey()},
			when: edit(domain.KeyEdit{SetRateLimit: true, RateLimit: perSecond}),
			want: []domain.Event{keyEvent(2, t1, domain.KeyRateLimitChanged{RateLimit: perSecond})}},
		{name: "SameRateLimitNoEvent", given: []domain.Event{limitedKey()},
			when: edit(domain.KeyEdit{SetRateLimit: true, RateLimit: &domain.RateLimit{Limit: 100, Window: domain.Period(time.Minute)}})},
		{name: "SameCreditsNewEpoch", given: []domain.Event{limitedKey()},
			when: edit(domain.KeyEdit{SetCredits: true, Credits: hundred}),
			want: []domain.Event{keyEvent(2, t1, domain.KeyCreditsChanged{Credits: hundred})}},
		{name: "Remove", given: []domain.Event{limitedKey()},
			when: edit(domain.KeyEdit{SetRateLimit: true, SetCredits: true}),
			want: []domain.Event{
				keyEvent(2, t1, domain.KeyRateLimitChanged{}),
				keyEvent(3, t1, domain.KeyCreditsChanged{}),
			}},
		{name: "RemoveNoneNoEvent", given: []domain.Event{plain}, when: edit(domain.KeyEdit{SetRateLimit: true, SetCredits: true})},
		{name: "Unchanged", given: []domain.Event{limitedKey()}, when: edit(domain.KeyEdit{})},
		{name: "AsAdmin", given: []domain.Event{plain},
			when: func(k *domain.Key) ([]domain.Event, error) {
				return k.EditAsAdmin("admin:root", domain.KeyEdit{SetRateLimit: true, RateLimit: perSecond}, t1)
			},
			want: []domain.Event{asActor(keyEvent(2, t1, domain.KeyRateLimitChanged{RateLimit: perSecond}), "admin:root")}},
		{name: "ErrNotOwner", given: []domain.Event{plain},
			when: func(k *domain.Key) ([]domain.Event, error) {
				return k.Edit(bob, domain.KeyEdit{SetRateLimit: true, RateLimit: perSecond}, t1)
			}, wantKind: domain.NotFound},
		{name: "ErrRevoked", given: []domain.Event{limitedKey(), keyRevoked(2, t1)},
			when: edit(domain.KeyEdit{SetCredits: true, Credits: hundred}), wantKind: domain.Conflict},
		{name: "ErrBadRateLimit", given: []domain.Event{plain},
			when:     edit(domain.KeyEdit{SetRateLimit: true, RateLimit: &domain.RateLimit{Limit: 0, Window: domain.Period(time.Second)}}),
			wantKind: domain.Invalid},
		{name: "ErrBadCredits", given: []domain.Event{plain},
			when:     edit(domain.KeyEdit{SetCredits: true, Credits: &domain.Credits{Remaining: domain.MaxCredits + 1}}),
			wantKind: domain.Invalid},
	})
}

func TestKey_AddCredits(t *testing.T) {
	t.Parallel()
	add := func(user string, n uint64) func(*domain.Key) ([]domain.Event, error) {
		return func(k *domain.Key) ([]domain.Event, error) { return k.AddCredits(user, n, t1) }
	}
	addAdmin := func(n uint64, reason string) func(*domain.Key) ([]domain.Event, error) {
		return func(k *domain.Key) ([]domain.Event, error) { return k.AddCreditsAsAdmin("admin:root", n, reason, t1) }
	}
	full := keyCreated(t0, domain.KeyCreated{Credits: &domain.Credits{Remaining: domain.MaxCredits - 10}})
	full.Schema = 4
	runKeyCases(t, []keyCase{
		{name: "Owner", given: []domain.Event{limitedKey()}, when: add(alice, 25),
			want: []domain.Event{keyEvent(2, t1, domain.KeyCreditsAdded{Add: 25})}},
		{name: "Admin", given: []domain.Event{limitedKey()}, when: addAdmin(25, "goodwill"),
			want: []domain.Event{asActor(keyEvent(2, t1, domain.KeyCreditsAdded{Add: 25, Reason: "goodwill"}), "admin:root")}},
		{name: "UpToTheBound", given: []domain.Event{full}, when: add(alice, 10),
			want: []domain.Event{keyEvent(2, t1, domain.KeyCreditsAdded{Add: 10})}},
		{name: "ErrPastTheBound", given: []domain.Event{full}, when: add(alice, 11), wantKind: domain.Conflict},
		{name: "ErrZero", given: []domain.Event{limitedKey()}, when: add(alice, 0), wantKind: domain.Invalid},
		{name: "ErrTooMany", given: []domain.Event{limitedKey()}, when: add(alice, domain.MaxCredits+1), wantKind: domain.Invalid},
		{name: "ErrNoCredits", given: []domain.Event{keyCreated(t0, domain.KeyCreated{})}, when: add(alice, 1), wantKind: domain.Conflict},
		{name: "ErrRevoked", given: []domain.Event{limitedKey(), keyRevoked(2, t1)}, when: add(alice, 1), wantKind: domain.Conflict},
		{name: "ErrNotOwner", given: []domain.Event{limitedKey()}, when: add(bob, 1), wantKind: domain.NotFound},
		{name: "ErrMissing", when: add(alice, 1), wantKind: domain.NotFound},
		{name: "ErrAdminMissing", when: addAdmin(1, ""), wantKind: domain.NotFound},
		{name: "ErrAdminBadReason", given: []domain.Event{limitedKey()}, when: addAdmin(1, "bad\xffreason"), wantKind: domain.Invalid},
	})
}

// TestKey_ApplyLimits: the fold keeps the credit epoch (the version and
// time of the event that set the credits), sums top-ups within it and
// starts over on key.credits_changed; it replaces the limits it holds,
// never changes them in place, so a copy of a key keeps what it saw.
func TestKey_ApplyLimits(t *testing.T) {
	t.Parallel()
	k := givenKey(t, limitedKey())
	if k.RateLimit == nil || *k.RateLimit != *perMinute {
		t.Fatalf("RateLimit: got %+v, want %+v", k.RateLimit, perMinute)
	}
	want := domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 100, Refill: hundred.Refill}
	checkPolicy(t, k.Credits, want)
	before := k
	seen := k.Limits()
	for i, d := range []domain.EventData{domain.KeyCreditsAdded{Add: 7}, domain.KeyCreditsAdded{Add: 3}} {
		if err := k.Apply(keyEvent(uint64(i+2), t1, d)); err != nil {
			t.Fatal(err)
		}
	}
	want.Added = 10
	checkPolicy(t, k.Credits, want)
	checkPolicy(t, before.Credits, domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 100, Refill: hundred.Refill})
	checkPolicy(t, seen.Credits, domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 100, Refill: hundred.Refill})

	if err := k.Apply(keyEvent(4, t2, domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: 5}})); err != nil {
		t.Fatal(err)
	}
	checkPolicy(t, k.Credits, domain.CreditPolicy{Epoch: 4, Since: t2, Initial: 5})
	if err := k.Apply(keyEvent(5, t2, domain.KeyRateLimitChanged{})); err != nil {
		t.Fatal(err)
	}
	if k.RateLimit != nil || seen.RateLimit == nil {
		t.Errorf("RateLimit: got %+v (earlier view %+v), want nil (and the earlier view unchanged)", k.RateLimit, seen.RateLimit)
	}
	if err := k.Apply(keyEvent(6, t2, domain.KeyCreditsChanged{})); err != nil {
		t.Fatal(err)
	}
	if k.Credits != nil || k.Limits() != nil {
		t.Errorf("Credits: got %+v, want none", k.Credits)
	}
}

// TestKey_ApplyRefusesBadLimits: a log is not believed beyond what
// commands may write: limits out of bounds, and top-ups of a key without
// credits or past the bound, do not fold.
func TestKey_ApplyRefusesBadLimits(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name  string
		given []domain.Event
		e     domain.Event
	}{
		{"CreatedZeroLimit", nil, func() domain.Event {
			e := keyCreated(t0, domain.KeyCreated{RateLimit: &domain.RateLimit{Window: domain.Period(time.Second)}})
			e.Schema = 4
			return e
		}()},
		{"RateLimitTooLong", []domain.Event{limitedKey()},
			keyEvent(2, t1, domain.KeyRateLimitChanged{RateLimit: &domain.RateLimit{Limit: 1, Window: domain.Period(30 * 24 * time.Hour)}})},
		{"CreditsTooMany", []domain.Event{limitedKey()},
			keyEvent(2, t1, domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: domain.MaxCredits + 1}})},
		{"AddWithoutCredits", []domain.Event{keyCreated(t0, domain.KeyCreated{})}, keyEvent(2, t1, domain.KeyCreditsAdded{Add: 1})},
		{"AddZero", []domain.Event{limitedKey()}, keyEvent(2, t1, domain.KeyCreditsAdded{})},
		{"AddOverflow", []domain.Event{limitedKey()}, keyEvent(2, t1, domain.KeyCreditsAdded{Add: ^uint64(0) - 50})},
		{"AddToRevoked", []domain.Event{limitedKey(), keyRevoked(2, t1)}, keyEvent(3, t1, domain.KeyCreditsAdded{Add: 1})},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			k := givenKey(t, tc.given...)
			if err := k.Apply(tc.e); err == nil {
				t.Errorf("Apply(%s): got nil, want an error", showData(tc.e.Data))
			}
		})
	}
}

func checkPolicy(t *testing.T, got *domain.CreditPolicy, want domain.CreditPolicy) {
	t.Helper()
	if got == nil {
		t.Fatalf("Credits: got nil, want %+v", want)
	}
	same := got.Epoch == want.Epoch && got.Since.Equal(want.Since) && got.Initial == want.Initial && got.Added == want.Added &&
		(got.Refill == nil) == (want.Refill == nil) && (got.Refill == nil || *got.Refill == *want.Refill)
	if !same {
		t.Errorf("Credits: got %+v, want %+v", *got, want)
	}
}

func TestCreditPolicy_Granted(t *testing.T) {
	t.Parallel()
	p := domain.CreditPolicy{Epoch: 1, Since: t0, Initial: 10, Added: 5,
		Refill: &domain.Refill{Amount: 100, Interval: domain.Period(time.Hour)}}
	tests := []struct {
		p    domain.CreditPolicy
		at   time.Time
		want uint64
		next time.Time
	}{
		{p, t0, 15, t1},
		{p, t1.Add(-time.Nanosecond), 15, t1},
		{p, t1, 100, t2},
		{p, t0.Add(-time.Hour), 15, t1},
		{domain.CreditPolicy{Since: t0, Initial: 150, Refill: p.Refill}, t2, 150, t2.Add(time.Hour)},
		{domain.CreditPolicy{Since: t0, Initial: 7, Added: 3}, t2, 10, time.Time{}},
	}
	for i, tc := range tests {
		if got := tc.p.Granted(tc.at); got != tc.want {
			t.Errorf("%d: Granted(%v): got %d, want %d", i, tc.at, got, tc.want)
		}
		if got := tc.p.NextRefill(tc.at); !got.Equal(tc.next) {
			t.Errorf("%d: NextRefill(%v): got %v, want %v", i, tc.at, got, tc.next)
		}
	}
}
