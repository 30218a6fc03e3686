package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// connectLogEvery spaces the log lines of failed first connection
// attempts.
const connectLogEvery = 5 * time.Second

// How serve and validation nodes notice a NATS server that went silent:
// a PING every natsPingInterval, and the connection counts as dead (the
// client moves to another server of its list) after natsMaxPingsOut
// unanswered. A server process that dies is noticed at once (its socket is
// reset), a machine that dies or a network that drops everything is not:
// with nats.go's defaults (2 min, 2) the ledger would keep publishing into
// a dead connection for about 4 minutes while the rest of the cluster had
// long elected new leaders, and a validation node would go stale.
const (
	natsPingInterval = 2 * time.Second
	natsMaxPingsOut  = 3
)

// failoverOptions are the connection options serve and validation nodes
// add for fail-over: dead servers noticed within a few seconds.
func failoverOptions() []nats.Option {
	return []nats.Option{nats.PingInterval(natsPingInterval), nats.MaxPingsOutstanding(natsMaxPingsOut)}
}

// ConnectNATS connects to the NATS server or cluster at urls
// (comma-separated) with opts, retrying the first connection with backoff
// until it succeeds, ctx ends or timeout (0: DefaultStartTimeout) passes:
// processes started together (compose, systemd) must not fail because NATS
// came up a moment later. Failed attempts are logged at most every few
// seconds. Refusals a retry cannot cure (bad credentials, a TLS mismatch)
// end it at once. Errors name the URL, without its credentials.
func ConnectNATS(ctx context.Context, urls string, timeout time.Duration, logger *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	shown := RedactURLs(urls)
	start := time.Now()
	var logged time.Time
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(urls, opts...)
		if err == nil {
			if attempt > 1 {
				logger.Info("connected to NATS", "url", shown, "attempts", attempt,
					"after", time.Since(start).Round(time.Millisecond))
			}
			return nc, nil
		}
		if permanent(err) {
			return nil, fmt.Errorf("connect to NATS at %s: %w", shown, err)
		}
		if time.Since(logged) >= connectLogEvery {
			logger.Warn("NATS not reachable yet, retrying", "url", shown, "err", err,
				"waited", time.Since(start).Round(time.Millisecond), "start_timeout", timeout)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to NATS at %s: gave up after %s: %w", shown,
				time.Since(start).Round(time.Millisecond), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// permanent reports whether a connection error is one a retry cannot cure.
func permanent(err error) bool {
	for _, p := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked,
		nats.ErrSecureConnRequired, nats.ErrSecureConnWanted} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// RedactURLs returns comma-separated NATS URLs with any user, password or
// token in them replaced, fit for logs and errors.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		switch {
		case err != nil || u.Host == "":
			if strings.Contains(p, "@") { // not a URL we can take apart
				p = "[redacted]"
			}
		case u.User != nil:
			u.User = url.User("redacted")
			p = u.String()
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
