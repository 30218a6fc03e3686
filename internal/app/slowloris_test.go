package app_test

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestServe_SlowClientsAreCut: connections that trickle their headers
// (slowloris) are closed by the server's ReadHeaderTimeout and do not
// stall other clients meanwhile.
func TestServe_SlowClientsAreCut(t *testing.T) {
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)

	const slow = 20
	conns := make([]net.Conn, slow)
	for i := range conns {
		c, err := net.Dial("tcp", ts.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A request line and one header, never the blank line that ends them.
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: keyledger\r\n"); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	opened := time.Now()

	// Meanwhile, everyone else is served at once.
	for range 20 {
		start := time.Now()
		resp, err := http.Get(ts.Base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || time.Since(start) > time.Second {
			t.Fatalf("got %d after %v while slow clients hang on, want 200 at once", resp.StatusCode, time.Since(start))
		}
	}

	// Each slow connection is closed by the server (EOF or reset), about
	// ReadHeaderTimeout (5s) after it opened; 15s bounds the wait.
	for i, c := range conns {
		if err := c.SetReadDeadline(opened.Add(15 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue // a 408 or 400 the server may write before closing
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("slow connection %d still open after 15s, want it cut by ReadHeaderTimeout", i)
			}
			break
		}
	}
	if took := time.Since(opened); took < 4*time.Second {
		t.Fatalf("slow connections closed after %v, want about ReadHeaderTimeout (5s): the test would prove nothing", took)
	}
}
