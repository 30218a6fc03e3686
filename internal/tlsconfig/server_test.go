package tlsconfig_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/pki"
	"github.com/keyledger/keyledger/internal/tlsconfig"
)

func TestServer_Config(t *testing.T) {
	t.Parallel()
	cert, err := tlsconfig.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsconfig.Server(cert)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.MaxVersion != 0 {
		t.Errorf("versions: got %x-%x, want TLS 1.2 up to the newest", cfg.MinVersion, cfg.MaxVersion)
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20")) {
			t.Errorf("cipher suite %s: not ECDHE with AEAD", name)
		}
	}
	if len(cfg.CipherSuites) != 6 {
		t.Errorf("cipher suites: got %d, want 6", len(cfg.CipherSuites))
	}
	if cfg.ClientAuth != tls.NoClientCert || len(cfg.Certificates) != 0 || cfg.GetCertificate == nil {
		t.Errorf("got ClientAuth %v, %d Certificates, GetCertificate set %v; want no client auth, none, set",
			cfg.ClientAuth, len(cfg.Certificates), cfg.GetCertificate != nil)
	}
	if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos: got %v", cfg.NextProtos)
	}
	if _, err := tlsconfig.Server(nil); err == nil {
		t.Error("Server(nil): got nil, want an error")
	}
}

// TestServer_Handshakes checks who gets in, with each key type: modern Go
// clients, curl and openssl with TLS 1.2 or 1.3 do; TLS 1.1 and CBC
// suites do not.
func TestServer_Handshakes(t *testing.T) {
	t.Parallel()
	for _, typ := range []pki.KeyType{pki.RSA, pki.ECDSA, pki.Ed25519} {
		t.Run(string(typ), func(t *testing.T) {
			p := newPair(t, typ)
			cert, err := tlsconfig.Load(p.certFile, p.keyFile)
			if err != nil {
				t.Fatal(err)
			}
			defer cert.Stop()
			cfg, err := tlsconfig.Server(cert)
			if err != nil {
				t.Fatal(err)
			}
			addr := serve(t, cfg, okHandler)
			url := "https://" + addr + "/"
			_, port, _ := net.SplitHostPort(addr)

			t.Run("GoTLS13", func(t *testing.T) {
				c := &http.Client{Transport: &http.Transport{TLSClientConfig: trusting(p.leaf)}}
				resp, err := c.Get(url)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.TLS.Version != tls.VersionTLS13 {
					t.Errorf("version: got %s, want TLS 1.3", tls.VersionName(resp.TLS.Version))
				}
			})
			t.Run("GoTLS12", func(t *testing.T) {
				cfg := trusting(p.leaf)
				cfg.MaxVersion = tls.VersionTLS12
				if body, _, err := get(cfg, url); err != nil || body != "ok" {
					t.Errorf("got %q, %v, want ok", body, err)
				}
			})
			t.Run("GoTLS11Refused", func(t *testing.T) {
				cfg := trusting(p.leaf)
				cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
				if _, _, err := get(cfg, url); err == nil || !strings.Contains(err.Error(), "remote error: tls: protocol version not supported") {
					t.Errorf("got %v, want the server to refuse TLS 1.1", err)
				}
			})
			t.Run("GoCBCRefused", func(t *testing.T) {
				cfg := trusting(p.leaf)
				cfg.MaxVersion = tls.VersionTLS12
				cfg.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
					tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}
				if _, _, err := get(cfg, url); err == nil || !strings.Contains(err.Error(), "remote error: tls: handshake failure") {
					t.Errorf("got %v, want the server to refuse CBC suites", err)
				}
			})
			t.Run("Curl", func(t *testing.T) {
				out, err := runTool(t, "curl", "-sS", "--fail", "--max-time", "10", "--cacert", p.certFile, url)
				if err != nil || out != "ok" {
					t.Errorf("curl: got %q, %v, want ok", out, err)
				}
				// By name, through the localhost SAN.
				out, err = runTool(t, "curl", "-sS", "--fail", "--max-time", "10", "--cacert", p.certFile,
					"--resolve", "localhost:"+port+":127.0.0.1", "https://localhost:"+port+"/")
				if err != nil || out != "ok" {
					t.Errorf("curl https://localhost: got %q, %v, want ok", out, err)
				}
			})
			for _, version := range []string{"-tls1_2", "-tls1_3"} {
				t.Run("OpenSSL"+version, func(t *testing.T) {
					out, err := runTool(t, "openssl", "s_client", "-connect", addr, version, "-CAfile", p.certFile,
						"-verify_return_error", "-verify_ip", "127.0.0.1", "-brief")
					if err != nil {
						t.Fatalf("openssl s_client %s: %v\n%s", version, err, out)
					}
					want := "TLSv1." + version[len(version)-1:]
					if !strings.Contains(out, "Protocol version: "+want) || !strings.Contains(out, "Verification: OK") {
						t.Errorf("openssl s_client %s: want %s and a verified certificate in\n%s", version, want, out)
					}
				})
			}
			t.Run("OpenSSLCBCRefused", func(t *testing.T) {
				out, err := runTool(t, "openssl", "s_client", "-connect", addr, "-tls1_2",
					"-cipher", "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA384:AES128-SHA", "-brief")
				if err == nil || !strings.Contains(out, "alert handshake failure") {
					t.Errorf("openssl s_client with CBC suites only: got %v, want the server to refuse\n%s", err, out)
				}
			})
		})
	}
}

func TestServer_ClientCA(t *testing.T) {
	t.Parallel()
	p := newPair(t, pki.ECDSA)
	cert, err := tlsconfig.Load(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer cert.Stop()
	ca := newTestCA(t, "Test Client CA")
	cfg, err := tlsconfig.Server(cert, tlsconfig.WithClientCAFile(ca.file))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Errorf("ClientAuth: got %v, want RequireAndVerifyClientCert", cfg.ClientAuth)
	}
	addr := serve(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + r.TLS.PeerCertificates[0].Subject.CommonName))
	}))
	url := "https://" + addr + "/"

	t.Run("NoClientCertificate", func(t *testing.T) {
		c, err := tlsconfig.Client(tlsconfig.WithRootCAFile(p.certFile))
		if err != nil {
			t.Fatal(err)
		}
		if body, _, err := get(c, url); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Errorf("got %q, %v, want the server to require a certificate", body, err)
		}
	})
	t.Run("SignedByTheCA", func(t *testing.T) {
		certFile, keyFile := ca.issueClient(t, "service-a")
		c, err := tlsconfig.Client(tlsconfig.WithRootCAFile(p.certFile), tlsconfig.WithClientCertFiles(certFile, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		if body, _, err := get(c, url); err != nil || body != "hello service-a" {
			t.Errorf("got %q, %v, want hello service-a", body, err)
		}
		out, err := runTool(t, "curl", "-sS", "--fail", "--max-time", "10", "--cacert", p.certFile,
			"--cert", certFile, "--key", keyFile, url)
		if err != nil || out != "hello service-a" {
			t.Errorf("curl: got %q, %v, want hello service-a", out, err)
		}
	})
	t.Run("SignedByAnotherCA", func(t *testing.T) {
		other := newTestCA(t, "Other CA")
		certFile, keyFile := other.issueClient(t, "intruder")
		c, err := tlsconfig.Client(tlsconfig.WithRootCAFile(p.certFile), tlsconfig.WithClientCertFiles(certFile, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		// Go would not send a certificate from a CA the server does not
		// name; force it, so that the server has to verify it.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c.Certificates[0], nil }
		if body, _, err := get(c, url); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
			t.Errorf("got %q, %v, want the server to refuse the certificate", body, err)
		}
	})
}

func TestServer_OptionErrors(t *testing.T) {
	t.Parallel()
	cert, err := tlsconfig.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	p := newPair(t, pki.ECDSA)
	for name, opt := range map[string]tlsconfig.ServerOption{
		"MissingFile": tlsconfig.WithClientCAFile(notPEM),
		"NoFile":      tlsconfig.WithClientCAFile(""),
		"KeyNotCerts": tlsconfig.WithClientCAFile(p.keyFile),
		"NilPool":     tlsconfig.WithClientCAs(nil),
	} {
		if _, err := tlsconfig.Server(cert, opt); err == nil || !strings.HasPrefix(err.Error(), "server TLS config: client CA") {
			t.Errorf("%s: got %v, want a client CA error", name, err)
		}
	}
}

func TestClient_OptionErrors(t *testing.T) {
	t.Parallel()
	p := newPair(t, pki.ECDSA)
	other := newPair(t, pki.ECDSA)
	for name, opt := range map[string]tlsconfig.ClientOption{
		"MissingRootCA":  tlsconfig.WithRootCAFile(filepath.Join(t.TempDir(), "none")),
		"KeyAsRootCA":    tlsconfig.WithRootCAFile(p.keyFile),
		"OnlyCert":       tlsconfig.WithClientCertFiles(p.certFile, ""),
		"MismatchedPair": tlsconfig.WithClientCertFiles(p.certFile, other.keyFile),
		"EmptyName":      tlsconfig.WithServerName(""),
	} {
		if _, err := tlsconfig.Client(opt); err == nil || !strings.HasPrefix(err.Error(), "client TLS config: ") {
			t.Errorf("%s: got %v, want a client TLS config error", name, err)
		}
	}
	cfg, err := tlsconfig.Client(tlsconfig.WithServerName("nats.example"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "nats.example" || cfg.MinVersion != tls.VersionTLS12 || cfg.RootCAs != nil {
		t.Errorf("got ServerName %q, MinVersion %x, RootCAs %v", cfg.ServerName, cfg.MinVersion, cfg.RootCAs)
	}
}
