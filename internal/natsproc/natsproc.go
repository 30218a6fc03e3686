// Package natsproc runs a JetStream cluster of nats-servers as separate
// operating-system processes on loopback, so that a node can be killed
// the way a machine dies (SIGKILL: no lame duck, no leadership transfer,
// no goodbye on the routes), which an in-process server cannot show.
//
// Each node is the running program started again with one environment
// variable holding the node's configuration: the program's main (and the
// TestMain of a test package that uses a Cluster) calls Main first, which
// turns such a process into the node and never returns. The nodes run
// the nats-server this module builds with, so nothing is downloaded.
package natsproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/embedded"
)

// envNode is the environment variable that makes Main run a node: it
// holds the node's configuration as JSON.
const envNode = "KEYLEDGER_NATSPROC_NODE"

// readyLine is what a node prints on its standard output once it accepts
// clients.
const readyLine = "natsproc: ready"

// nodeConfig is one node's configuration, passed in envNode.
type nodeConfig struct {
	Name        string   `json:"name"`
	Cluster     string   `json:"cluster"`
	ClientPort  int      `json:"client_port"`
	ClusterPort int      `json:"cluster_port"`
	StoreDir    string   `json:"store_dir"`
	Routes      []string `json:"routes"` // host:port of every node's cluster listener
}

// Main runs this process as a cluster node and exits if it was started as
// one (see Cluster), and returns at once otherwise. Call it first in main
// and in TestMain. A node logs the server's notices to its standard error
// with microsecond timestamps, and stops when its standard input closes
// (the parent went away) or on SIGTERM.
func Main() {
	raw, ok := os.LookupEnv(envNode)
	if !ok {
		return
	}
	var cfg nodeConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "natsproc: bad %s: %v\n", envNode, err)
		os.Exit(2)
	}
	os.Exit(runNode(cfg))
}

func runNode(cfg nodeConfig) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.String(a.Key, a.Value.Time().UTC().Format("15:04:05.000000"))
			}
			return a
		}}))
	routes := make([]*url.URL, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = &url.URL{Scheme: "nats-route", Host: r}
	}
	s, err := embedded.Start(embedded.Config{
		Listen:     net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.ClientPort)),
		StoreDir:   cfg.StoreDir,
		ServerName: cfg.Name,
		Logger:     logger,
		Options: func(o *server.Options) {
			o.Cluster.Name = cfg.Cluster
			o.Cluster.Host = "127.0.0.1"
			o.Cluster.Port = cfg.ClusterPort
			o.Routes = routes
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "natsproc: %s: %v\n", cfg.Name, err)
		return 1
	}
	fmt.Println(readyLine)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	parentGone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(parentGone)
	}()
	select {
	case <-stop:
	case <-parentGone:
	}
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}

// startTimeout bounds the start of one node and the forming of the
// cluster: on loopback, a node that has not started in that time will not.
const startTimeout = 60 * time.Second

// Cluster is a JetStream cluster of nats-server processes on loopback,
// each with its own store directory. Nodes are numbered 0 to Len()-1; a
// killed node can be started again on the same name, ports and data. Its
// methods are safe for concurrent use.
type Cluster struct {
	name  string
	dir   string
	exe   string
	nodes []*procNode
	mu    sync.Mutex // guards procNode.cmd and procNode.stdin
}

type procNode struct {
	cfg   nodeConfig
	log   string // the node's standard error, appended to across restarts
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed when cmd has been waited for
}

// Start starts n nodes (at least 2; 3 to survive the loss of one) under
// dir and waits until JetStream answers on every one of them, which needs
// a meta leader. The caller must Close the cluster.
func Start(ctx context.Context, dir string, n int) (*Cluster, error) {
	if n < 2 {
		return nil, fmt.Errorf("natsproc: %d nodes, want at least 2", n)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("natsproc: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// The ports are chosen before any node starts, since every node's
	// routes name every node; another process may take one meanwhile, so
	// a failed start is tried again on fresh ports.
	for attempt := 0; ; attempt++ {
		c := &Cluster{name: "natsproc", dir: dir, exe: exe}
		if err = c.start(ctx, n, attempt); err == nil {
			if err = c.waitJetStream(ctx); err == nil {
				return c, nil
			}
		}
		c.Close()
		if attempt == 2 || ctx.Err() != nil {
			return nil, err
		}
	}
}

func (c *Cluster) start(ctx context.Context, n, attempt int) error {
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	routes := make([]string, n)
	for i := range routes {
		routes[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i+1]))
	}
	for i := range n {
		name := fmt.Sprintf("node-%d", i+1)
		store := filepath.Join(c.dir, fmt.Sprintf("try-%d", attempt), name)
		if err := os.MkdirAll(store, 0o700); err != nil {
			return err
		}
		c.nodes = append(c.nodes, &procNode{
			cfg: nodeConfig{Name: name, Cluster: c.name, ClientPort: ports[2*i], ClusterPort: ports[2*i+1],
				StoreDir: store, Routes: routes},
			log: store + ".log"})
	}
	// Started together: a node's JetStream waits for its routes.
	errs := make(chan error, n)
	for i := range c.nodes {
		go func() { errs <- c.startNode(ctx, i) }()
	}
	var first error
	for range c.nodes {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("natsproc: pick a free port: %w", err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// startNode starts node i's process and waits for its ready line.
func (c *Cluster) startNode(ctx context.Context, i int) error {
	nd := c.nodes[i]
	raw, err := json.Marshal(nd.cfg)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(nd.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(c.exe)
	cmd.Env = append(os.Environ(), envNode+"="+string(raw))
	cmd.Stderr = logFile
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("natsproc: start %s: %w", nd.cfg.Name, err)
	}
	done := make(chan struct{})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if !found && sc.Text() == readyLine {
				found = true
				ready <- true
			}
		}
		if !found {
			ready <- false
		}
		_ = cmd.Wait()
		close(done)
	}()
	c.mu.Lock()
	nd.cmd, nd.stdin, nd.done = cmd, stdin, done
	c.mu.Unlock()
	select {
	case ok := <-ready:
		if ok {
			return nil
		}
		return fmt.Errorf("natsproc: %s exited before it was ready (log: %s)", nd.cfg.Name, nd.log)
	case <-ctx.Done():
		return fmt.Errorf("natsproc: %s not ready: %w (log: %s)", nd.cfg.Name, ctx.Err(), nd.log)
	}
}

// waitJetStream waits until every running node answers a JetStream
// account request, which it can only do once it follows a meta leader.
func (c *Cluster) waitJetStream(ctx context.Context) error {
	for i := range c.nodes {
		if err := c.waitNodeJetStream(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) waitNodeJetStream(ctx context.Context, i int) error {
	nc, err := nats.Connect(c.URL(i), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		return fmt.Errorf("natsproc: connect to %s: %w", c.Name(i), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(rctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsproc: JetStream on %s: %w", c.Name(i), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Len returns the number of nodes, running or not.
func (c *Cluster) Len() int { return len(c.nodes) }

// Name returns node i's server name.
func (c *Cluster) Name(i int) string { return c.nodes[i].cfg.Name }

// Index returns the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.cfg.Name == name {
			return i
		}
	}
	return -1
}

// URL returns node i's client URL; it stays the same across restarts.
func (c *Cluster) URL(i int) string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.nodes[i].cfg.ClientPort))
}

// URLs returns every node's client URL, comma-separated, as nats.Connect
// takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// LogFile returns the file node i logs to (its standard error).
func (c *Cluster) LogFile(i int) string { return c.nodes[i].log }

// Kill sends node i's process SIGKILL and waits until it is gone; a node
// not running is left alone.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	nd := c.nodes[i]
	cmd, stdin, done := nd.cmd, nd.stdin, nd.done
	nd.cmd, nd.stdin = nil, nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	err := cmd.Process.Signal(syscall.SIGKILL)
	<-done
	stdin.Close()
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("natsproc: kill %s: %w", nd.cfg.Name, err)
	}
	return nil
}

// Restart starts killed node i again on its name, ports and data, and
// waits until its JetStream answers.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	running := c.nodes[i].cmd != nil
	c.mu.Unlock()
	if running {
		return fmt.Errorf("natsproc: %s is running", c.Name(i))
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := c.startNode(ctx, i); err != nil {
		return err
	}
	return c.waitNodeJetStream(ctx, i)
}

// Close stops every node: closing its standard input asks it to shut down
// cleanly, and a node still running after a few seconds is killed.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		c.mu.Lock()
		nd := c.nodes[i]
		cmd, stdin, done := nd.cmd, nd.stdin, nd.done
		nd.cmd, nd.stdin = nil, nil
		c.mu.Unlock()
		if cmd == nil {
			continue
		}
		wg.Go(func() {
			stdin.Close()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-done
			}
		})
	}
	wg.Wait()
}

// StreamLeader returns the index of the node that leads stream's Raft
// group, as the stream's info reports it through nc.
func (c *Cluster) StreamLeader(ctx context.Context, nc *nats.Conn, stream string) (int, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return -1, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1, err
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return -1, fmt.Errorf("natsproc: stream %s has no leader", stream)
	}
	i := c.Index(info.Cluster.Leader)
	if i < 0 {
		return -1, fmt.Errorf("natsproc: stream %s led by %q, not a node of this cluster", stream, info.Cluster.Leader)
	}
	return i, nil
}

// MoveStreamLeader has node to lead stream, asking the current leader
// through nc to step down in its favour (again every second, as a request
// may meet a leader still being elected) until it does, ctx ends or a
// minute passes. The node must hold a replica of stream.
func (c *Cluster) MoveStreamLeader(ctx context.Context, nc *nats.Conn, stream string, to int) error {
	req, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": c.Name(to)}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		leader, err := c.StreamLeader(rctx, nc, stream)
		if err == nil && leader == to {
			rcancel()
			return nil
		}
		if _, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req); err != nil {
			last = err
		}
		rcancel()
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsproc: %s does not lead stream %s: %w (last step-down: %v)", c.Name(to), stream, ctx.Err(), last)
		case <-time.After(time.Second):
		}
	}
}
