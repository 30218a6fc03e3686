package limits

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/keyledger/keyledger/domain"
)

// Bounds of a record, checked when one is read: anything outside them is
// refused (the decision fails closed) rather than trusted.
const (
	// maxCount bounds every counter of a record, far above MaxRateLimit
	// and MaxCredits and exactly representable in JSON numbers.
	maxCount = 1 << 53
	// maxLeases bounds the credit leases of one record: one per live
	// node, and those of dead nodes until they expire.
	maxLeases = 256
	// maxLeaseID bounds a lease's holder id.
	maxLeaseID = 128
	// maxRecordBytes bounds a record's encoding (and the bucket's
	// messages).
	maxRecordBytes = 32 * 1024
	// recordVersion is the one version of both records.
	recordVersion = 1
)

// errBadRecord is wrapped by every refusal of a malformed record.
var errBadRecord = errors.New("malformed limits record")

// rateRecord counts the tokens the nodes have taken for one key in one
// window: kept under rl.<key>.<window seconds>.<window index>.
type rateRecord struct {
	V int `json:"v"`
	// Limit is the limit of the policy of the last write (for people
	// reading the bucket; the node's policy decides).
	Limit uint64 `json:"limit"`
	// Taken counts the tokens leased out in the window, given back ones
	// subtracted.
	Taken uint64 `json:"taken"`
}

// creditRecord is one key's shared pool of credits: kept under
// cr.<key>.
type creditRecord struct {
	V int `json:"v"`
	// Epoch is the policy's epoch (domain.CreditPolicy.Epoch) the pool
	// counts for.
	Epoch uint64 `json:"epoch"`
	// Period is the refill period the pool was last refilled for.
	Period int64 `json:"period"`
	// Added is the policy's cumulative top-ups already in the pool.
	Added uint64 `json:"added"`
	// Pool is what no node holds: the credits left, leases apart.
	Pool uint64 `json:"pool"`
	// Leases are what nodes hold.
	Leases []lease `json:"leases,omitempty"`
}

// lease is credits one node took from the pool: at most Amount of them
// may still be used by it, until Expires.
type lease struct {
	// ID is the holder: its node name and a random suffix of the
	// Limiter that took it.
	ID     string `json:"id"`
	Amount uint64 `json:"amount"`
	// Expires is Unix milliseconds by the holder's wall clock; the
	// holder stops using the lease earlier by its monotonic clock.
	Expires int64 `json:"expires"`
}

// decodeStrict decodes one JSON object into v: member names exact (case
// sensitive), none unknown or repeated, no trailing data, valid UTF-8, at
// most maxRecordBytes.
func decodeStrict(data []byte, v any) error {
	if len(data) > maxRecordBytes {
		return fmt.Errorf("%w: %d bytes", errBadRecord, len(data))
	}
	if err := json.Unmarshal(data, v, json.RejectUnknownMembers(true)); err != nil {
		return fmt.Errorf("%w: %v", errBadRecord, err)
	}
	return nil
}

// decodeRate reads a rate record, refusing any that is malformed.
func decodeRate(data []byte) (rateRecord, error) {
	var r rateRecord
	if err := decodeStrict(data, &r); err != nil {
		return rateRecord{}, err
	}
	if r.V != recordVersion || r.Limit < 1 || r.Limit > domain.MaxRateLimit || r.Taken > maxCount {
		return rateRecord{}, fmt.Errorf("%w: rate record out of bounds", errBadRecord)
	}
	return r, nil
}

// encode writes the record.
func (r rateRecord) encode() []byte {
	r.V = recordVersion
	b, _ := json.Marshal(r) // a struct of numbers: cannot fail
	return b
}

// decodeCredits reads a credits record, refusing any that is malformed.
func decodeCredits(data []byte) (creditRecord, error) {
	var r creditRecord
	if err := decodeStrict(data, &r); err != nil {
		return creditRecord{}, err
	}
	if err := r.check(); err != nil {
		return creditRecord{}, err
	}
	if len(r.Leases) == 0 {
		r.Leases = nil
	}
	return r, nil
}

// check checks a credits record's bounds.
func (r *creditRecord) check() error {
	bad := func(what string) error { return fmt.Errorf("%w: credits record: %s", errBadRecord, what) }
	if r.V != recordVersion {
		return bad("version")
	}
	if r.Epoch > maxCount || r.Period < 0 || r.Period > maxCount || r.Added > maxCount || r.Pool > maxCount {
		return bad("counter out of bounds")
	}
	if len(r.Leases) > maxLeases {
		return bad("too many leases")
	}
	var sum uint64
	seen := make(map[string]bool, len(r.Leases))
	for _, l := range r.Leases {
		if !validLeaseID(l.ID) || seen[l.ID] {
			return bad("lease id")
		}
		seen[l.ID] = true
		if l.Amount < 1 || l.Amount > maxCount || l.Expires <= 0 {
			return bad("lease out of bounds")
		}
		sum += l.Amount
		if sum > maxCount {
			return bad("leases out of bounds")
		}
	}
	return nil
}

// encode writes the record.
func (r creditRecord) encode() []byte {
	r.V = recordVersion
	b, _ := json.Marshal(r) // numbers and checked ASCII strings: cannot fail
	return b
}

// validLeaseID reports whether s is a lease id: 1 to maxLeaseID printable
// ASCII characters without spaces or quotes.
func validLeaseID(s string) bool {
	if len(s) < 1 || len(s) > maxLeaseID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// satAdd adds without passing maxCount.
func satAdd(a, b uint64) uint64 {
	if a > maxCount || b > maxCount-a {
		return maxCount
	}
	return a + b
}

// freshCredits is the record of a policy nothing was spent under yet, at
// time now: the initial credits and the top-ups, refilled to the refill's
// amount if a refill came due since the policy was set.
func freshCredits(p domain.CreditPolicy, now time.Time) creditRecord {
	period, _ := p.PeriodAt(now)
	pool := satAdd(p.Initial, p.Added)
	if p.Refill != nil && period > 0 {
		pool = max(pool, p.Refill.Amount)
	}
	return creditRecord{V: recordVersion, Epoch: p.Epoch, Period: period, Added: min(p.Added, maxCount), Pool: min(pool, maxCount)}
}

// settle brings the record to the policy at time now (the node's clock,
// for refills) and removes the leases that expired before wall minus
// skew (the node's wall clock, for leases). Only ever forward: a policy of
// an older epoch than the record's (a node whose read model lags) changes
// nothing but the expired leases. It returns the credits of the leases it
// removed (expired, or voided by a refill or a new epoch), and whether
// anything changed.
func (r *creditRecord) settle(p domain.CreditPolicy, now, wall time.Time, skew time.Duration) (voided, expired uint64, changed bool) {
	switch {
	case p.Epoch > r.Epoch:
		for _, l := range r.Leases {
			voided = satAdd(voided, l.Amount)
		}
		*r = freshCredits(p, now)
		changed = true
	case p.Epoch == r.Epoch:
		if period, _ := p.PeriodAt(now); p.Refill != nil && period > r.Period {
			// The refill sets the credits back up to its amount: what the
			// nodes hold of the past period is void (they drop it when
			// they see the new period).
			for _, l := range r.Leases {
				voided = satAdd(voided, l.Amount)
			}
			r.Leases = nil
			r.Pool = max(r.Pool, min(p.Refill.Amount, maxCount))
			r.Period = period
			changed = true
		}
		if p.Added > r.Added {
			r.Pool = satAdd(r.Pool, min(p.Added, maxCount)-r.Added)
			r.Added = min(p.Added, maxCount)
			changed = true
		}
	}
	cut := wall.Add(-skew).UnixMilli()
	kept := r.Leases[:0]
	for _, l := range r.Leases {
		if l.Expires < cut {
			expired = satAdd(expired, l.Amount)
			changed = true
			continue
		}
		kept = append(kept, l)
	}
	if len(kept) == 0 {
		kept = nil
	}
	r.Leases = kept
	return voided, expired, changed
}

// leaseOf returns the index of the lease held by id, or -1.
func (r *creditRecord) leaseOf(id string) int {
	for i, l := range r.Leases {
		if l.ID == id {
			return i
		}
	}
	return -1
}

// held sums the leases.
func (r *creditRecord) held() uint64 {
	var s uint64
	for _, l := range r.Leases {
		s = satAdd(s, l.Amount)
	}
	return s
}
