package limits

import "time"

// SetIdle sets how long a key goes unused before the node gives back what
// it holds (tests keep leases still while they count them).
func (l *Limiter) SetIdle(d time.Duration) { l.idle.Store(int64(d)) }

// Held returns the rate tokens and credits the node holds of a key.
func (l *Limiter) Held(apiKey string) (tokens, credits uint64) {
	v, ok := l.keys.Load(apiKey)
	if !ok {
		return 0, 0
	}
	ks := v.(*keyState)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.rate != nil {
		tokens = ks.rate.avail
	}
	if ks.cr != nil {
		credits = ks.cr.avail
	}
	return tokens, credits
}

// LeaseID returns the id of the node's credits leases.
func (l *Limiter) LeaseID() string { return l.leaseID }

// CreditRecord is the credits record as the bucket holds it.
type CreditRecord = creditRecord

// DecodeCredits and DecodeRate read records strictly.
var (
	DecodeCredits = decodeCredits
	DecodeRate    = decodeRate
	CreditsKey    = creditsKey
	RateKey       = rateKey
)

// Connected reports whether the node's NATS connection is up.
func (l *Limiter) Connected() bool { return l.cfg.Conn.IsConnected() }

// InFlight reports whether a round trip for the key is in flight.
func (l *Limiter) InFlight(apiKey string) bool {
	v, ok := l.keys.Load(apiKey)
	if !ok {
		return false
	}
	ks := v.(*keyState)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return (ks.rate != nil && ks.rate.flight != nil) || (ks.cr != nil && ks.cr.flight != nil)
}
