package natstest

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy between clients and one target (a nats-server's
// client address), so that a test can cut a client off from the server and
// let it back, while the server and every other client carry on. It is safe
// for concurrent use.
//
// Every goroutine it starts is owned by it: one accept loop, and two copy
// loops per proxied connection; Close stops them all and returns once they
// have.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	cut    bool
	frozen bool // forward nothing, close nothing: a host gone silent
	closed bool
	conns  map[net.Conn]struct{} // both ends of every proxied connection
}

// StartProxy starts a Proxy on a free loopback port that forwards to target
// (host:port); it is closed when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr returns the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns the proxy's address as a NATS URL.
func (p *Proxy) URL() string { return "nats://" + p.Addr() }

// Cut closes every proxied connection and refuses new ones (they are
// accepted and closed at once) until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.closeConnsLocked()
}

// Freeze makes the proxy forward nothing, either way, on every
// connection (new ones too), while closing none: what a client sees of a
// server whose machine died without a word (no RST, no FIN), as opposed
// to Cut. Bytes sent meanwhile are dropped. Restore ends it.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
}

// Restore lets connections through again after Cut or Freeze.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.frozen = false
}

// Close stops the proxy: it stops listening, closes every proxied
// connection and waits until all its goroutines have returned. It may be
// called more than once.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.ln.Close()
		p.closeConnsLocked()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) closeConnsLocked() {
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// accept runs until the listener is closed. Each connection's goroutine is
// added to the WaitGroup from here, while accept's own count keeps Close's
// Wait from returning early.
func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient accept error; the next Accept decides
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve proxies one client connection until either side closes it, Cut or
// Close.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.open() {
		client.Close()
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed { // cut while dialling
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	p.mu.Unlock()

	// Either direction ending ends both: closing both connections
	// unblocks the other copy.
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pipe(server, client)
		p.drop(client, server)
	}()
	p.pipe(client, server)
	p.drop(client, server)
	<-done
}

// pipe copies src to dst until either fails, dropping what it reads while
// the proxy is frozen.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.isFrozen() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) isFrozen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozen
}

func (p *Proxy) open() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.cut && !p.closed
}

func (p *Proxy) drop(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}
