package natstest

import (
	"context"
	"testing"
	"time"
)

// WantRefused runs every attack at once, each with its own deadline of
// timeout from ctx (a request NATS refuses for permissions gets no answer,
// so it only times out), and fails the test for each one that succeeded.
func WantRefused(t testing.TB, ctx context.Context, timeout time.Duration, attacks map[string]func(context.Context) error) {
	t.Helper()
	errs := make(chan string, len(attacks))
	for name, attack := range attacks {
		go func() {
			c, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if attack(c) == nil {
				errs <- name
			} else {
				errs <- ""
			}
		}()
	}
	for range attacks {
		if name := <-errs; name != "" {
			t.Errorf("%s: succeeded, want refused", name)
		}
	}
}
