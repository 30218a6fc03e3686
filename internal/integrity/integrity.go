// Package integrity keeps serve's own answer to "does the log verify?":
// it runs the auditor's full verification (audit.Verify) now and then and
// on an admin's request, remembers the verdict, and reports it with the
// log's trust root and newest checkpoint for the admin API and console.
//
// A verdict here is serve checking its own log: it tells an admin when to
// look closer, and does not replace an auditor's own `keyledger audit
// verify`, which trusts nothing serve says.
package integrity

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/audit"
)

// DefaultInterval is how often the log is verified when Config.Interval
// is zero: a full verification reads and checks every message, so it runs
// daily, and on demand.
const DefaultInterval = 24 * time.Hour

// firstRunDelay bounds how long after start the first verification runs.
const firstRunDelay = time.Minute

// MaxProblems is how many problems a status lists; the count is exact.
const MaxProblems = 20

// Verdict states.
const (
	StateNever   = "never"   // no verification has run yet
	StateRunning = "running" // the first one runs now
	StateOK      = "ok"      // the last one found nothing wrong
	StateFailed  = "failed"  // the last one found problems
	StateError   = "error"   // the last one could not finish (NATS unreachable, ...)
)

// Config configures a Monitor.
type Config struct {
	// Store reads the log.
	Store *eventstore.Store
	// Interval between verifications: zero means DefaultInterval, a
	// negative one verifies only on demand.
	Interval time.Duration
	// Logger may be nil.
	Logger *slog.Logger
}

// TrustRoot names the log's genesis.
type TrustRoot struct {
	Fingerprint string `json:"fingerprint"`
	Seq         uint64 `json:"seq"`
}

// Checkpoint is the newest signed checkpoint of the log.
type Checkpoint struct {
	Seq  uint64      `json:"seq"`
	Size uint64      `json:"size"`
	Root domain.Hash `json:"root"`
	Time time.Time   `json:"time"`
}

// Verdict is the outcome of the last verification (or of the one
// running, with State "running" while no earlier one finished).
type Verdict struct {
	State         string     `json:"state"`
	Running       bool       `json:"running"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	Seconds       float64    `json:"seconds,omitempty"`
	Messages      uint64     `json:"messages,omitempty"`
	LastSeq       uint64     `json:"last_seq,omitempty"`
	VerifiedUpTo  uint64     `json:"verified_up_to,omitempty"`
	Checkpoints   int        `json:"checkpoints,omitempty"`
	AdminRequests uint64     `json:"admin_requests_verified,omitempty"`
	ProblemCount  int        `json:"problem_count"`
	Problems      []string   `json:"problems"`
	Truncated     bool       `json:"problems_truncated,omitempty"`
	Error         string     `json:"error,omitempty"`
	NextAt        *time.Time `json:"next_at,omitempty"`
}

// Status is what GET /admin/integrity answers.
type Status struct {
	TrustRoot       *TrustRoot  `json:"trust_root"`
	Checkpoint      *Checkpoint `json:"checkpoint"`
	CheckpointError string      `json:"checkpoint_error,omitempty"`
	Verify          Verdict     `json:"verify"`
}

// Monitor runs verifications in the background. It is safe for
// concurrent use; Close stops it.
type Monitor struct {
	store    *eventstore.Store
	logger   *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	last    *Verdict // the last finished verification
	running *time.Time
	pending bool // asked for and not started yet: reported as running
	next    time.Time
	expect  *audit.Expectation // a checkpoint an earlier run verified
	kick    chan struct{}

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Start returns a running Monitor.
func Start(cfg Config) (*Monitor, error) {
	if cfg.Store == nil {
		return nil, errors.New("integrity: missing store")
	}
	m := &Monitor{store: cfg.Store, logger: cfg.Logger, interval: cfg.Interval, kick: make(chan struct{}, 1)}
	if m.logger == nil {
		m.logger = slog.New(slog.DiscardHandler)
	}
	if m.interval == 0 {
		m.interval = DefaultInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Go(func() { m.run(ctx) })
	return m, nil
}

// Close stops the monitor, cancelling a verification under way. It may
// be called more than once.
func (m *Monitor) Close() {
	m.closeOnce.Do(func() {
		m.cancel()
		m.wg.Wait()
	})
}

// VerifyNow asks for a verification; it reports false when one already
// runs (which then answers the request).
func (m *Monitor) VerifyNow() bool {
	m.mu.Lock()
	if m.running != nil || m.pending {
		m.mu.Unlock()
		return false
	}
	m.pending = true
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return true
}

func (m *Monitor) run(ctx context.Context) {
	first := firstRunDelay
	if m.interval > 0 && m.interval < first {
		first = m.interval
	}
	var timer *time.Timer
	if m.interval > 0 {
		timer = time.NewTimer(first)
		defer timer.Stop()
		m.mu.Lock()
		m.next = time.Now().Add(first)
		m.mu.Unlock()
	}
	for {
		var tick <-chan time.Time
		if timer != nil {
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-m.kick:
		}
		m.verify(ctx)
		if timer != nil {
			timer.Stop()
			timer.Reset(m.interval)
			m.mu.Lock()
			m.next = time.Now().Add(m.interval)
			m.mu.Unlock()
		}
	}
}

// verify runs one verification and keeps its verdict.
func (m *Monitor) verify(ctx context.Context) {
	start := time.Now().UTC()
	m.mu.Lock()
	m.running, m.pending = &start, false
	expect := m.expect
	m.mu.Unlock()
	// The newest checkpoint before the run: if the run verifies it, the
	// next run must find the log still extending it.
	cp, haveCP, cpErr := m.store.LatestCheckpoint(ctx)
	report, err := audit.Verify(ctx, m.store, expect, nil)
	end := time.Now().UTC()
	v := &Verdict{StartedAt: &start, FinishedAt: &end, Seconds: end.Sub(start).Seconds(), Problems: []string{}}
	switch {
	case err != nil:
		v.State, v.Error = StateError, err.Error()
		if ctx.Err() != nil {
			v.Error = "stopped"
		}
		m.logger.Warn("log verification did not finish", "err", err)
	default:
		v.Messages, v.LastSeq, v.VerifiedUpTo = report.Messages, report.LastSeq, report.Verified
		v.Checkpoints, v.AdminRequests = report.Checkpoints, report.AdminRequests
		v.ProblemCount, v.Truncated = len(report.Problems), report.Truncated
		for i, p := range report.Problems {
			if i == MaxProblems {
				v.Truncated = true
				break
			}
			v.Problems = append(v.Problems, p.String())
		}
		if report.OK() {
			v.State = StateOK
			m.logger.Info("log verified", "messages", report.Messages, "last_seq", report.LastSeq, "seconds", v.Seconds)
		} else {
			v.State = StateFailed
			m.logger.Error("log verification found problems", "problems", len(report.Problems), "first", v.Problems[0])
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last, m.running = v, nil
	if v.State == StateOK && cpErr == nil && haveCP {
		c := cp.Data.(domain.LogCheckpoint)
		if c.Size <= report.Verified {
			m.expect = &audit.Expectation{Size: c.Size, Root: c.Root}
		}
	}
}

// Status reports the trust root, the newest checkpoint (read now) and
// the last verification's verdict.
func (m *Monitor) Status(ctx context.Context) Status {
	var s Status
	if fp, seq := m.store.TrustRoot(); fp != "" {
		s.TrustRoot = &TrustRoot{Fingerprint: fp, Seq: seq}
	}
	cp, ok, err := m.store.LatestCheckpoint(ctx)
	switch {
	case err != nil:
		s.CheckpointError = err.Error()
	case ok:
		c := cp.Data.(domain.LogCheckpoint)
		s.Checkpoint = &Checkpoint{Seq: cp.Sequence, Size: c.Size, Root: c.Root, Time: cp.Time.UTC()}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last != nil {
		s.Verify = *m.last
		s.Verify.Problems = append([]string{}, m.last.Problems...)
	} else {
		s.Verify = Verdict{State: StateNever, Problems: []string{}}
	}
	if m.running != nil || m.pending {
		s.Verify.Running = true
		if m.last == nil {
			s.Verify.State = StateRunning
			if m.running != nil {
				at := *m.running
				s.Verify.StartedAt = &at
			}
		}
	}
	if !m.next.IsZero() {
		next := m.next.UTC()
		s.Verify.NextAt = &next
	}
	return s
}
