package domain

import "time"

// AddCredits returns the events that top up the key's credits by n on
// behalf of userID, its owner (anyone else gets NotFound). Errors:
// NotFound, Conflict (revoked, no credits set, or more granted in the
// epoch than MaxCredits), Invalid (n not 1 to MaxCredits).
func (k *Key) AddCredits(userID string, n uint64, now time.Time) ([]Event, error) {
	if err := k.checkOwner(userID); err != nil {
		return nil, err
	}
	return k.addCreditsBy(userID, n, "", now)
}

// AddCreditsAsAdmin is AddCredits on behalf of an admin (actor
// "admin:<name>"), whoever owns the key, recording the reason. Errors:
// NotFound, Conflict, Invalid (n, reason).
func (k *Key) AddCreditsAsAdmin(actor string, n uint64, reason string, now time.Time) ([]Event, error) {
	if !k.Exists() {
		return nil, Errorf(NotFound, "api key not found")
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	return k.addCreditsBy(actor, n, reason, now)
}

func (k *Key) addCreditsBy(actor string, n uint64, reason string, now time.Time) ([]Event, error) {
	if k.Revoked() {
		return nil, Errorf(Conflict, "key is revoked")
	}
	if k.Credits == nil {
		return nil, Errorf(Conflict, "the key has no credits to add to: set credits first")
	}
	if err := k.Credits.checkTopUp(n); err != nil {
		return nil, err
	}
	return k.record(k.APIKey, actor, now, KeyCreditsAdded{Add: n, Reason: reason})
}
