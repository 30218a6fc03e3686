package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultInterval is how often a node announces itself when nothing
// changes.
const DefaultInterval = time.Second

// Source is the node an Announcer speaks for.
type Source interface {
	// Applied returns the stream sequence applied and the staleness in
	// seconds (-1: not yet confirmed).
	Applied() (seq uint64, staleness float64)
	// WaitFor blocks until seq is applied or ctx ends.
	WaitFor(ctx context.Context, seq uint64) error
}

// Announcer publishes a node's heartbeats.
type Announcer struct {
	Conn    *nats.Conn
	Name    string
	Version string
	Source  Source
	// Interval between heartbeats when nothing is applied (0:
	// DefaultInterval).
	Interval time.Duration
	Logger   *slog.Logger
}

// Run announces the node at once, then every Interval and right after it
// applied more of the log, until ctx ends. It returns an error at once if
// the Announcer is misconfigured.
func (a *Announcer) Run(ctx context.Context) error {
	if a.Conn == nil || a.Source == nil {
		return errors.New("fleet: announcer without a connection or a source")
	}
	if !ValidName(a.Name) {
		return fmt.Errorf("fleet: node name %q: want 1 to %d letters, digits, '_', '-' or ':'", a.Name, MaxNameLen)
	}
	interval := a.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	logger := a.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	subject := Subject(a.Name)
	for {
		seq, staleness := a.Source.Applied()
		data, err := Heartbeat{Name: a.Name, Version: a.Version, AppliedSeq: seq, StalenessSeconds: staleness}.Encode()
		if err != nil {
			return err
		}
		if err := a.Conn.Publish(subject, data); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			logger.Debug("heartbeat not sent", "err", err)
		}
		wctx, cancel := context.WithTimeout(ctx, interval)
		if err := a.Source.WaitFor(wctx, seq+1); err != nil && wctx.Err() == nil {
			// A source that cannot wait (closed) must not spin the loop.
			<-wctx.Done()
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
	}
}
