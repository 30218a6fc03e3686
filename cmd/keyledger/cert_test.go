package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/tlsconfig"
)

// certTool runs an independent peer (openssl, curl) with empty stdin and
// returns its combined output. Without the tool the test is skipped, or
// fails under CI (env CI set).
func certTool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// certOpenSSL runs openssl and fails the test if it fails.
func certOpenSSL(t *testing.T, args ...string) string {
	t.Helper()
	out, err := certTool(t, "openssl", args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// certRun runs `keyledger cert args...` and returns the exit code and
// output.
func certRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"cert"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// certMustRun is certRun that fails the test unless the exit code is 0.
func certMustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := certRun(t, args...)
	if code != 0 {
		t.Fatalf("keyledger cert %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

func wantContains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s: want %q in\n%s", what, w, text)
		}
	}
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s mode: got %v, want %v", path, got, want)
	}
}

// wantSamePublicKey checks, with openssl, that a CSR or certificate holds
// the public key of a private key file.
func wantSamePublicKey(t *testing.T, kind, path, keyPath string) {
	t.Helper()
	ours := certOpenSSL(t, kind, "-in", path, "-noout", "-pubkey")
	theirs := certOpenSSL(t, "pkey", "-in", keyPath, "-pubout")
	if ours != theirs {
		t.Errorf("public key of %s:\n%s\nwant that of %s:\n%s", path, ours, keyPath, theirs)
	}
}

// certKeyCases are the key options and how openssl shows the key.
var certKeyCases = []struct {
	name  string
	flags []string
	text  []string
	rsa   bool
}{
	{"DefaultRSA2048", nil, []string{"rsaEncryption", "Public-Key: (2048 bit)"}, true},
	{"RSA3072", []string{"--rsa-bits", "3072"}, []string{"rsaEncryption", "Public-Key: (3072 bit)"}, true},
	{"RSA4096", []string{"--key-type", "rsa", "--rsa-bits", "4096"}, []string{"rsaEncryption", "Public-Key: (4096 bit)"}, true},
	{"ECDSA", []string{"--key-type", "ecdsa"}, []string{"id-ecPublicKey", "Public-Key: (256 bit)", "prime256v1"}, false},
	{"Ed25519", []string{"--key-type", "ed25519"}, []string{"ED25519"}, false},
}

// checkKeyFile checks a written key with openssl: mode 0600, PKCS#8,
// accepted by `openssl pkey` (and -check for RSA).
func checkKeyFile(t *testing.T, path string, rsa bool) {
	t.Helper()
	wantMode(t, path, 0o600)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("%s: want an unencrypted PKCS#8 PEM key", path)
	}
	if rsa {
		wantContains(t, "openssl pkey -check", certOpenSSL(t, "pkey", "-in", path, "-check", "-noout"), "Key is valid")
	} else {
		certOpenSSL(t, "pkey", "-in", path, "-noout")
	}
}

func TestCert_CSR(t *testing.T) {
	const subject = "/C=DE/ST=Berlin/L=Berlin/O=Example GmbH/OU=Ops/CN=api.example.com/emailAddress=ops@example.com/serialNumber=42"
	for _, c := range certKeyCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			keyPath, csrPath := filepath.Join(dir, "private.key"), filepath.Join(dir, "request.csr")
			stdout := certMustRun(t, append([]string{"csr", "--subject", subject, "--dns", "www.example.com",
				"--dns", "a.example.com,b.example.com", "--ip", "10.0.0.1", "--ip", "2001:db8::1",
				"--key-out", keyPath, "--out", csrPath}, c.flags...)...)
			wantContains(t, "stdout", stdout, "wrote private key "+keyPath, "wrote certificate signing request "+csrPath,
				"subject: "+subject, "DNS:api.example.com, DNS:www.example.com, DNS:a.example.com, DNS:b.example.com, IP:10.0.0.1, IP:2001:db8::1")

			wantContains(t, "openssl req -verify", certOpenSSL(t, "req", "-in", csrPath, "-noout", "-verify"), "verify OK")
			text := certOpenSSL(t, "req", "-in", csrPath, "-noout", "-text")
			wantContains(t, "openssl req -text", text, append([]string{
				"Subject: C = DE, ST = Berlin, L = Berlin, O = Example GmbH, OU = Ops, CN = api.example.com, emailAddress = ops@example.com, serialNumber = 42",
				"X509v3 Subject Alternative Name",
				"DNS:api.example.com, DNS:www.example.com, DNS:a.example.com, DNS:b.example.com, IP Address:10.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1",
			}, c.text...)...)
			checkKeyFile(t, keyPath, c.rsa)
			wantMode(t, csrPath, 0o644)
			wantSamePublicKey(t, "req", csrPath, keyPath)
		})
	}
}

func TestCert_SelfSigned(t *testing.T) {
	cases := []struct {
		name  string
		flags []string
		days  int
		want  []string // in openssl x509 -text
		sans  string
		rsa   bool
	}{
		{"Defaults", []string{"--subject", "/O=Example/CN=keyledger.example"}, 365,
			[]string{"Subject: O = Example, CN = keyledger.example", "Public-Key: (2048 bit)",
				"X509v3 Key Usage: critical\n                Digital Signature, Key Encipherment\n"},
			"DNS:keyledger.example, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1\n", true},
		{"NoSubject", nil, 365, []string{"Subject: CN = localhost"},
			"DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1\n", true},
		{"GivenSANsECDSA30Days", []string{"--subject", "/CN=api.internal", "--dns", "www.internal", "--ip", "10.0.0.5",
			"--key-type", "ecdsa", "--days", "30"}, 30,
			[]string{"Subject: CN = api.internal", "prime256v1", "X509v3 Key Usage: critical\n                Digital Signature\n"},
			"DNS:api.internal, DNS:www.internal, IP Address:10.0.0.5\n", false},
		{"IPCommonNameEd25519", []string{"--subject", "/CN=192.0.2.1", "--ip", "192.0.2.2", "--key-type", "ed25519", "--days", "1"}, 1,
			[]string{"Subject: CN = 192.0.2.1", "ED25519"}, "IP Address:192.0.2.1, IP Address:192.0.2.2\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			keyPath, certPath := filepath.Join(dir, "private.key"), filepath.Join(dir, "certificate.crt")
			start := time.Now()
			stdout := certMustRun(t, append([]string{"selfsigned", "--key-out", keyPath, "--out", certPath}, c.flags...)...)

			text := certOpenSSL(t, "x509", "-in", certPath, "-noout", "-text")
			wantContains(t, "openssl x509 -text", text, append(c.want,
				"X509v3 Basic Constraints: critical\n                CA:FALSE\n",
				"X509v3 Extended Key Usage: \n                TLS Web Server Authentication\n",
				"X509v3 Subject Alternative Name: \n                "+c.sans)...)
			dates := certOpenSSL(t, "x509", "-in", certPath, "-noout", "-startdate", "-enddate")
			notBefore, notAfter := parseOpenSSLDates(t, dates)
			if d := notAfter.Sub(start.AddDate(0, 0, c.days)); d < -5*time.Second || d > 5*time.Second {
				t.Errorf("validity: got %s, want %d days from now", dates, c.days)
			}
			if d := start.Sub(notBefore); d < 55*time.Second || d > 65*time.Second {
				t.Errorf("notBefore: got %v, want a minute before %v", notBefore, start)
			}

			// The printed fingerprint is openssl's.
			fp := certOpenSSL(t, "x509", "-in", certPath, "-noout", "-fingerprint", "-sha256")
			_, want, _ := strings.Cut(strings.TrimSpace(fp), "=")
			wantContains(t, "stdout", stdout, "wrote private key "+keyPath, "wrote self-signed certificate "+certPath,
				"SHA-256 fingerprint: "+want+"\n")
			if !regexp.MustCompile(`serial:  [0-9A-F]{32}\n`).MatchString(stdout) {
				t.Errorf("stdout: want a 128-bit serial in\n%s", stdout)
			}
			checkKeyFile(t, keyPath, c.rsa)
			wantSamePublicKey(t, "x509", certPath, keyPath)
		})
	}
}

func parseOpenSSLDates(t *testing.T, out string) (notBefore, notAfter time.Time) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		when, err := time.Parse("Jan _2 15:04:05 2006 MST", v)
		if err != nil {
			t.Fatalf("openssl date %q: %v", line, err)
		}
		if k == "notBefore" {
			notBefore = when
		} else {
			notAfter = when
		}
	}
	return notBefore, notAfter
}

func TestCert_RefusesOverwrite(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"csr", "selfsigned"} {
		t.Run(cmd, func(t *testing.T) {
			dir := t.TempDir()
			keyPath, outPath := filepath.Join(dir, "private.key"), filepath.Join(dir, "out.pem")
			args := []string{cmd, "--subject", "/CN=first.example", "--key-type", "ecdsa", "--key-out", keyPath, "--out", outPath}
			certMustRun(t, args...)
			oldKey, oldOut := readFile(t, keyPath), readFile(t, outPath)

			code, _, stderr := certRun(t, args...)
			if code != 1 || !strings.Contains(stderr, "use --force") {
				t.Errorf("second run: got exit %d, %q, want 1 and a hint at --force", code, stderr)
			}
			if readFile(t, keyPath) != oldKey || readFile(t, outPath) != oldOut {
				t.Error("a refused run changed the files")
			}

			// Only the output exists: nothing is written, not even the key.
			if err := os.Remove(keyPath); err != nil {
				t.Fatal(err)
			}
			if code, _, _ := certRun(t, args...); code != 1 {
				t.Errorf("existing --out: got exit %d, want 1", code)
			}
			if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("key file after a refused run: got %v, want none", err)
			}
			if readFile(t, outPath) != oldOut {
				t.Error("a refused run changed the output")
			}

			// --force replaces both, and the key is 0600 again.
			if err := os.WriteFile(keyPath, []byte(oldKey), 0o644); err != nil {
				t.Fatal(err)
			}
			certMustRun(t, append(args, "--force")...)
			if readFile(t, keyPath) == oldKey || readFile(t, outPath) == oldOut {
				t.Error("--force did not replace the files")
			}
			wantMode(t, keyPath, 0o600)
			wantSamePublicKey(t, map[string]string{"csr": "req", "selfsigned": "x509"}[cmd], outPath, keyPath)
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCert_ReuseKey: --key signs with an existing key in the formats
// openssl writes, and writes no key.
func TestCert_ReuseKey(t *testing.T) {
	t.Chdir(t.TempDir()) // the default --key-out must not appear here
	cases := []struct {
		name string
		gen  []string
		want string
	}{
		{"PKCS1-RSA", []string{"genrsa", "-traditional"}, "RSA 2048"},
		{"PKCS8-RSA4096", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"}, "RSA 4096"},
		{"SEC1-EC", []string{"ecparam", "-genkey", "-name", "prime256v1"}, "ECDSA P-256"},
		{"PKCS8-Ed25519", []string{"genpkey", "-algorithm", "ed25519"}, "Ed25519"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			keyPath := filepath.Join(dir, "existing.key")
			certOpenSSL(t, append(c.gen, "-out", keyPath)...)
			before := readFile(t, keyPath)
			for _, cmd := range []string{"csr", "selfsigned"} {
				out := filepath.Join(dir, cmd+".pem")
				stdout := certMustRun(t, cmd, "--key", keyPath, "--subject", "/CN=reuse.example", "--out", out)
				wantContains(t, "stdout", stdout, "reused private key "+keyPath+" ("+c.want+")")
				wantSamePublicKey(t, map[string]string{"csr": "req", "selfsigned": "x509"}[cmd], out, keyPath)
			}
			if readFile(t, keyPath) != before {
				t.Error("--key changed the key file")
			}
			if _, err := os.Stat("private.key"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("private.key: got %v, want no key written", err)
			}
		})
	}
	t.Run("Missing", func(t *testing.T) {
		code, _, stderr := certRun(t, "csr", "--key", "missing.key", "--subject", "/CN=x", "--out", "x.csr")
		if code != 1 || !strings.Contains(stderr, "missing.key") {
			t.Errorf("got exit %d, %q, want 1 naming the file", code, stderr)
		}
	})
	t.Run("WeakRSA", func(t *testing.T) {
		keyPath := filepath.Join(t.TempDir(), "weak.key")
		certOpenSSL(t, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", keyPath)
		code, _, stderr := certRun(t, "csr", "--key", keyPath, "--subject", "/CN=x", "--out", filepath.Join(t.TempDir(), "x.csr"))
		if code != 1 || !strings.Contains(stderr, "1024 bits") {
			t.Errorf("got exit %d, %q, want 1 refusing the 1024-bit key", code, stderr)
		}
	})
}

func TestCert_UsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, out := filepath.Join(dir, "private.key"), filepath.Join(dir, "out.pem")
	paths := []string{"--key-out", key, "--out", out}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"NoCommand", nil, "missing command"},
		{"UnknownCommand", []string{"renew"}, `unknown command "renew"`},
		{"CSRWithoutSubject", []string{"csr"}, "--subject is required"},
		{"BadSubject", []string{"csr", "--subject", "CN=x"}, "--subject: parse subject"},
		{"UnknownAttribute", []string{"selfsigned", "--subject", "/XX=x"}, "unknown attribute type"},
		{"RSA1024", []string{"csr", "--subject", "/CN=x", "--rsa-bits", "1024"}, "--rsa-bits 1024"},
		{"RSA3000", []string{"selfsigned", "--rsa-bits", "3000"}, "--rsa-bits 3000"},
		{"RSABitsNotInt", []string{"selfsigned", "--rsa-bits", "big"}, "invalid value"},
		{"KeyType", []string{"selfsigned", "--key-type", "dsa"}, "--key-type"},
		{"RSABitsForECDSA", []string{"selfsigned", "--key-type", "ecdsa", "--rsa-bits", "4096"}, "applies to RSA keys"},
		{"KeyAndKeyType", []string{"selfsigned", "--key", "k.pem", "--key-type", "ecdsa"}, "--key reuses"},
		{"KeyAndKeyOut", []string{"selfsigned", "--key", "k.pem", "--key-out", "other.key"}, "--key-out does not apply"},
		{"IPAsDNS", []string{"selfsigned", "--dns", "10.0.0.1"}, "is an IP address"},
		{"BadDNS", []string{"selfsigned", "--dns", "under_score.example"}, "--dns"},
		{"BadIP", []string{"selfsigned", "--ip", "10.0.0.300"}, "not an IP address"},
		{"ZeroDays", []string{"selfsigned", "--days", "0"}, "--days 0"},
		{"DaysOnCSR", []string{"csr", "--subject", "/CN=x", "--days", "30"}, "flag provided but not defined: -days"},
		{"SameFile", []string{"selfsigned", "--key-out", out}, "--key-out and --out name the same file"},
		{"KeyIsOut", []string{"csr", "--subject", "/CN=x", "--key-out", "private.key", "--key", out, "--force"}, "--key and --out name the same file"},
		{"ExtraArgument", []string{"selfsigned", "extra"}, "unexpected arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if len(args) > 0 && (args[0] == "csr" || args[0] == "selfsigned") {
				args = append(append([]string{args[0]}, paths...), args[1:]...)
			}
			code, stdout, stderr := certRun(t, args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("got exit %d, stderr %q, want 2 and %q", code, stderr, c.want)
			}
			if stdout != "" {
				t.Errorf("stdout: got %q, want nothing", stdout)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("files after a usage error: got %v, want none", entries)
			}
		})
	}
}

func TestCert_Help(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cmd   string
		wants []string
	}{
		{"csr", []string{"openssl req -new -nodes -newkey rsa:2048", "Example:", "keyledger cert csr --subject", "-rsa-bits", "-key-out"}},
		{"selfsigned", []string{"openssl req -x509 -nodes -days 365", "Example:", "keyledger cert selfsigned --subject", "-days"}},
	} {
		code, stdout, _ := certRun(t, c.cmd, "--help")
		if code != 0 {
			t.Errorf("cert %s --help: exit %d, want 0", c.cmd, code)
		}
		wantContains(t, "cert "+c.cmd+" --help", stdout, c.wants...)
	}
	if code, stdout, _ := certRun(t, "help"); code != 0 || !strings.Contains(stdout, "keyledger cert selfsigned") {
		t.Errorf("cert help: got %d, %q", code, stdout)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "\n  cert ") {
		t.Errorf("keyledger help: got %d, %q, want the cert command listed", code, out.String())
	}
}

// TestCert_ServesHTTPS: a certificate made by `cert selfsigned` serves
// HTTPS through tlsconfig's server configuration to Go, curl and openssl,
// and old protocols and CBC suites are refused.
func TestCert_ServesHTTPS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyPath, certPath := filepath.Join(dir, "private.key"), filepath.Join(dir, "certificate.crt")
	certMustRun(t, "selfsigned", "--subject", "/O=Example/CN=localhost", "--key-out", keyPath, "--out", certPath)

	cert, err := tlsconfig.Load(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cert.Stop()
	cfg, err := tlsconfig.Server(cert)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	defer func() {
		srv.Close()
		<-done
	}()
	addr := ln.Addr().String()
	url := "https://" + addr + "/"

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(readFile(t, certPath))) {
		t.Fatal("no certificate in " + certPath)
	}
	get := func(cfg *tls.Config) (string, error) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	if body, err := get(&tls.Config{RootCAs: pool}); err != nil || body != "ok" {
		t.Errorf("Go client trusting the certificate: got %q, %v, want ok", body, err)
	}
	if out, err := certTool(t, "curl", "-sS", "--fail", "--max-time", "10", "--cacert", certPath, url); err != nil || out != "ok" {
		t.Errorf("curl --cacert: got %q, %v, want ok", out, err)
	}
	out, err := certTool(t, "openssl", "s_client", "-tls1_2", "-connect", addr, "-CAfile", certPath,
		"-verify_return_error", "-verify_ip", "127.0.0.1", "-brief")
	if err != nil {
		t.Errorf("openssl s_client -tls1_2: %v\n%s", err, out)
	}
	wantContains(t, "openssl s_client -tls1_2", out, "Protocol version: TLSv1.2", "Verification: OK")
	if body, err := get(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil ||
		!strings.Contains(err.Error(), "protocol version not supported") {
		t.Errorf("TLS 1.1 client: got %q, %v, want a refused handshake", body, err)
	}
	if body, err := get(&tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA}}); err == nil ||
		!strings.Contains(err.Error(), "handshake failure") {
		t.Errorf("TLS 1.2 client offering only CBC: got %q, %v, want a refused handshake", body, err)
	}
}
