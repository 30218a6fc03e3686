package main

import (
	"flag"
	"strings"
	"time"

	"github.com/keyledger/keyledger/handlers"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/validator"
)

// limitsFlags registers serve's flags of limits, which set c.
func limitsFlags(fs *flag.FlagSet, c *app.LimitsConfig) {
	fs.Var(&proxyList{list: &c.TrustedProxies}, "trusted-proxy", "`address` or CIDR prefix of a reverse proxy whose X-Forwarded-For tells the client's address for rate limits, and whose X-Forwarded-Method/-Proto/-Host/-Uri /validate believes for signed requests (forward-auth); repeatable or comma-separated (default: none, the connection's peer is the client)")
	fs.IntVar(&c.LoginFailures, "login-failures-per-address", app.DefaultLoginFailures, "failed logins one client address may make within --login-failure-window before it is refused with 429 for that long (negative: no limit)")
	fs.DurationVar(&c.LoginFailureWindow, "login-failure-window", app.DefaultLoginFailureWindow, "window of --login-failures-per-address, and how long an address stays blocked")
	fs.IntVar(&c.RegistrationBurst, "registrations-per-address", app.DefaultRegistrationBurst, "registrations one client address may make at once; then one more every --registration-interval, else 429 (negative: no limit)")
	fs.DurationVar(&c.RegistrationEvery, "registration-interval", app.DefaultRegistrationEvery, "time for one more registration per address to become available")
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
