package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natsproc"
)

const (
	foRaw        = "BENCHFAILRAW" // the baseline's stream
	foWorkers    = 4              // goroutines sending commands, and raw publishers
	foAcks       = 20             // acknowledgements that show writes are back
	foResume     = 60 * time.Second
	foGoal       = 2 * time.Second
	foAttempt    = time.Second // a raw publish attempt, as eventstore's
	foRetryPause = 25 * time.Millisecond
)

// runFailover measures how long writes stop when the stream leader's
// nats-server process is killed (SIGKILL) under load: three nats-server
// processes (natsproc), serve with --replicas 3 on them, and clients
// creating and revoking keys over HTTP. The outage of one kill is the
// longest time without an acknowledged command from the last one before
// the kill until writes are back; the value is the median over the kills
// (3 at scale 1). The baseline, in the same kills: raw JetStream
// publishes to an R3 stream of its own whose leader is moved to the same
// node before each kill, each retried (1 s attempts, same message id)
// until acknowledged. The killed node is started again, and every stream
// is whole, before the next kill.
func runFailover(ctx context.Context, cfg Config) (_ []Result, err error) {
	var e env
	defer e.close()
	dir, err := e.tempDir()
	if err != nil {
		return nil, err
	}
	cluster, err := natsproc.Start(ctx, dir, 3)
	if err != nil {
		return nil, err
	}
	e.defer_(cluster.Close)
	srv := &app.Server{Config: app.ServeConfig{DataDir: dir + "/serve", HTTPAddr: "127.0.0.1:0", NATSURL: cluster.URLs(),
		Replicas: 3, CheckpointInterval: -1, Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
		MaxKeysPerUser: -1}, Logger: slog.New(slog.DiscardHandler)}
	e.defer_(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		srv.Close(cctx)
	})
	if err := srv.Open(ctx); err != nil {
		return nil, err
	}
	if err := until(ctx, 30*time.Second, srv.Ready); err != nil {
		return nil, fmt.Errorf("serve not ready: %w", err)
	}
	nc, err := nats.Connect(cluster.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return nil, err
	}
	e.defer_(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: foRaw, Subjects: []string{"benchfailraw.>"},
		Storage: jetstream.FileStorage, Replicas: 3}); err != nil {
		return nil, err
	}

	api, err := client.New("http://"+srv.HTTPAddr(), client.WithHTTPClient(HTTPClient(foWorkers)))
	if err != nil {
		return nil, err
	}
	const email, password = "bench@example.com", "correct horse battery staple"
	if _, err := api.Register(ctx, email, password); err != nil {
		return nil, err
	}
	session, err := api.Login(ctx, email, password)
	if err != nil {
		return nil, err
	}
	user := api.WithSession(session.Token)

	lctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopLoad(); wg.Wait() }()
	var ledgerAcks, rawAcks ackTimes
	var commands, commandErrs atomic.Int64
	for w := range foWorkers {
		wg.Go(func() { failoverCommands(lctx, user, &ledgerAcks, &commands, &commandErrs) })
		wg.Go(func() { failoverRawPublishes(lctx, js, w, &rawAcks) })
	}

	kills := cfg.N(3, 1)
	var ledgerGaps, rawGaps []time.Duration
	details := map[string]float64{}
	serveNode := 0
	for kill := range kills {
		if err := waitStreamsWhole(ctx, js, eventstore.DefaultStream, foRaw); err != nil {
			return nil, err
		}
		if err := until(ctx, foResume, func() bool {
			now := time.Now().Add(-2 * time.Second)
			return ledgerAcks.since(now) >= foAcks && rawAcks.since(now) >= foAcks
		}); err != nil {
			return nil, fmt.Errorf("load not acknowledged before a kill: %w", err)
		}
		leader, err := cluster.StreamLeader(ctx, nc, eventstore.DefaultStream)
		if err != nil {
			return nil, err
		}
		if err := cluster.MoveStreamLeader(ctx, nc, foRaw, leader); err != nil {
			return nil, err
		}
		onServes := srv.Conn().ConnectedServerName() == cluster.Name(leader)
		if onServes {
			serveNode++
		}
		killed := time.Now()
		if err := cluster.Kill(leader); err != nil {
			return nil, err
		}
		// When the stream has a leader again, as its info says (asked
		// every 20 ms): the Raft election, which no client setting
		// shortens.
		var elected time.Duration
		if err := until(ctx, foResume, func() bool {
			rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			if l, err := cluster.StreamLeader(rctx, nc, eventstore.DefaultStream); err == nil && l != leader {
				elected = time.Since(killed)
				return true
			}
			return false
		}); err != nil {
			return nil, fmt.Errorf("no new stream leader after killing %s: %w", cluster.Name(leader), err)
		}
		if err := until(ctx, foResume, func() bool {
			return ledgerAcks.since(killed) >= foAcks && rawAcks.since(killed) >= foAcks
		}); err != nil {
			return nil, fmt.Errorf("writes did not resume after killing %s (kill %d; %d commands and %d raw publishes acknowledged since; serve on %s): %w",
				cluster.Name(leader), kill+1, ledgerAcks.since(killed), rawAcks.since(killed), srv.Conn().ConnectedServerName(), err)
		}
		resumed := time.Now()
		gap, rawGap := ledgerAcks.longestGap(killed, resumed), rawAcks.longestGap(killed, resumed)
		ledgerGaps = append(ledgerGaps, gap)
		rawGaps = append(rawGaps, rawGap)
		details[fmt.Sprintf("kill%d_outage_ms", kill+1)] = ms(gap)
		details[fmt.Sprintf("kill%d_raw_ms", kill+1)] = ms(rawGap)
		details[fmt.Sprintf("kill%d_election_ms", kill+1)] = ms(elected)
		if onServes {
			details[fmt.Sprintf("kill%d_serves_node", kill+1)] = 1
		}
		if err := cluster.Restart(ctx, leader); err != nil {
			return nil, err
		}
	}
	stopLoad()
	wg.Wait()

	slices.Sort(ledgerGaps)
	slices.Sort(rawGaps)
	med, rawMed := ledgerGaps[len(ledgerGaps)/2], rawGaps[len(rawGaps)/2]
	r := newResult("failover", fmt.Sprintf("write outage, stream leader SIGKILLed, %d kills, median", kills), "ms",
		ms(med), ms(rawMed), "raw JetStream publishes retried (1s attempts, same msg id), same kills", kills)
	r.Goal = "outage <= 2 s"
	r.Met = med <= foGoal
	for k, v := range details {
		r.Details[k] = v
	}
	r.Details["kills_of_serves_node"] = float64(serveNode)
	r.Details["commands"] = float64(commands.Load())
	r.Details["commands_failed"] = float64(commandErrs.Load())
	return []Result{r}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ackTimes records when acknowledgements arrived.
type ackTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (a *ackTimes) add(t time.Time) {
	a.mu.Lock()
	a.at = append(a.at, t)
	a.mu.Unlock()
}

// since counts the acknowledgements at or after t.
func (a *ackTimes) since(t time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, at := range slices.Backward(a.at) {
		if at.Before(t) {
			break
		}
		n++
	}
	return n
}

// longestGap returns the longest time without an acknowledgement from the
// last one before from until to.
func (a *ackTimes) longestGap(from, to time.Time) time.Duration {
	a.mu.Lock()
	at := slices.Clone(a.at)
	a.mu.Unlock()
	slices.SortFunc(at, time.Time.Compare)
	last := from
	if i, _ := slices.BinarySearchFunc(at, from, time.Time.Compare); i > 0 {
		last = at[i-1]
	}
	var longest time.Duration
	for _, t := range at {
		if t.Before(last) || t.Equal(last) {
			continue
		}
		if t.After(to) {
			break
		}
		longest = max(longest, t.Sub(last))
		last = t
	}
	return max(longest, to.Sub(last))
}

// failoverCommands creates a key and revokes it, again and again, and
// records each acknowledged command. A failed command is not retried: the
// next one is sent after a short pause.
func failoverCommands(ctx context.Context, api *client.Client, acks *ackTimes, commands, failed *atomic.Int64) {
	for ctx.Err() == nil {
		commands.Add(1)
		k, err := api.CreateKey(ctx, client.CreateKeyRequest{Name: "failover"})
		if err == nil {
			acks.add(time.Now())
			commands.Add(1)
			if err = api.RevokeKey(ctx, k.APIKey); err == nil {
				acks.add(time.Now())
				continue
			}
		}
		if ctx.Err() == nil {
			failed.Add(1)
			pause(ctx, foRetryPause)
		}
	}
}

// failoverRawPublishes publishes to the baseline's stream, each message
// retried under its message id until acknowledged.
func failoverRawPublishes(ctx context.Context, js jetstream.JetStream, worker int, acks *ackTimes) {
	subject := "benchfailraw." + strconv.Itoa(worker)
	payload := make([]byte, 512)
	for n := 0; ctx.Err() == nil; n++ {
		id := fmt.Sprintf("%d-%d", worker, n)
		for ctx.Err() == nil {
			actx, cancel := context.WithTimeout(ctx, foAttempt)
			_, err := js.Publish(actx, subject, payload, jetstream.WithMsgID(id))
			cancel()
			if err == nil {
				acks.add(time.Now())
				break
			}
			pause(ctx, foRetryPause)
		}
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// until polls cond until it holds, ctx ends or timeout passes.
func until(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// waitStreamsWhole waits until each stream has a leader and every replica
// is current.
func waitStreamsWhole(ctx context.Context, js jetstream.JetStream, streams ...string) error {
	return until(ctx, foResume, func() bool {
		for _, name := range streams {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := js.Stream(rctx, name)
			cancel()
			if err != nil {
				return false
			}
			info := s.CachedInfo()
			if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				return false
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current || r.Offline {
					return false
				}
			}
		}
		return true
	})
}
