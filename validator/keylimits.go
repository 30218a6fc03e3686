package validator

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// Limiter counts the requests of valid keys against their rate limits and
// credits, across every node together (internal/limits is the one
// keyledger runs). Take must not block for long: it answers from what the
// node holds, or after at most one bounded round trip.
type Limiter interface {
	Take(ctx context.Context, apiKey string, lim *domain.Limits, cost uint64) LimitDecision
}

// LimitDecision is a Limiter's answer for one request.
type LimitDecision struct {
	// Reason is ReasonOK, ReasonRateLimitExceeded, ReasonUsageExceeded or
	// ReasonLimitsUnavailable.
	Reason domain.Reason
	// RetryAfter, for a refusal, is when trying again may succeed (0:
	// unknown).
	RetryAfter time.Duration
	// Rate is the key's rate limit after this request; nil without one.
	Rate *RateState
	// Credits is the key's credits left after this request (an
	// estimate: see internal/limits); nil without credits.
	Credits *uint64
}

// RateState is where a key stands in its rate limit's current window.
type RateState struct {
	Limit     uint64
	Remaining uint64
	ResetIn   time.Duration // until the window ends
	Window    time.Duration
}

// RateLimitInfo is a key's rate limit as a validation answers it: the
// limit, what is left of it in the current window, and the seconds until
// that window ends.
type RateLimitInfo struct {
	Limit     uint64 `json:"limit"`
	Remaining uint64 `json:"remaining"`
	Reset     int64  `json:"reset"`
	window    int64  // seconds, for RateLimit-Policy
}

// CreditsInfo is a key's credits as a validation answers them.
type CreditsInfo struct {
	Remaining uint64 `json:"remaining"`
}

// WithLimiter enforces keys' rate limits and credits with l. Without it a
// node refuses every key that has limits (ReasonLimitsUnavailable, 503):
// it cannot count them, and letting them through would break the limit.
func WithLimiter(l Limiter) Option {
	return func(o *options) error {
		o.limiter = l
		return nil
	}
}

// Errors of a valid key refused by its limits.
var (
	// ErrRateLimitExceeded is a key past its rate limit (429
	// rate_limited, with Retry-After until its window ends).
	ErrRateLimitExceeded = domain.Errorf(domain.RateLimited, "this API key's rate limit is reached, try again when its window ends")
	// ErrUsageExceeded is a key without credits enough left (429
	// usage_exceeded).
	ErrUsageExceeded = domain.Errorf(domain.UsageExceeded, "this API key has no credits left for this request")
	// ErrLimitsUnavailable is a key with limits that could not be counted
	// (503).
	ErrLimitsUnavailable = &domain.Error{Kind: domain.Unavailable,
		Message: "this API key's limits cannot be counted right now", RetryAfter: time.Second}
)

// admit charges a request of a validated identity to its key's limits,
// then counts the outcome in metrics and usage. It fills id's RateLimit
// and Credits (on a refusal too, for the response headers) and returns
// ReasonOK, or the reason and error to answer.
func (v *Validator) admit(ctx context.Context, id *Identity, cost uint64) (domain.Reason, error) {
	reason, err := v.charge(ctx, id, cost)
	v.metrics.outcome(reason)
	if v.opts.usage != nil { // the clock is read only when usage is counted
		v.opts.usage.Record(id.APIKey, reason, v.opts.now())
	}
	return reason, err
}

func (v *Validator) charge(ctx context.Context, id *Identity, cost uint64) (domain.Reason, error) {
	if id.limits.None() {
		return domain.ReasonOK, nil
	}
	if v.opts.limiter == nil {
		return domain.ReasonLimitsUnavailable, ErrLimitsUnavailable
	}
	d := v.opts.limiter.Take(ctx, id.APIKey, id.limits, cost)
	if r := d.Rate; r != nil {
		id.RateLimit = &RateLimitInfo{Limit: r.Limit, Remaining: r.Remaining,
			Reset: int64(domain.RetryAfterSeconds(r.ResetIn)), window: int64(r.Window / time.Second)}
	}
	if d.Credits != nil {
		id.Credits = &CreditsInfo{Remaining: *d.Credits}
	}
	switch d.Reason {
	case domain.ReasonOK:
		return domain.ReasonOK, nil
	case domain.ReasonRateLimitExceeded:
		return d.Reason, &domain.Error{Kind: domain.RateLimited, Message: ErrRateLimitExceeded.Message,
			RetryAfter: max(d.RetryAfter, time.Second)}
	case domain.ReasonUsageExceeded:
		return d.Reason, &domain.Error{Kind: domain.UsageExceeded, Message: ErrUsageExceeded.Message,
			RetryAfter: d.RetryAfter}
	}
	return domain.ReasonLimitsUnavailable, ErrLimitsUnavailable
}

// Response headers of a key's limits.
const (
	// HeaderRateLimitPolicy and HeaderRateLimit are the IETF
	// httpapi-ratelimit-headers fields: the key's policy ("key";q=<limit>;
	// w=<window seconds>) and where it stands ("key";r=<remaining>;
	// t=<seconds until the window ends>).
	HeaderRateLimitPolicy = "RateLimit-Policy"
	HeaderRateLimit       = "RateLimit"
	// HeaderCreditsRemaining is the key's credits left after the request.
	HeaderCreditsRemaining = "X-Keyledger-Credits-Remaining"
	// HeaderError is the error code of a 429 or 503 from /validate (as
	// in its body), for a forward-auth proxy that passes the refusal on
	// without reading the body.
	HeaderError = "X-Keyledger-Error"
	// HeaderCost is how much a request costs in credits (1 when absent),
	// sent to /validate by the proxy that asks; the query parameter cost
	// says the same.
	HeaderCost = "X-Keyledger-Cost"
)

// writeLimitHeaders sets the headers of the key's limits, if it has any.
func writeLimitHeaders(h http.Header, id Identity) {
	if r := id.RateLimit; r != nil {
		h.Set(HeaderRateLimitPolicy, `"key";q=`+strconv.FormatUint(r.Limit, 10)+";w="+strconv.FormatInt(r.window, 10))
		h.Set(HeaderRateLimit, `"key";r=`+strconv.FormatUint(r.Remaining, 10)+";t="+strconv.FormatInt(r.Reset, 10))
	}
	if c := id.Credits; c != nil {
		h.Set(HeaderCreditsRemaining, strconv.FormatUint(c.Remaining, 10))
	}
}

// ParseCost reads what a /validate request says it costs: the query
// parameter cost and the X-Keyledger-Cost header, each at most once and,
// when both are given, equal; a whole number from 1 to domain.MaxCost
// without sign or leading zeros; 1 when neither is given. Anything else
// is Invalid.
func ParseCost(query []string, header []string) (uint64, error) {
	if len(query) > 1 || len(header) > 1 {
		return 0, domain.Errorf(domain.Invalid, "cost: give it once, as the cost parameter or the %s header", HeaderCost)
	}
	var s string
	switch {
	case len(query) == 1 && len(header) == 1 && query[0] != header[0]:
		return 0, domain.Errorf(domain.Invalid, "cost: the cost parameter and the %s header disagree", HeaderCost)
	case len(query) == 1:
		s = query[0]
	case len(header) == 1:
		s = header[0]
	default:
		return 1, nil
	}
	bad := domain.Errorf(domain.Invalid, "cost: want a whole number from 1 to %d", domain.MaxCost)
	if s == "" || len(s) > 7 || s[0] == '0' {
		return 0, bad
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, bad
		}
	}
	n, _ := strconv.ParseUint(s, 10, 64)
	if n > domain.MaxCost {
		return 0, bad
	}
	return n, nil
}
