package natstest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/embedded"
)

// account is the account every stream of an embedded server without
// configured accounts lives in.
const account = server.DEFAULT_GLOBAL_ACCOUNT

// clusterTimeout bounds each wait of RunCluster and Restart: a cluster
// that has not formed in that time on loopback will not.
const clusterTimeout = 60 * time.Second

// Cluster is a JetStream cluster of nats-servers in this process, on
// loopback, each with its own store directory under the test's temporary
// directory. Nodes are numbered 0 to Len()-1; a node can be shut down and
// restarted on the same name, ports and data, so that it rejoins. Server,
// StreamLeader and the other queries are safe to call while another
// goroutine shuts a node down or restarts it.
type Cluster struct {
	name  string
	dir   string // holds every node's store directory
	nodes []*clusterNode

	mu sync.Mutex // guards clusterNode.srv
}

type clusterNode struct {
	name        string
	storeDir    string
	clientPort  int
	clusterPort int
	srv         *server.Server // nil while shut down
}

// RunCluster starts a cluster of n JetStream nodes and waits until it has a
// meta leader that every node follows. A cluster needs at least two nodes
// (one is a single server: RunServer), and three to survive the loss of
// one. Every node is shut down when the test ends.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 2 {
		t.Fatalf("RunCluster: %d nodes, want at least 2", n)
	}
	// The store directories live under one temporary directory made
	// before the shutdown is registered: cleanups run last-in first-out,
	// so every node has stopped writing before its directory is removed.
	c := &Cluster{name: "natstest", dir: t.TempDir()}
	t.Cleanup(c.shutdownAll)
	// Every node's routes name every node, so the route ports are fixed
	// before any node starts; another process may take one in between, so
	// a start that fails is retried on fresh ports.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = c.start(t, n); err == nil {
			break
		}
		c.shutdownAll()
	}
	if err != nil {
		t.Fatalf("RunCluster: %v", err)
	}
	c.WaitMetaLeader(t)
	return c
}

// start picks ports and starts n nodes.
func (c *Cluster) start(t testing.TB, n int) error {
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	c.nodes = make([]*clusterNode, n)
	for i := range c.nodes {
		dir, err := os.MkdirTemp(c.dir, fmt.Sprintf("node-%d-", i+1))
		if err != nil {
			return err
		}
		c.nodes[i] = &clusterNode{name: fmt.Sprintf("node-%d", i+1), storeDir: dir,
			clientPort: ports[2*i], clusterPort: ports[2*i+1]}
	}
	for i := range c.nodes {
		if err := c.startNode(i); err != nil {
			return err
		}
	}
	return nil
}

// freePorts returns n distinct loopback ports that were free a moment ago:
// all n are held open together, so none is handed out twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func (c *Cluster) startNode(i int) error {
	nd := c.nodes[i]
	routes := make([]*url.URL, 0, len(c.nodes))
	for _, peer := range c.nodes {
		// A route to the node itself is ignored by the server; one list
		// for every node keeps it simple.
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(peer.clusterPort))})
	}
	s, err := embedded.Start(embedded.Config{
		Listen:     net.JoinHostPort("127.0.0.1", strconv.Itoa(nd.clientPort)),
		StoreDir:   nd.storeDir,
		ServerName: nd.name,
		Options: func(o *server.Options) {
			o.Cluster.Name = c.name
			o.Cluster.Host = "127.0.0.1"
			o.Cluster.Port = nd.clusterPort
			o.Routes = routes
		},
	})
	if err != nil {
		return fmt.Errorf("%s: %w", nd.name, err)
	}
	c.mu.Lock()
	nd.srv = s
	c.mu.Unlock()
	return nil
}

func (c *Cluster) shutdownAll() {
	for i := range c.nodes {
		if c.nodes[i] != nil {
			c.Shutdown(i)
		}
	}
}

// Len returns the number of nodes, running or not.
func (c *Cluster) Len() int { return len(c.nodes) }

// Name returns node i's server name.
func (c *Cluster) Name(i int) string { return c.nodes[i].name }

// Index returns the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.name == name {
			return i
		}
	}
	return -1
}

// Server returns node i's server, or nil while it is shut down.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// URL returns node i's client URL; it stays the same across restarts.
func (c *Cluster) URL(i int) string {
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.nodes[i].clientPort))
}

// URLs returns every node's client URL, comma-separated, as nats.Connect
// takes them: a client fails over to another node when its own goes.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// Shutdown stops node i and waits until it has stopped; a stopped node is
// left alone.
func (c *Cluster) Shutdown(i int) {
	c.mu.Lock()
	s := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts node i again after Shutdown, with the same name, ports and
// store directory, so that it rejoins the cluster with its data. It returns
// once the node accepts clients and follows the meta leader; its streams
// may still be catching up (see WaitStreamCurrent).
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	if c.Server(i) != nil {
		t.Fatalf("Restart(%d): %s is running", i, c.nodes[i].name)
	}
	if err := c.startNode(i); err != nil {
		t.Fatalf("Restart(%d): %v", i, err)
	}
	c.WaitMetaLeader(t)
}

// running returns the running nodes' indexes and servers.
func (c *Cluster) running() ([]int, []*server.Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var idx []int
	var srvs []*server.Server
	for i, nd := range c.nodes {
		if nd.srv != nil {
			idx = append(idx, i)
			srvs = append(srvs, nd.srv)
		}
	}
	return idx, srvs
}

// WaitMetaLeader waits until a running node is the JetStream meta leader,
// every running node is current with it, and the leader has heard from
// every running node: until it has, it places no replicated stream on
// them ("no suitable peers for placement").
func (c *Cluster) WaitMetaLeader(t testing.TB) {
	t.Helper()
	Eventually(t, clusterTimeout, func() bool {
		_, srvs := c.running()
		var leader *server.Server
		for _, s := range srvs {
			if s.JetStreamIsLeader() {
				if leader != nil {
					return false
				}
				leader = s
			}
			if !s.JetStreamIsCurrent() {
				return false
			}
		}
		return leader != nil && len(leader.JetStreamClusterPeers()) == len(srvs)
	}, "a JetStream meta leader that every running node follows and has reported to")
}

// MetaLeader returns the index of the running node that is the JetStream
// meta leader, or -1.
func (c *Cluster) MetaLeader() int {
	idx, srvs := c.running()
	for j, s := range srvs {
		if s.JetStreamIsLeader() {
			return idx[j]
		}
	}
	return -1
}

// StreamLeader returns the index of the running node that leads stream's
// Raft group, or -1 if none does (yet).
func (c *Cluster) StreamLeader(stream string) int {
	idx, srvs := c.running()
	for j, s := range srvs {
		if s.JetStreamIsStreamLeader(account, stream) {
			return idx[j]
		}
	}
	return -1
}

// StreamFollower returns the index of a running node that holds a replica
// of stream and does not lead it, or -1.
func (c *Cluster) StreamFollower(stream string) int {
	idx, srvs := c.running()
	for j, s := range srvs {
		if s.JetStreamIsStreamAssigned(account, stream) && !s.JetStreamIsStreamLeader(account, stream) {
			return idx[j]
		}
	}
	return -1
}

// MoveStreamLeader hands the leadership of stream's Raft group to node to,
// asking the current leader to step down in its favour, and returns once
// to leads. The node must hold a replica of stream and be current with it.
func (c *Cluster) MoveStreamLeader(t testing.TB, stream string, to int) {
	t.Helper()
	nc, err := nats.Connect(c.URL(to))
	if err != nil {
		t.Fatalf("MoveStreamLeader: connect to %s: %v", c.nodes[to].name, err)
	}
	defer nc.Close()
	req, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": c.nodes[to].name}})
	if err != nil {
		t.Fatal(err)
	}
	var last string
	var asked time.Time
	eventually(t, clusterTimeout, func() bool {
		if c.StreamLeader(stream) == to {
			return true
		}
		// Asked again, now and then, until it holds: a request may meet a
		// leader that is still being elected.
		if time.Since(asked) < time.Second {
			return false
		}
		asked = time.Now()
		resp, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second)
		if err != nil {
			last = err.Error()
		} else {
			last = string(resp.Data)
		}
		return c.StreamLeader(stream) == to
	}, func() string {
		return fmt.Sprintf("%s leads stream %s (last step-down answer: %s)", c.nodes[to].name, stream, last)
	})
}

// WaitStreamCurrent waits until stream has a leader and every running node
// that holds a replica is current with it and stores the same last
// sequence, and returns the leader's index. Call it while nothing writes
// to the stream: under writes the replicas' last sequences rarely agree
// at one instant.
func (c *Cluster) WaitStreamCurrent(t testing.TB, stream string) int {
	t.Helper()
	leader := -1
	state := "no leader"
	eventually(t, clusterTimeout, func() bool {
		if leader = c.StreamLeader(stream); leader < 0 {
			state = "no leader"
			return false
		}
		want, ok := lastSeq(c.Server(leader), stream)
		if !ok {
			state = "the leader " + c.nodes[leader].name + " went away"
			return false
		}
		idx, srvs := c.running()
		current := true
		var seqs []string
		for j, s := range srvs {
			if !s.JetStreamIsStreamAssigned(account, stream) {
				continue
			}
			seq, ok := lastSeq(s, stream)
			cur := ok && seq == want && s.JetStreamIsStreamCurrent(account, stream)
			seqs = append(seqs, fmt.Sprintf("%s: last %d, current %t", c.nodes[idx[j]].name, seq, cur))
			current = current && cur
		}
		state = fmt.Sprintf("leader %s; %s", c.nodes[leader].name, strings.Join(seqs, "; "))
		return current
	}, func() string { return fmt.Sprintf("stream %s led and every replica current (%s)", stream, state) })
	return leader
}

// lastSeq returns the last sequence of the replica of stream that s holds.
func lastSeq(s *server.Server, stream string) (uint64, bool) {
	if s == nil {
		return 0, false
	}
	info, err := s.Jsz(&server.JSzOptions{Account: account, Streams: true})
	if err != nil {
		return 0, false
	}
	for _, a := range info.AccountDetails {
		for _, sd := range a.Streams {
			if sd.Name == stream {
				return sd.State.LastSeq, true
			}
		}
	}
	return 0, false
}
