package natstest_test

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/natstest"
)

// startEcho starts a TCP server that echoes every line back; it is closed
// when the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// roundTrip sends a line through c and returns the answer, or the error.
func roundTrip(c net.Conn, line string) (string, error) {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestProxy(t *testing.T) {
	p := natstest.StartProxy(t, startEcho(t))
	if got, want := p.URL(), "nats://"+p.Addr(); got != want {
		t.Errorf("URL: got %q, want %q", got, want)
	}

	before := dial(t, p.Addr())
	if got, err := roundTrip(before, "hello"); err != nil || got != "hello" {
		t.Fatalf("before Cut: got %q, %v, want %q", got, err, "hello")
	}

	p.Cut()
	if got, err := roundTrip(before, "cut"); err == nil {
		t.Errorf("after Cut, old connection: got %q, want an error", got)
	}
	if got, err := roundTrip(dial(t, p.Addr()), "refused"); err == nil {
		t.Errorf("after Cut, new connection: got %q, want an error", got)
	}

	p.Restore()
	after := dial(t, p.Addr())
	if got, err := roundTrip(after, "again"); err != nil || got != "again" {
		t.Fatalf("after Restore: got %q, %v, want %q", got, err, "again")
	}

	p.Close() // returns only once every goroutine of the proxy has
	if got, err := roundTrip(after, "closed"); err == nil {
		t.Errorf("after Close, open connection: got %q, want an error", got)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Errorf("after Close: dial succeeded, want refused")
	}
	p.Close() // idempotent
}

func TestProxy_NATSReconnect(t *testing.T) {
	s := natstest.RunServer(t)
	p := natstest.StartProxy(t, s.Addr().String())
	nc, err := nats.Connect(p.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	direct := natstest.Connect(t, s)
	sub, err := direct.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := direct.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Request("echo", []byte("x"), 5*time.Second); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}

	p.Cut()
	natstest.Eventually(t, 5*time.Second, func() bool { return !nc.IsConnected() }, "client sees the cut")
	if _, err := nc.Request("echo", []byte("x"), 100*time.Millisecond); err == nil {
		t.Errorf("request while cut: got an answer, want an error")
	}

	p.Restore()
	natstest.Eventually(t, 10*time.Second, nc.IsConnected, "client reconnects after Restore")
	if _, err := nc.Request("echo", []byte("x"), 5*time.Second); err != nil {
		t.Errorf("after Restore: %v", err)
	}
}
