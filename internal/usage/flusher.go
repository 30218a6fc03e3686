package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is how often a node publishes what it counted.
const DefaultInterval = 10 * time.Second

// DefaultBuffer is how many reports a node keeps while it cannot publish
// them: at the default interval, ten minutes of NATS being unreachable.
const DefaultBuffer = 60

// keysPerReport caps the keys in one published report; with key ids of
// 29 bytes and a few counts each, a report stays well under
// MaxReportBytes.
const keysPerReport = 2000

// FlusherConfig configures a Flusher.
type FlusherConfig struct {
	Counters *Counters
	Conn     *nats.Conn
	Node     string        // the node's name (ValidNodeName)
	Interval time.Duration // 0: DefaultInterval
	Buffer   int           // reports kept while unpublished; 0: DefaultBuffer
	Timeout  time.Duration // for one publish; 0: a quarter of Interval, at most 2s
	Now      func() time.Time
	Logger   *slog.Logger
}

// Flusher publishes a node's counts every interval to the usage stream.
// Reports it cannot publish wait in a bounded buffer, oldest first; when
// it is full the oldest is dropped and counted (DroppedReports and
// DroppedValidations, and the metrics keyledger_usage_dropped_*).
type Flusher struct {
	cfg                             FlusherConfig
	js                              jetstream.JetStream
	mu                              sync.Mutex // serialises Flush
	pending                         []pendingReport
	dropped                         prometheus.Counter
	droppedV                        prometheus.Counter
	nDropped, nDroppedV, nPublished uint64
	published                       prometheus.Counter
	overflow                        prometheus.CounterFunc
	cancel                          context.CancelFunc
	done                            chan struct{}
}

// pendingReport is a report encoded, with its message id.
type pendingReport struct {
	id    string
	data  []byte
	count uint64 // validations it counts
}

// NewFlusher returns a Flusher; Start runs it.
func NewFlusher(cfg FlusherConfig) (*Flusher, error) {
	if cfg.Counters == nil || cfg.Conn == nil {
		return nil, errors.New("usage: a flusher needs counters and a NATS connection")
	}
	if !ValidNodeName(cfg.Node) {
		return nil, fmt.Errorf("usage: node name %q: want 1 to %d letters, digits, - or _", cfg.Node, MaxNodeName)
	}
	if cfg.Interval < 0 || cfg.Buffer < 0 || cfg.Timeout < 0 {
		return nil, errors.New("usage: interval, buffer and timeout must be positive (0: the default)")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = min(cfg.Interval/4, 2*time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	f := &Flusher{cfg: cfg, js: js}
	f.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyledger_usage_dropped_reports_total",
		Help: "Usage reports dropped because NATS stayed unreachable longer than the buffer holds."})
	f.droppedV = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyledger_usage_dropped_validations_total",
		Help: "Validations counted in usage reports that were dropped unpublished."})
	f.published = prometheus.NewCounter(prometheus.CounterOpts{Name: "keyledger_usage_published_reports_total",
		Help: "Usage reports published to the usage stream."})
	f.overflow = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyledger_usage_uncounted_validations_total",
		Help: "Validations not counted because one interval already counted the most keys a node may."},
		func() float64 { return float64(cfg.Counters.Overflow()) })
	return f, nil
}

// Collectors are the flusher's metrics.
func (f *Flusher) Collectors() []prometheus.Collector {
	return []prometheus.Collector{f.dropped, f.droppedV, f.published, f.overflow}
}

// Start flushes every interval until Close.
func (f *Flusher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() {
		defer close(f.done)
		t := time.NewTicker(f.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.Flush(ctx)
			}
		}
	}()
}

// Close stops the flusher and publishes what was counted since the last
// flush, trying for at most its publish timeout.
func (f *Flusher) Close() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
	f.Flush(context.Background())
}

// Flush takes what was counted into a report (when there is anything),
// adds it to the buffer, and publishes the buffer in order until a publish
// fails. It returns the first publish error.
func (f *Flusher) Flush(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.cfg.Counters.Take(f.cfg.Node, f.cfg.Now())
	if len(r.Keys) > 0 {
		for i, part := range r.Split(keysPerReport) {
			data, err := json.Marshal(part)
			if err != nil {
				return err
			}
			var n uint64
			for _, k := range part.Keys {
				n += k.Valid
				for _, v := range k.Refused {
					n += v
				}
			}
			// The message id makes a publish retried after a lost ack count once.
			id := part.Node + "/" + strconv.FormatInt(part.Start.UnixNano(), 36) + "/" + strconv.Itoa(i)
			f.pending = append(f.pending, pendingReport{id: id, data: data, count: n})
		}
		for len(f.pending) > f.cfg.Buffer {
			f.nDropped++
			f.nDroppedV += f.pending[0].count
			f.dropped.Inc()
			f.droppedV.Add(float64(f.pending[0].count))
			f.pending = f.pending[1:]
		}
	}
	for len(f.pending) > 0 {
		// A publish while disconnected would sit in the client's reconnect
		// buffer, outside this bounded one, and arrive later even if
		// dropped here: publish only while connected. A report caught by a
		// disconnect mid-publish may arrive twice; its message id makes
		// the stream keep it once.
		if !f.cfg.Conn.IsConnected() {
			err := errors.New("usage: NATS is unreachable")
			f.cfg.Logger.Warn("usage report not published; kept for the next flush", "pending", len(f.pending), "error", err)
			return err
		}
		p := f.pending[0]
		pctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
		msg := nats.NewMsg(Subject(f.cfg.Node))
		msg.Data = p.data
		msg.Header.Set(jetstream.MsgIDHeader, p.id)
		_, err := f.js.PublishMsg(pctx, msg)
		cancel()
		if err != nil {
			f.cfg.Logger.Warn("usage report not published; kept for the next flush", "pending", len(f.pending), "error", err)
			return err
		}
		f.pending = f.pending[1:]
		f.nPublished++
		f.published.Inc()
	}
	return nil
}

// Stats are a flusher's counts so far.
type Stats struct {
	Pending            int    // reports waiting to be published
	Published          uint64 // reports published
	DroppedReports     uint64 // reports dropped unpublished
	DroppedValidations uint64 // validations those counted
}

// Stats returns the flusher's counts so far.
func (f *Flusher) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{Pending: len(f.pending), Published: f.nPublished, DroppedReports: f.nDropped, DroppedValidations: f.nDroppedV}
}
