package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/ratelimit"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/validator"
)

// Defaults of serve's limits per client address.
const (
	defaultLoginFailures      = 50
	defaultLoginFailureWindow = 15 * time.Minute
	defaultRegistrationBurst  = 10
	defaultRegistrationEvery  = 6 * time.Minute // 10 an hour
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

// limitsFlags registers serve's flags of limits, which set c.
func limitsFlags(fs *flag.FlagSet, c *LimitsConfig) {
	fs.Var(&proxyList{list: &c.TrustedProxies}, "trusted-proxy", "address or CIDR prefix of a reverse proxy whose X-Forwarded-For tells the client's address for rate limits; repeatable or comma-separated (default: none, the connection's peer is the client)")
	fs.IntVar(&c.LoginFailures, "login-failures-per-address", defaultLoginFailures, "failed logins one client address may make within --login-failure-window before it is refused with 429 for that long (negative: no limit)")
	fs.DurationVar(&c.LoginFailureWindow, "login-failure-window", defaultLoginFailureWindow, "window of --login-failures-per-address, and how long an address stays blocked")
	fs.IntVar(&c.RegistrationBurst, "registrations-per-address", defaultRegistrationBurst, "registrations one client address may make at once; then one more every --registration-interval, else 429 (negative: no limit)")
	fs.DurationVar(&c.RegistrationEvery, "registration-interval", defaultRegistrationEvery, "time for one more registration per address to become available")
	validateFailureFlags(fs, &c.ValidateFailures, &c.ValidateFailureWindow)
	fs.IntVar(&c.MaxPasswordHashing, "max-password-hashing", 0, "password hashes (argon2id, 19 MiB each) computed at once; logins and registrations beyond wait, then get 503 (default 2 x GOMAXPROCS)")
	fs.DurationVar(&c.PasswordHashingWait, "password-hashing-wait", auth.DefaultHashWait, "how long a login or registration waits for a password hashing slot before 503 (negative: not at all)")
	fs.DurationVar(&c.ReadyMaxStaleness, "ready-max-staleness", 0, "make /readyz 503 once the read models have not been confirmed complete with the event log for this long (default: stay 200 while they serve reads)")
}

// validateFailureFlags registers the limit on failed validations per API
// key, shared by serve and validator.
func validateFailureFlags(fs *flag.FlagSet, limit *int, window *time.Duration) {
	fs.IntVar(limit, "validate-failures-per-key", validator.DefaultFailureLimit, "failed validations of one API key within --validate-failure-window before that key's failing validations are answered 429 for that long; its right credentials still pass (negative: no limit)")
	fs.DurationVar(window, "validate-failure-window", validator.DefaultFailureWindow, "window of --validate-failures-per-key, and how long a key stays blocked")
}

// validatorOption is the validator's limit on failed validations.
func validatorOption(limit int, window time.Duration) validator.Option {
	switch {
	case limit < 0:
		return validator.WithFailureLimit(0, 0)
	case limit == 0:
		limit = validator.DefaultFailureLimit
	}
	if window == 0 {
		window = validator.DefaultFailureWindow
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
		return configError{fmt.Errorf("--trusted-proxy: %w", err)}
	}
	cfg.Proxies = proxies
	if c.LoginFailures >= 0 {
		limit, window := orDefault(c.LoginFailures, defaultLoginFailures), orDefault(c.LoginFailureWindow, defaultLoginFailureWindow)
		if cfg.LoginFailures, err = ratelimit.NewFailures(ratelimit.FailuresConfig{Limit: limit, Window: window}); err != nil {
			return configError{fmt.Errorf("--login-failures-per-address %d, --login-failure-window %v: %w", limit, window, err)}
		}
	}
	if c.RegistrationBurst >= 0 {
		burst, every := orDefault(c.RegistrationBurst, defaultRegistrationBurst), orDefault(c.RegistrationEvery, defaultRegistrationEvery)
		if cfg.Registrations, err = ratelimit.NewBucket(ratelimit.BucketConfig{Every: every, Burst: burst}); err != nil {
			return configError{fmt.Errorf("--registrations-per-address %d, --registration-interval %v: %w", burst, every, err)}
		}
	}
	if c.ReadyMaxStaleness < 0 {
		return configError{fmt.Errorf("--ready-max-staleness %v: want 0 or more", c.ReadyMaxStaleness)}
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

// proxyList is --trusted-proxy: repeatable, each value checked as it is
// set. Values from the environment are replaced, not extended, by the
// command line, which wins as for every other flag.
type proxyList struct {
	list    *[]string
	replace bool // the values so far came from the environment
}

func (l *proxyList) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}

func (l *proxyList) Set(v string) error {
	if _, err := handlers.ParseTrustedProxies(v); err != nil {
		return err
	}
	if l.replace {
		*l.list, l.replace = nil, false
	}
	*l.list = append(*l.list, v)
	return nil
}

// fromEnvironment notes that the values set so far are the environment's.
func (l *proxyList) fromEnvironment() { l.replace = len(*l.list) > 0 }

// readiness is serve's /readyz: the projector's progress, and the
// freshness of its view as the validator confirms it (about every second,
// as on a validation node).
type readiness struct {
	projector *projections.Projector
	validator *validator.Validator
}

func (r readiness) Ready() bool { return r.projector.Ready() }

func (r readiness) Status() handlers.ReadyStatus {
	p, v := r.projector.Status(), r.validator.Status()
	return handlers.ReadyStatus{Ready: p.Ready, AppliedSeq: p.Applied, StartSeq: p.Target,
		StalenessSeconds: v.StalenessSeconds, Connected: v.Connected}
}

var _ handlers.Readiness = readiness{}
