package app

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/limits"
)

// setUpLimits creates the bucket the nodes lease rate limit tokens and
// credits from (<stream>_LIMITS), or brings it to its configuration. It
// needs the operator's credentials: `keyledger setup`, or serve on its
// embedded server.
func setUpLimits(ctx context.Context, nc *nats.Conn, stream string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return limits.SetUp(ctx, js, stream)
}
