package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultRetention is how long the usage stream keeps reports.
const DefaultRetention = 90 * 24 * time.Hour

// DefaultMaxBytes caps the usage stream; past it the oldest reports go.
const DefaultMaxBytes = 1 << 30

// StreamConfig is the usage stream of the event stream named stream:
// reports kept for retention and at most maxBytes (the oldest go first),
// with replicas replicas; deletes and purges denied, duplicates (a publish
// retried after a lost ack) dropped for two minutes.
func StreamConfig(stream string, replicas int, retention time.Duration, maxBytes int64) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:         StreamName(stream),
		Description:  "keyledger: per-key usage reported by the validation nodes (not the ledger's log)",
		Subjects:     []string{Subjects},
		Retention:    jetstream.LimitsPolicy,
		MaxAge:       cmp.Or(retention, DefaultRetention),
		MaxBytes:     cmp.Or(maxBytes, DefaultMaxBytes),
		MaxMsgs:      -1,
		MaxMsgSize:   MaxReportBytes,
		MaxConsumers: -1,
		Storage:      jetstream.FileStorage,
		Replicas:     max(replicas, 1),
		Discard:      jetstream.DiscardOld,
		Duplicates:   2 * time.Minute,
		DenyDelete:   true,
		DenyPurge:    true,
		AllowDirect:  true,
	}
}

// SetUp creates the usage stream, or brings an existing one to the
// retention and size wanted. It needs the operator's credentials.
func SetUp(ctx context.Context, nc *nats.Conn, want jetstream.StreamConfig) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return fmt.Errorf("usage stream %s: %w", want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("usage stream %s: %w", want.Name, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxAge == want.MaxAge && cfg.MaxBytes == want.MaxBytes && cfg.DenyDelete && cfg.DenyPurge {
		return nil
	}
	cfg.MaxAge, cfg.MaxBytes, cfg.DenyDelete, cfg.DenyPurge = want.MaxAge, want.MaxBytes, true, true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("usage stream %s: %w", want.Name, err)
	}
	return nil
}
