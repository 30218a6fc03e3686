package app

import (
	"fmt"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ratelimit"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/validator"
)

// Defaults of serve's limits per client address.
const (
	DefaultLoginFailures      = 50
	DefaultLoginFailureWindow = 15 * time.Minute
	DefaultRegistrationBurst  = 10
	DefaultRegistrationEvery  = 6 * time.Minute // 10 an hour
)

// LimitsConfig holds serve's limits against floods. Zero fields mean the
// defaults; a negative count turns that limit off.
type LimitsConfig struct {
	// TrustedProxies are addresses and CIDR prefixes of the reverse
	// proxies whose X-Forwarded-For is believed (none: the connection's
	// peer is the client).
	TrustedProxies []string
	// LoginFailures failed logins from one client address within
	// LoginFailureWindow block it for that long (default 50 per 15m).
	LoginFailures      int
	LoginFailureWindow time.Duration
	// RegistrationBurst registrations from one client address at once,
	// then one every RegistrationEvery (default 10, then 10 an hour).
	RegistrationBurst int
	RegistrationEvery time.Duration
	// ValidateFailures failed validations of one API key within
	// ValidateFailureWindow block it for that long (default 20 per 1m).
	ValidateFailures      int
	ValidateFailureWindow time.Duration
	// MaxPasswordHashing caps password hashes computed at once (default
	// 2 x GOMAXPROCS); a login or registration waits PasswordHashingWait
	// (default 250ms; negative: not at all) for a slot, then gets 503.
	MaxPasswordHashing  int
	PasswordHashingWait time.Duration
	// ReadyMaxStaleness, if positive, turns /readyz 503 once the read
	// models have not been confirmed complete for this long.
	ReadyMaxStaleness time.Duration
}

// validatorOption is the validator's limit on failed validations: zero
// fields take the validator's defaults, a negative limit turns it off.
func validatorOption(limit int, window time.Duration) validator.Option {
	if limit < 0 {
		return validator.WithFailureLimit(validator.NoLimit, 0)
	}
	return validator.WithFailureLimit(limit, window)
}

// passwordOptions are the options of the password hasher.
func (c *LimitsConfig) passwordOptions() []auth.Option {
	n, wait := c.MaxPasswordHashing, c.PasswordHashingWait
	if n <= 0 {
		n = auth.DefaultMaxHashing()
	}
	switch {
	case wait == 0:
		wait = auth.DefaultHashWait
	case wait < 0:
		wait = 0
	}
	return []auth.Option{auth.WithMaxHashing(n, wait)}
}

// apply sets the API's limits in cfg.
func (c *LimitsConfig) apply(cfg *handlers.Config) error {
	proxies, err := handlers.ParseTrustedProxies(c.TrustedProxies...)
	if err != nil {
		return ConfigError{fmt.Errorf("--trusted-proxy: %w", err)}
	}
	cfg.Proxies = proxies
	if c.LoginFailures >= 0 {
		limit, window := orDefault(c.LoginFailures, DefaultLoginFailures), orDefault(c.LoginFailureWindow, DefaultLoginFailureWindow)
		if cfg.LoginFailures, err = ratelimit.NewFailures(ratelimit.FailuresConfig{Limit: limit, Window: window}); err != nil {
			return ConfigError{fmt.Errorf("--login-failures-per-address %d, --login-failure-window %v: %w", limit, window, err)}
		}
	}
	if c.RegistrationBurst >= 0 {
		burst, every := orDefault(c.RegistrationBurst, DefaultRegistrationBurst), orDefault(c.RegistrationEvery, DefaultRegistrationEvery)
		if cfg.Registrations, err = ratelimit.NewBucket(ratelimit.BucketConfig{Every: every, Burst: burst}); err != nil {
			return ConfigError{fmt.Errorf("--registrations-per-address %d, --registration-interval %v: %w", burst, every, err)}
		}
	}
	if c.ReadyMaxStaleness < 0 {
		return ConfigError{fmt.Errorf("--ready-max-staleness %v: want 0 or more", c.ReadyMaxStaleness)}
	}
	cfg.ReadyMaxStaleness = c.ReadyMaxStaleness
	return nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// readiness is serve's /readyz: the projector's progress, and the
// freshness of its view as the validator confirms it (about every second,
// as on a validation node).
type readiness struct {
	projector *projections.Projector
	validator *validator.Validator
}

// Ready is false once the log is refused (it does not extend the log
// serve read: re-created, rolled back) or sealed: serve then stores and
// acknowledges no command, and answers 503.
func (r readiness) Ready() bool {
	return r.projector.Ready() && r.validator.Refused() == nil && !r.validator.Sealed()
}

func (r readiness) Status() handlers.ReadyStatus {
	p, v := r.projector.Status(), r.validator.Status()
	st := handlers.ReadyStatus{Ready: p.Ready, AppliedSeq: p.Applied, StartSeq: p.Target,
		StalenessSeconds: v.StalenessSeconds, Connected: v.Connected}
	switch {
	case r.validator.Refused() != nil:
		st.Ready, st.Reason = false, domain.MessageOf(r.validator.Refused())
	case v.Sealed:
		st.Ready, st.Reason = false, "the event log's stream is sealed: no command can be stored"
	}
	return st
}

var _ handlers.Readiness = readiness{}
