package audit_test

import (
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
)

// TestVerify_AdminLimits: an admin's PATCH of a key's limits (one event
// per changed limit, one request) and top-up verify clean; a kept top-up
// request replayed, or kept in an event its route does not cause, is
// named.
func TestVerify_AdminLimits(t *testing.T) {
	t.Parallel()
	a := newAdminLog(t)
	ctx := ledgertest.Context(t)
	rate := &domain.RateLimit{Limit: 5, Window: domain.Period(time.Minute)}
	edit := a.ops.sign(t, "PATCH", "/admin/keys/"+a.k3, `{"rate_limit":{"limit":5,"window":"1m"},"credits":{"remaining":10}}`)
	if _, err := a.l.Service.AdminEditKey(ctx, ledger.AdminEditKey{Actor: a.ops.actor(), APIKey: a.k3, Request: edit,
		Edit: domain.KeyEdit{SetRateLimit: true, RateLimit: rate, SetCredits: true, Credits: &domain.Credits{Remaining: 10}}}); err != nil {
		t.Fatalf("AdminEditKey: %v", err)
	}
	topUp := a.ops.sign(t, "POST", "/admin/keys/"+a.k3+"/credits", `{"add":5}`)
	if _, err := a.l.Service.AdminAddCredits(ctx, ledger.AdminAddCredits{Actor: a.ops.actor(), APIKey: a.k3, Add: 5, Request: topUp}); err != nil {
		t.Fatalf("AdminAddCredits: %v", err)
	}
	checkProblems(t, verify(t, a.l.Conn, nil))

	var wants []want
	// The top-up's request, kept again: one more top-up nobody asked for.
	seq := a.forge(t, domain.CategoryKey, a.k3, a.ops.actor(), domain.KeyCreditsAdded{Add: 5}, topUp)
	wants = append(wants, want{seq: seq, aggregate: a.k3, what: []string{"the same signed request as sequence"}})
	// A top-up request for k3 kept in credits set anew.
	other := a.ops.sign(t, "POST", "/admin/keys/"+a.k3+"/credits", `{"add":6}`)
	seq = a.forge(t, domain.CategoryKey, a.k3, a.ops.actor(), domain.KeyCreditsChanged{Credits: &domain.Credits{Remaining: 1}}, other)
	wants = append(wants, want{seq: seq, aggregate: a.k3, what: []string{"which does not cause it", "PATCH /admin/keys/" + a.k3}})
	// A PATCH request kept in a top-up.
	patch := a.ops.sign(t, "PATCH", "/admin/keys/"+a.k3, `{"credits":{"remaining":1}}`)
	seq = a.forge(t, domain.CategoryKey, a.k3, a.ops.actor(), domain.KeyCreditsAdded{Add: 1}, patch)
	wants = append(wants, want{seq: seq, aggregate: a.k3, what: []string{"which does not cause it", "POST /admin/keys/" + a.k3 + "/credits"}})
	checkProblems(t, verify(t, a.l.Conn, nil), wants...)
}
