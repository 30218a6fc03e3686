package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/client"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natsproc"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/validator"
)

// TestServe_StreamLeaderProcessKilled runs serve with --replicas 3 on three
// nats-server processes and a validation node beside it, and kills the
// stream leader's process (SIGKILL: no lame duck, no leadership handed
// over) while clients keep creating, regenerating and revoking keys.
// Writes must resume on the two nodes left, each acknowledged command
// must be in the log exactly once, and the validation node must keep
// answering correctly throughout: a valid key stays valid, a revoked one
// stays refused. How long the writes stop is measured by `keyledger bench
// --only failover`; the bound here only catches a ledger that stays stuck.
func TestServe_StreamLeaderProcessKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-server processes")
	}
	const (
		stream = eventstore.DefaultStream
		acks   = 20
		// stuck is far above any Raft election (at most 9 s in
		// nats-server 2.15) plus a few of the client's consumer resets
		// (10 s each; up to 30 s seen on a busy machine): writes that
		// have not resumed by then are not coming back.
		stuck = 60 * time.Second
	)
	cluster, err := natsproc.Start(t.Context(), t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	logs := &apptest.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("FAILOVER_TIMELINE") != "" {
			t.Logf("serve's logs:\n%s", logs)
			for i := range cluster.Len() {
				t.Logf("%s logs to %s", cluster.Name(i), cluster.LogFile(i))
				if os.Getenv("FAILOVER_TIMELINE") != "" {
					b, _ := os.ReadFile(cluster.LogFile(i))
					t.Logf("%s:\n%s", cluster.Name(i), b)
				}
			}
		}
	})
	srv := &app.Server{
		Config: app.ServeConfig{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSURL: cluster.URLs(), Replicas: 3,
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1}, MaxKeysPerUser: -1,
			CheckpointInterval: time.Second},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: logLevel()})),
	}
	if err := srv.Open(t.Context()); err != nil {
		srv.Close(context.Background())
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	natstest.Eventually(t, 30*time.Second, srv.Ready, "serve ready")
	// A key that stays valid and one revoked before the kill.
	load := apptest.NewCommandLoad(t, "http://"+srv.HTTPAddr(), "failover", 10*time.Millisecond)
	user := load.AddUser(t, "owner@example.com")
	valid, err := load.CreateKeyFor(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := load.CreateKeyFor(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	if !load.RevokeKeyFor(t.Context(), user, revoked.APIKey) {
		t.Fatal("the revocation before the kill was not acknowledged")
	}
	load.AddWorkers(user, 3)
	stop := load.Run(t.Context())
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	natstest.Eventually(t, 30*time.Second, func() bool { return load.AckedSince(time.Time{}) >= acks }, "commands acknowledged before the kill")

	nc, err := nats.Connect(cluster.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The worst case: the node killed leads the stream and is the one
	// the ledger is connected to, so that the ledger loses its connection,
	// its subscriptions' consumers may go with it, and the stream needs a
	// new leader, all at once.
	leader := cluster.Index(srv.Conn().ConnectedServerName())
	if leader < 0 {
		t.Fatalf("the ledger is connected to %q, not a node of the cluster", srv.Conn().ConnectedServerName())
	}
	if err := cluster.MoveStreamLeader(t.Context(), nc, stream, leader); err != nil {
		t.Fatal(err)
	}

	// Two validation nodes: one on a NATS node that stays up, which must
	// answer every validation right throughout, and one given only the
	// URL of the NATS node the test kills (it learns the others from the
	// server), which must never let the revoked key in and must answer
	// for the valid one again once the log has a leader.
	survivor := (leader + 1) % cluster.Len()
	steady := openNode(t, cluster.URL(survivor))
	moving := openNode(t, cluster.URL(leader))
	for _, n := range []*app.Node{steady, moving} {
		v := n.Validator()
		natstest.Eventually(t, 30*time.Second, func() bool {
			_, okErr := v.Validate(t.Context(), valid.APIKey, valid.Secret)
			_, revErr := v.Validate(t.Context(), revoked.APIKey, revoked.Secret)
			return okErr == nil && errors.Is(revErr, validator.ErrUnauthorized)
		}, "the validation node knows both keys")
	}
	steadyChecks := validationChecks(t, steady.Validator(), valid, revoked)
	defer steadyChecks.stop()
	movingChecks := validationChecks(t, moving.Validator(), valid, revoked)
	defer movingChecks.stop()

	t.Logf("stream led by %s, ledger connected to %s: killing %s", cluster.Name(leader),
		srv.Conn().ConnectedServerName(), cluster.Name(leader))
	killed := time.Now()
	t.Logf("killing at %s", killed.UTC().Format("15:04:05.000000"))
	if err := cluster.Kill(leader); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 2*stuck, func() bool { return load.AckedSince(killed) >= acks },
		"commands acknowledged after the stream leader was killed")
	resumed := time.Now()
	stall := load.LongestStall(killed, resumed)
	t.Logf("longest time without an acknowledged command after the kill: %v", stall.Round(time.Millisecond))
	if stall > stuck {
		t.Errorf("no command acknowledged for %v after the stream leader was killed, want writes back within %v", stall, stuck)
	}
	if got := srv.Conn().ConnectedServerName(); got == cluster.Name(leader) {
		t.Errorf("the ledger is still connected to %s", got)
	}
	steadyChecks.stop()
	movingChecks.stop()
	steadyChecks.report(t, "on "+cluster.Name(survivor), killed, false)
	movingChecks.report(t, "on the killed "+cluster.Name(leader), killed, true)
	natstest.Eventually(t, stuck, func() bool {
		_, err := moving.Validator().Validate(t.Context(), valid.APIKey, valid.Secret)
		return err == nil
	}, "the validation node that lost its NATS node vouches for its view again")

	if err := cluster.Restart(t.Context(), leader); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	natstest.Eventually(t, 60*time.Second, func() bool { return load.AckedSince(restarted) >= acks },
		"commands acknowledged after "+cluster.Name(leader)+" returned")
	stop()
	stopped = true
	t.Logf("load: %s", load.Summary())

	waitStreamsLed(t, nc)
	// Every acknowledged command is in the log exactly once, and the read
	// models are what a fresh fold of the log gives.
	f := apptest.FoldLog(t, nc)
	load.CheckLog(t, f)
	apptest.VerifyLog(t, nc)
	natstest.Eventually(t, 30*time.Second, func() bool { return srv.Projector().Position() >= f.Head },
		"serve's read models reach the head of the log")
	load.CheckProjections(t, f)
}

// openNode opens a validation node on the NATS URLs urls.
func openNode(t *testing.T, urls string) *app.Node {
	t.Helper()
	n := &app.Node{Config: app.NodeConfig{NATSURL: urls, HTTPAddr: "127.0.0.1:0", MetricsAddr: app.MetricsOff,
		// Wrong answers, not the limit on failed validations, are what
		// the checks look for.
		ValidateFailures: -1}}
	if err := n.Open(t.Context()); err != nil {
		t.Fatalf("open a validation node: %v", err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

// validations asks a validation node about a valid and a revoked key in a
// loop and records its answers.
type validations struct {
	stop    func()
	mu      sync.Mutex
	n       int
	slowest time.Duration
	// wrong are answers no node may give: the revoked key let in, or the
	// valid one refused as anything but a node that cannot vouch for its
	// view yet.
	wrong []string
	// refusedFirst and refusedLast bound the refusals of the valid key
	// because the node could not vouch for its view.
	refusedFirst, refusedLast time.Time
	refused                   int
}

func validationChecks(t *testing.T, v *validator.Validator, valid, revoked client.CreatedKey) *validations {
	c := &validations{}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			start := time.Now()
			_, okErr := v.Validate(ctx, valid.APIKey, valid.Secret)
			_, revErr := v.Validate(ctx, revoked.APIKey, revoked.Secret)
			took := time.Since(start)
			c.mu.Lock()
			c.n++
			c.slowest = max(c.slowest, took)
			switch {
			case okErr == nil:
			case errors.Is(okErr, validator.ErrNotReady) || errors.Is(okErr, validator.ErrStale):
				if c.refused == 0 {
					c.refusedFirst = start
				}
				c.refused++
				c.refusedLast = start
			default:
				c.wrong = append(c.wrong, fmt.Sprintf("%s: the valid key refused: %v", start.Format(time.StampMicro), okErr))
			}
			if revErr == nil {
				c.wrong = append(c.wrong, fmt.Sprintf("%s: the revoked key let in", start.Format(time.StampMicro)))
			}
			c.mu.Unlock()
			// Paced, not spun: the machine also runs the cluster.
			select {
			case <-ctx.Done():
			case <-time.After(time.Millisecond):
			}
		}
	})
	var once sync.Once
	c.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	return c
}

// report fails t for any wrong answer, for refusals of the valid key
// unless mayRefuse (a node whose NATS server died cannot vouch for its
// view until the log has a leader again), and for fewer than a few
// rounds.
func (c *validations) report(t *testing.T, what string, killed time.Time, mayRefuse bool) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Logf("validation node %s: %d rounds during the failover, slowest %v, %d wrong, %d refused (not vouching for its view)",
		what, c.n, c.slowest, len(c.wrong), c.refused)
	if c.refused > 0 {
		t.Logf("validation node %s refused the valid key from %v to %v after the kill", what,
			c.refusedFirst.Sub(killed).Round(time.Millisecond), c.refusedLast.Sub(killed).Round(time.Millisecond))
		if !mayRefuse {
			t.Errorf("validation node %s refused the valid key %d times", what, c.refused)
		}
	}
	if c.n < 20 {
		t.Errorf("validation node %s answered %d rounds during the failover, want at least 20", what, c.n)
	}
	for i, w := range c.wrong {
		if i == 10 {
			t.Errorf("... and %d more", len(c.wrong)-10)
			break
		}
		t.Errorf("validation node %s: %s", what, w)
	}
}

// waitStreamsLed waits until every stream has a leader and every replica
// of it is current: a restarted NATS node catches up before the whole log
// can be read.
func waitStreamsLed(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	state := ""
	natstest.Eventually(t, 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		streams := js.ListStreams(ctx)
		n := 0
		for info := range streams.Info() {
			n++
			if info.Cluster == nil || info.Cluster.Leader == "" {
				state = info.Config.Name + " has no leader"
				return false
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current || r.Offline {
					state = fmt.Sprintf("%s: replica %s not current", info.Config.Name, r.Name)
					return false
				}
			}
		}
		if err := streams.Err(); err != nil || n == 0 {
			state = fmt.Sprintf("listing streams: %v", err)
			return false
		}
		return true
	}, "every stream led, every replica current")
	_ = state
}

// logLevel is serve's log level: Info with FAILOVER_TIMELINE set (the
// test then prints every log, for the timeline of a failover), else Warn.
func logLevel() slog.Level {
	if os.Getenv("FAILOVER_TIMELINE") != "" {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
