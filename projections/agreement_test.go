package projections_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections"
)

// agreementHistory is one key's history, appended to a real log step by
// step, with what every read model must answer after each step.
type agreementHistory struct {
	t      *testing.T
	log    *logEnv
	userID string
	apiKey string
	secret domain.Secret   // the current secret
	old    []domain.Secret // secrets regenerated away
	seqOf  map[string]uint64
	verOf  map[string]uint64
	n      byte // secrets made so far
}

func (h *agreementHistory) newSecret() domain.Secret {
	h.n++
	return lookupSecret(h.t, h.n)
}

// append stores one event of aggregate after its last one.
func (h *agreementHistory) append(aggregate string, data domain.EventData) uint64 {
	h.t.Helper()
	h.verOf[aggregate]++
	v := h.verOf[aggregate]
	e := domain.Event{Type: data.EventType(), Schema: domain.SchemaFor(data), Aggregate: aggregate,
		Version: v, Time: t0.Add(time.Duration(v) * time.Minute), Actor: h.userID, Data: data}
	seq := h.log.append(h.t, eventstore.Pending{Event: e, ExpectedSeq: h.seqOf[aggregate]})[0]
	h.seqOf[aggregate] = seq
	return seq
}

func (h *agreementHistory) create(signedOnly bool, expires *time.Time) uint64 {
	h.secret = h.newSecret()
	return h.append(h.apiKey, domain.KeyCreated{UserID: h.userID, Name: "agreement", SecretHash: h.secret.Hash(),
		PublicKey: domain.PublicKey{0x0c, 31: h.n}, SignedOnly: signedOnly, ExpiresAt: expires})
}

// createLimited creates the key with a rate limit and credits.
func (h *agreementHistory) createLimited() uint64 {
	h.secret = h.newSecret()
	return h.append(h.apiKey, domain.KeyCreated{UserID: h.userID, Name: "agreement", SecretHash: h.secret.Hash(),
		PublicKey: domain.PublicKey{0x0c, 31: h.n}, RateLimit: &domain.RateLimit{Limit: 10, Window: domain.Period(time.Second)},
		Credits: &domain.Credits{Remaining: 100, Refill: &domain.Refill{Amount: 100, Interval: domain.Period(time.Hour)}}})
}

func (h *agreementHistory) regenerate() uint64 {
	h.old = append(h.old, h.secret)
	h.secret = h.newSecret()
	return h.append(h.apiKey, domain.KeySecretRegenerated{SecretHash: h.secret.Hash(), PublicKey: domain.PublicKey{0x0d, 31: h.n}})
}

func (h *agreementHistory) revoke() uint64 { return h.append(h.apiKey, domain.KeyRevoked{}) }

func (h *agreementHistory) disable() uint64 {
	return h.append(h.userID, domain.UserDisabled{Reason: "test"})
}

func (h *agreementHistory) enable() uint64 {
	return h.append(h.userID, domain.UserEnabled{Reason: "test"})
}

// agreementInstant is what the read models must answer at t0+at.
type agreementInstant struct {
	at     time.Duration
	secret domain.Reason    // a validation with the current secret
	signer domain.Reason    // whether the key may sign
	status domain.KeyStatus // the key's status in its owner's listing
}

// TestReadModelsAgree feeds the same histories through one projector to the
// validation lookup and to the listings (Keys, with Users for the owner),
// and demands the same answers from both at several instants: the
// lookup's packed keys and the listing's whole keys are decided by the
// same domain rule, so a key refused for being revoked or expired is
// listed so, and a key the lookup accepts is listed active.
func TestReadModelsAgree(t *testing.T) {
	t.Parallel()
	l := newLog(t)
	keys, users, lookup := projections.NewKeys(), projections.NewUsers(), projections.NewLookup(0)
	p, err := projections.New(l.store, nil, keys, users, lookup)
	if err != nil {
		t.Fatalf("projections.New: %v", err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(p.Stop)

	expiry := t0.Add(time.Hour)
	usable := func(at time.Duration) agreementInstant {
		return agreementInstant{at, domain.ReasonOK, domain.ReasonOK, domain.StatusActive}
	}
	type step struct {
		name string
		do   func(h *agreementHistory) uint64
		want []agreementInstant
	}
	histories := []struct {
		name  string
		steps []step
	}{
		{"Created", []step{
			{"Create", func(h *agreementHistory) uint64 { return h.create(false, nil) },
				[]agreementInstant{usable(0), usable(time.Hour), usable(100 * 365 * 24 * time.Hour)}},
		}},
		{"Regenerated", []step{
			{"Create", func(h *agreementHistory) uint64 { return h.create(false, nil) }, []agreementInstant{usable(time.Minute)}},
			{"Regenerate", func(h *agreementHistory) uint64 { return h.regenerate() },
				[]agreementInstant{usable(time.Minute), usable(time.Hour)}},
			{"RegenerateAgain", func(h *agreementHistory) uint64 { return h.regenerate() }, []agreementInstant{usable(time.Hour)}},
		}},
		{"Revoked", []step{
			{"Create", func(h *agreementHistory) uint64 { return h.create(false, nil) }, []agreementInstant{usable(time.Minute)}},
			{"Revoke", func(h *agreementHistory) uint64 { return h.revoke() }, []agreementInstant{
				{time.Minute, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked},
				{2 * time.Hour, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked},
			}},
		}},
		{"ExpiredByTime", []step{
			{"CreateExpiring", func(h *agreementHistory) uint64 { return h.create(false, &expiry) }, []agreementInstant{
				usable(0),
				usable(time.Hour - time.Millisecond),
				{time.Hour, domain.ReasonExpired, domain.ReasonExpired, domain.StatusExpired},
				{2 * time.Hour, domain.ReasonExpired, domain.ReasonExpired, domain.StatusExpired},
			}},
			{"RevokeAfterExpiry", func(h *agreementHistory) uint64 { return h.revoke() }, []agreementInstant{
				{30 * time.Minute, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked},
				{2 * time.Hour, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked},
			}},
		}},
		{"OwnerDisabledAndEnabled", []step{
			{"Create", func(h *agreementHistory) uint64 { return h.create(false, &expiry) }, []agreementInstant{usable(time.Minute)}},
			{"DisableOwner", func(h *agreementHistory) uint64 { return h.disable() }, []agreementInstant{
				{time.Minute, domain.ReasonUserDisabled, domain.ReasonUserDisabled, domain.StatusActive},
				{2 * time.Hour, domain.ReasonExpired, domain.ReasonExpired, domain.StatusExpired},
			}},
			{"EnableOwner", func(h *agreementHistory) uint64 { return h.enable() }, []agreementInstant{
				usable(time.Minute),
				{2 * time.Hour, domain.ReasonExpired, domain.ReasonExpired, domain.StatusExpired},
			}},
			{"DisableAndRevoke", func(h *agreementHistory) uint64 { h.disable(); return h.revoke() }, []agreementInstant{
				{time.Minute, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked},
			}},
		}},
		{"Limits", []step{
			{"CreateLimited", func(h *agreementHistory) uint64 { return h.createLimited() }, []agreementInstant{usable(time.Minute)}},
			{"TopUp", func(h *agreementHistory) uint64 { return h.append(h.apiKey, domain.KeyCreditsAdded{Add: 5}) },
				[]agreementInstant{usable(time.Minute), usable(3 * time.Hour)}},
			{"ChangeRateLimit", func(h *agreementHistory) uint64 {
				return h.append(h.apiKey, domain.KeyRateLimitChanged{RateLimit: &domain.RateLimit{Limit: 1, Window: domain.Period(time.Hour)}})
			}, []agreementInstant{usable(time.Minute)}},
			{"CreditsAnew", func(h *agreementHistory) uint64 {
				return h.append(h.apiKey, domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: 3}})
			}, []agreementInstant{usable(time.Minute)}},
			{"RemoveRateLimit", func(h *agreementHistory) uint64 { return h.append(h.apiKey, domain.KeyRateLimitChanged{}) },
				[]agreementInstant{usable(time.Minute)}},
			{"RemoveCredits", func(h *agreementHistory) uint64 { return h.append(h.apiKey, domain.KeyCreditsChanged{}) },
				[]agreementInstant{usable(time.Minute)}},
			{"AddLimitsAndRevoke", func(h *agreementHistory) uint64 {
				h.append(h.apiKey, domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: 1}})
				return h.revoke()
			}, []agreementInstant{{time.Minute, domain.ReasonRevoked, domain.ReasonRevoked, domain.StatusRevoked}}},
		}},
		{"SignedOnly", []step{
			{"Create", func(h *agreementHistory) uint64 { return h.create(true, nil) }, []agreementInstant{
				{time.Minute, domain.ReasonSignedOnly, domain.ReasonOK, domain.StatusActive},
			}},
			{"DisableOwner", func(h *agreementHistory) uint64 { return h.disable() }, []agreementInstant{
				{time.Minute, domain.ReasonSignedOnly, domain.ReasonUserDisabled, domain.StatusActive},
			}},
			{"EnableOwnerAndRevoke", func(h *agreementHistory) uint64 { h.enable(); return h.revoke() }, []agreementInstant{
				{time.Minute, domain.ReasonSignedOnly, domain.ReasonRevoked, domain.StatusRevoked},
			}},
		}},
	}
	for i, hist := range histories {
		t.Run(hist.name, func(t *testing.T) {
			h := &agreementHistory{t: t, log: l, apiKey: newAPIKey(), seqOf: map[string]uint64{}, verOf: map[string]uint64{}}
			h.userID = l.registerUser(t, fmt.Sprintf("agreement%d@example.com", i))
			waitFor(t, p, l.head(t))
			u, seq, ok := users.Get(h.userID)
			if !ok {
				t.Fatalf("user %s not projected", h.userID)
			}
			h.seqOf[h.userID], h.verOf[h.userID] = seq, u.Version
			for _, st := range hist.steps {
				waitFor(t, p, st.do(h))
				for _, want := range st.want {
					checkAgreement(t, st.name, h, keys, users, lookup, want)
				}
			}
		})
	}
}

// checkAgreement asks the lookup and the listing about h's key at one
// instant.
func checkAgreement(t *testing.T, step string, h *agreementHistory, keys *projections.Keys, users *projections.Users,
	lookup *projections.Lookup, want agreementInstant) {
	t.Helper()
	now := t0.Add(want.at)
	at := fmt.Sprintf("%s, at t0+%v", step, want.at)

	// The validation lookup.
	res := lookup.Check(h.apiKey, h.secret, now)
	if res.Reason != want.secret || res.OK != (want.secret == domain.ReasonOK) {
		t.Errorf("%s: lookup Check: got %+v, want %v", at, res, want.secret)
	}
	if res.OK && res.UserID != h.userID {
		t.Errorf("%s: lookup Check: got owner %q, want %q", at, res.UserID, h.userID)
	}
	_, signer := lookup.Signer(h.apiKey, now)
	if signer.Reason != want.signer {
		t.Errorf("%s: lookup Signer: got %v, want %v", at, signer.Reason, want.signer)
	}

	// The owner's listing, with the owner from the users' read model.
	page, _, err := keys.ListByUser(h.userID, 10, "")
	if err != nil || len(page) != 1 || page[0].APIKey != h.apiKey {
		t.Fatalf("%s: ListByUser: got %v, %v, want the one key %s", at, apiKeys(page), err, h.apiKey)
	}
	k := page[0]
	owner, ok := users.ByID(h.userID)
	if !ok {
		t.Fatalf("%s: owner %s not in the users' read model", at, h.userID)
	}
	if got := k.StatusAt(now); got != want.status {
		t.Errorf("%s: listing status: got %v, want %v", at, got, want.status)
	}
	if got := k.CheckSecret(h.secret, owner.Disabled, now); got != res.Reason {
		t.Errorf("%s: listed key's CheckSecret: got %v, lookup says %v", at, got, res.Reason)
	}
	if got := k.Standing(owner.Disabled).DecideSigner(now); got != signer.Reason {
		t.Errorf("%s: listed key's DecideSigner: got %v, lookup says %v", at, got, signer.Reason)
	}

	// The listing's status follows from the lookup's decision: a key the
	// lookup refuses as revoked or expired is listed so, and every other
	// key (usable, or refused for its owner or credential) is active.
	wantStatus := domain.StatusActive
	switch signer.Reason {
	case domain.ReasonRevoked:
		wantStatus = domain.StatusRevoked
	case domain.ReasonExpired:
		wantStatus = domain.StatusExpired
	}
	if got := k.StatusAt(now); got != wantStatus {
		t.Errorf("%s: listing status %v disagrees with the lookup's %v", at, got, signer.Reason)
	}

	// A key the lookup accepts hands out the limits the listing shows.
	if res.OK {
		checkLimits(t, at+": lookup Limits vs listed key", res.Limits, k.Limits())
	}

	// Secrets regenerated away are refused by both.
	for _, old := range h.old {
		if got := lookup.Check(h.apiKey, old, now).Reason; got != domain.ReasonWrongSecret {
			t.Errorf("%s: lookup Check with an old secret: got %v, want %v", at, got, domain.ReasonWrongSecret)
		}
		if got := k.CheckSecret(old, owner.Disabled, now); got != domain.ReasonWrongSecret {
			t.Errorf("%s: listed key's CheckSecret with an old secret: got %v, want %v", at, got, domain.ReasonWrongSecret)
		}
	}
}
