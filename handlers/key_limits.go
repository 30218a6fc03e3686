package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
)

// CreditsReader tells a key's live remaining credits: what its policy
// granted less what the nodes that enforce it counted as spent. Only the
// enforcement engine knows that; serve plugs it in as Config.Credits.
type CreditsReader interface {
	// Remaining returns the credits apiKey has left under p, its policy
	// as the log sets it. Key views wait for it, at most CreditsTimeout a
	// key (and a listing CreditsListTimeout in all); past that, or on any
	// error, the view shows the granted credits instead.
	Remaining(ctx context.Context, apiKey string, p domain.CreditPolicy) (uint64, error)
}

// How long key views wait for a CreditsReader: per key, and for a whole
// listing, past which the rest of its keys show their granted credits.
const (
	CreditsTimeout     = 250 * time.Millisecond
	CreditsListTimeout = time.Second
)

// creditsView is a key's credits in its views: the remaining credits
// (live when a CreditsReader answers, else those the policy grants at
// that instant, none spent), the refill, and when it is next due.
type creditsView struct {
	Remaining    uint64         `json:"remaining"`
	Refill       *domain.Refill `json:"refill"`
	NextRefillAt *time.Time     `json:"next_refill_at"`
}

// creditsOf is k's credits as its views show them at now (nil: none).
func (a *API) creditsOf(ctx context.Context, k domain.Key, now time.Time) *creditsView {
	p := k.Credits
	if p == nil {
		return nil
	}
	v := &creditsView{Remaining: p.Granted(now), Refill: p.Refill, NextRefillAt: timePtr(p.NextRefill(now))}
	if a.credits != nil && ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(ctx, CreditsTimeout)
		n, err := a.credits.Remaining(ctx, k.APIKey, *p)
		cancel()
		if err == nil {
			v.Remaining = n
		} else {
			a.logger.Warn("live credits unavailable: the view shows the credits granted", "kind", domain.KindOf(err), "err", err)
		}
	}
	return v
}

// rateLimitBody and creditsBody are the request forms of a key's limits.
type rateLimitBody struct {
	Limit  *uint64 `json:"limit"`
	Window *string `json:"window"`
}

type refillBody struct {
	Amount   *uint64 `json:"amount"`
	Interval *string `json:"interval"`
}

type creditsBody struct {
	Remaining *uint64        `json:"remaining"`
	Refill    jsontext.Value `json:"refill,omitempty"`
}

var (
	errRateLimitShape = domain.Errorf(domain.Invalid,
		`rate_limit must be {"limit": a whole number from 1 to %d, "window": "1s" to "1d", like "1m"} or null`, domain.MaxRateLimit)
	errCreditsShape = domain.Errorf(domain.Invalid,
		`credits must be {"remaining": a whole number from 0 to %d, "refill"?: {"amount": 1 to %d, "interval": "1m" to "366d", like "24h"}} or null`,
		uint64(domain.MaxCredits), uint64(domain.MaxCredits))
	errRefillShape = domain.Errorf(domain.Invalid,
		`credits.refill must be {"amount": a whole number from 1 to %d, "interval": "1m" to "366d", like "24h"} or null`, uint64(domain.MaxCredits))
)

// parseRateLimit reads a request's rate_limit (nil for null), checked
// against its bounds. Errors: Invalid, naming the field.
func parseRateLimit(v jsontext.Value) (*domain.RateLimit, error) {
	if isNull(v) {
		return nil, nil
	}
	var b rateLimitBody
	if err := decodeStrict(v, &b); err != nil || b.Limit == nil || b.Window == nil {
		return nil, errRateLimitShape
	}
	w, err := domain.ParsePeriod(*b.Window, domain.MinRateWindow, domain.MaxRateWindow)
	if err != nil {
		return nil, fieldError("rate_limit.window", err)
	}
	r := &domain.RateLimit{Limit: *b.Limit, Window: w}
	return r, r.Validate()
}

// parseCredits reads a request's credits (nil for null), checked against
// their bounds. Errors: Invalid, naming the field.
func parseCredits(v jsontext.Value) (*domain.Credits, error) {
	if isNull(v) {
		return nil, nil
	}
	var b creditsBody
	if err := decodeStrict(v, &b); err != nil || b.Remaining == nil {
		return nil, errCreditsShape
	}
	c := &domain.Credits{Remaining: *b.Remaining}
	if b.Refill != nil && !isNull(b.Refill) {
		var r refillBody
		if err := decodeStrict(b.Refill, &r); err != nil || r.Amount == nil || r.Interval == nil {
			return nil, errRefillShape
		}
		iv, err := domain.ParsePeriod(*r.Interval, domain.MinRefillInterval, domain.MaxRefillInterval)
		if err != nil {
			return nil, fieldError("credits.refill.interval", err)
		}
		c.Refill = &domain.Refill{Amount: *r.Amount, Interval: iv}
	}
	return c, c.Validate()
}

// fieldError is err's message, safe to show, prefixed with the field.
func fieldError(field string, err error) error {
	msg := "invalid"
	var e *domain.Error
	if errors.As(err, &e) && e.Message != "" {
		msg = e.Message
	}
	return domain.Errorf(domain.Invalid, "%s: %s", field, msg)
}

func isNull(v jsontext.Value) bool { return string(v) == "null" }

type addCreditsRequest struct {
	Add uint64 `json:"add"`
}

type adminAddCreditsRequest struct {
	Add    uint64 `json:"add"`
	Reason string `json:"reason"`
}

// addCredits: POST /api-keys/{key}/credits {"add"} -> 200 the key.
func (a *API) addCredits(w http.ResponseWriter, r *http.Request) {
	var req addCreditsRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	k, err := a.ledger.AddCredits(r.Context(), ledger.AddCredits{UserID: userIDFrom(r.Context()), APIKey: r.PathValue("key"),
		Add: req.Add, Preset: presetFrom(r.Context())})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	a.writeKey(w, r, k)
}

// adminAddCredits: POST /admin/keys/{key}/credits {"add", "reason"?} ->
// 200 the key.
func (a *API) adminAddCredits(w http.ResponseWriter, r *http.Request) {
	var req adminAddCreditsRequest
	if err := readJSON(w, r, &req, false); err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	k, err := a.ledger.AdminAddCredits(r.Context(), ledger.AdminAddCredits{Actor: adminActor(r), Request: adminRequest(r),
		APIKey: r.PathValue("key"), Add: req.Add, Reason: req.Reason, Preset: presetFrom(r.Context())})
	if err != nil {
		writeError(w, r, a.logger, err)
		return
	}
	a.writeKey(w, r, k)
}
