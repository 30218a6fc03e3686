package tlsconfig_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/keyledger/keyledger/internal/embedded"
	"github.com/keyledger/keyledger/internal/pki"
	"github.com/keyledger/keyledger/internal/tlsconfig"
)

// TestClient_NATS connects to a nats-server that requires TLS and client
// certificates, the way keyledger's processes wire these configurations.
func TestClient_NATS(t *testing.T) {
	t.Parallel()
	p := newPair(t, pki.ECDSA)
	cert, err := tlsconfig.Load(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer cert.Stop()
	ca := newTestCA(t, "NATS client CA")
	serverTLS, err := tlsconfig.Server(cert, tlsconfig.WithClientCAFile(ca.file))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Options: func(o *server.Options) {
		o.TLSConfig, o.TLSVerify, o.TLSTimeout = serverTLS, true, 5
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})

	t.Run("MutualTLS", func(t *testing.T) {
		certFile, keyFile := ca.issueClient(t, "validator-1")
		clientTLS, err := tlsconfig.Client(tlsconfig.WithRootCAFile(p.certFile), tlsconfig.WithClientCertFiles(certFile, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(ns.ClientURL(), nats.Secure(clientTLS), nats.Timeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		sub, err := nc.SubscribeSync("hello")
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Publish("hello", []byte("world")); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil || string(msg.Data) != "world" {
			t.Fatalf("got %v, %v, want world", msg, err)
		}
		state, err := nc.TLSConnectionState()
		if err != nil || !state.HandshakeComplete {
			t.Errorf("TLS state: got %+v, %v, want a completed handshake", state, err)
		}
	})
	t.Run("NoClientCertificate", func(t *testing.T) {
		clientTLS, err := tlsconfig.Client(tlsconfig.WithRootCAFile(p.certFile))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(ns.ClientURL(), nats.Secure(clientTLS), nats.Timeout(5*time.Second), nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Fatal("connected without a client certificate")
		}
	})
	t.Run("UntrustedServer", func(t *testing.T) {
		certFile, keyFile := ca.issueClient(t, "validator-2")
		other := newPair(t, pki.ECDSA)
		clientTLS, err := tlsconfig.Client(tlsconfig.WithRootCAFile(other.certFile), tlsconfig.WithClientCertFiles(certFile, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(ns.ClientURL(), nats.Secure(clientTLS), nats.Timeout(5*time.Second), nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Fatal("connected to a server whose certificate is not trusted")
		}
	})
}
