package mail_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/mail"
	"github.com/keyledger/keyledger/internal/mailtest"
)

const from = "keyledger@example.com"

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// selfSigned writes a certificate for name and its key into dir and
// returns the files and a pool that trusts the certificate.
func selfSigned(t *testing.T, name string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// to dials addr whatever address is asked for: it puts a server on
// loopback under a name that is not loopback.
func to(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

func TestSMTP_Send(t *testing.T) {
	t.Parallel()
	ms := mailtest.Start(t, mailtest.Options{})
	s, err := mail.New("smtp://"+ms.SMTPAddr, from)
	if err != nil {
		t.Fatal(err)
	}
	body := "line one\n.leading dot\nlast line\n"
	if err := s.Send(testContext(t), mail.Message{To: "alice@example.com", Subject: "Hello there", Body: body}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := ms.Await(t, "alice@example.com", 1)[0]
	if got.From != from || got.Subject != "Hello there" {
		t.Errorf("got from %q subject %q, want %q and %q", got.From, got.Subject, from, "Hello there")
	}
	if strings.ReplaceAll(got.Text, "\r\n", "\n") != body {
		t.Errorf("body: got %q, want %q", got.Text, body)
	}
}

// TestSMTP_STARTTLS: smtp:// to a server that is not on loopback demands
// STARTTLS with a certificate the client trusts; without it nothing is
// sent in clear.
func TestSMTP_STARTTLS(t *testing.T) {
	t.Parallel()
	const host = "mail.keyledger.test"
	certFile, keyFile, roots := selfSigned(t, host)
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		ms := mailtest.Start(t, mailtest.Options{CertFile: certFile, KeyFile: keyFile, RequireSTARTTLS: true})
		_, port, _ := net.SplitHostPort(ms.SMTPAddr)
		s, err := mail.New("smtp://"+host+":"+port, from, mail.WithDialer(to(ms.SMTPAddr)),
			mail.WithTLSConfig(&tls.Config{RootCAs: roots}))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(testContext(t), mail.Message{To: "bob@example.com", Subject: "over TLS", Body: "hi\n"}); err != nil {
			t.Fatalf("Send: %v", err)
		}
		ms.Await(t, "bob@example.com", 1)
	})
	t.Run("ErrNoSTARTTLS", func(t *testing.T) {
		t.Parallel()
		ms := mailtest.Start(t, mailtest.Options{})
		_, port, _ := net.SplitHostPort(ms.SMTPAddr)
		s, err := mail.New("smtp://user:secret@"+host+":"+port, from, mail.WithDialer(to(ms.SMTPAddr)))
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(testContext(t), mail.Message{To: "carol@example.com", Subject: "in clear", Body: "hi\n"})
		if !errors.Is(err, mail.ErrNoTLS) {
			t.Fatalf("Send to a non-loopback server without STARTTLS: got %v, want ErrNoTLS", err)
		}
		if got := ms.Messages(t); len(got) != 0 {
			t.Errorf("got %d messages through a server without TLS, want none", len(got))
		}
	})
	t.Run("ErrUntrustedCertificate", func(t *testing.T) {
		t.Parallel()
		ms := mailtest.Start(t, mailtest.Options{CertFile: certFile, KeyFile: keyFile})
		_, port, _ := net.SplitHostPort(ms.SMTPAddr)
		s, err := mail.New("smtp://"+host+":"+port, from, mail.WithDialer(to(ms.SMTPAddr)))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(testContext(t), mail.Message{To: "dave@example.com", Subject: "x", Body: "x\n"}); err == nil {
			t.Fatal("Send with a self-signed certificate nobody trusts: got nil, want an error")
		}
		if got := ms.Messages(t); len(got) != 0 {
			t.Errorf("got %d messages, want none", len(got))
		}
	})
}

// TestSMTP_ImplicitTLS: smtps:// speaks TLS from the first byte, and
// refuses a certificate it does not trust.
func TestSMTP_ImplicitTLS(t *testing.T) {
	t.Parallel()
	const host = "smtps.keyledger.test"
	certFile, keyFile, roots := selfSigned(t, host)
	ms := mailtest.Start(t, mailtest.Options{CertFile: certFile, KeyFile: keyFile, ImplicitTLS: true})
	_, port, _ := net.SplitHostPort(ms.SMTPAddr)
	s, err := mail.New("smtps://"+host+":"+port, from, mail.WithDialer(to(ms.SMTPAddr)),
		mail.WithTLSConfig(&tls.Config{RootCAs: roots}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(testContext(t), mail.Message{To: "gus@example.com", Subject: "implicit TLS", Body: "hi\n"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ms.Await(t, "gus@example.com", 1)
	untrusting, err := mail.New("smtps://"+host+":"+port, from, mail.WithDialer(to(ms.SMTPAddr)))
	if err != nil {
		t.Fatal(err)
	}
	if err := untrusting.Send(testContext(t), mail.Message{To: "hal@example.com", Subject: "x", Body: "x\n"}); err == nil {
		t.Error("Send with an untrusted certificate: got nil, want an error")
	}
}

func TestNew_Invalid(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "http://mail.example.com", "smtp://", "smtp://host/path", "smtp://host?starttls=none",
		"smtp://host#x", "mailto:a@example.com", "smtp://host:25\n"} {
		if _, err := mail.New(u, from); err == nil {
			t.Errorf("New(%q): got nil, want an error", u)
		}
	}
	for _, f := range []string{"", "Keyledger <k@example.com>", "k@example.com\r\nBcc: x@example.com", "not an address"} {
		if _, err := mail.New("smtp://127.0.0.1:25", f); err == nil {
			t.Errorf("New with sender %q: got nil, want an error", f)
		}
	}
	// A password in the URL never shows in the error.
	if _, err := mail.New("smtp://user:hunter2@host:bad port", from); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New with a bad URL holding a password: got %v, want an error without the password", err)
	}
}

// TestSMTP_Send_HeaderInjection: a recipient or subject that would add a
// header is refused before anything is sent.
func TestSMTP_Send_HeaderInjection(t *testing.T) {
	t.Parallel()
	ms := mailtest.Start(t, mailtest.Options{})
	s, err := mail.New("smtp://"+ms.SMTPAddr, from)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []mail.Message{
		{To: "a@example.com\r\nBcc: victim@example.com", Subject: "x", Body: "x"},
		{To: "a@example.com>\r\nRCPT TO:<victim@example.com", Subject: "x", Body: "x"},
		{To: "a@example.com", Subject: "x\r\nBcc: victim@example.com", Body: "x"},
		{To: "Mallory <a@example.com>", Subject: "x", Body: "x"},
	} {
		if err := s.Send(testContext(t), m); err == nil {
			t.Errorf("Send(%q, %q): got nil, want an error", m.To, m.Subject)
		}
	}
	if got := ms.Messages(t); len(got) != 0 {
		t.Errorf("got %d messages, want none", len(got))
	}
}

// TestOutbox_SlowServer: a mail server that accepts connections and never
// answers does not hold up whoever queues a message, and the Outbox gives
// up after its bounded attempts, logging neither address nor body.
func TestOutbox_SlowServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, silent
			mu.Unlock()
			accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	s, err := mail.New("smtp://"+l.Addr().String(), from, mail.WithTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(syncWriter{&logMu, &logs}, nil))
	o, err := mail.NewOutbox(s, mail.OutboxConfig{Attempts: 2, Backoff: 10 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	n, err := mail.NewNotifier(o, "https://keys.example.com")
	if err != nil {
		t.Fatal(err)
	}
	token, err := domain.NewToken("usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n.Verification("victim@example.com", token)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("queueing a message took %v with a silent server, want no wait", took)
	}
	for range 2 {
		select {
		case <-accepted:
		case <-time.After(30 * time.Second):
			t.Fatal("the Outbox did not try twice")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o.Close(ctx)
	logMu.Lock()
	defer logMu.Unlock()
	out := logs.String()
	if !strings.Contains(out, "giving up") {
		t.Errorf("logs: got %q, want the Outbox to give up", out)
	}
	if strings.Contains(out, "victim") || strings.Contains(out, token.Reveal()) {
		t.Errorf("logs: got %q, want neither the address nor the token", out)
	}
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestOutbox_PerRecipient: nobody can flood one mailbox through sign-up.
func TestOutbox_PerRecipient(t *testing.T) {
	t.Parallel()
	ms := mailtest.Start(t, mailtest.Options{})
	s, err := mail.New("smtp://"+ms.SMTPAddr, from)
	if err != nil {
		t.Fatal(err)
	}
	o, err := mail.NewOutbox(s, mail.OutboxConfig{PerRecipient: 2, RecipientEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		queued := o.Enqueue(mail.Message{To: "eve@example.com", Subject: "x", Body: "x\n"})
		if queued != (i < 2) {
			t.Errorf("message %d: queued %v, want %v", i, queued, i < 2)
		}
	}
	if !o.Enqueue(mail.Message{To: "frank@example.com", Subject: "x", Body: "x\n"}) {
		t.Error("another recipient: not queued")
	}
	ms.Await(t, "frank@example.com", 1)
	ms.Await(t, "eve@example.com", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o.Close(ctx)
	if got := len(ms.To(t, "eve@example.com")); got != 2 {
		t.Errorf("got %d messages to one recipient, want 2", got)
	}
}

// TestOutbox_CloseDuringRetries: shutting down never waits out the
// retries of a mail server that is down.
func TestOutbox_CloseDuringRetries(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there now: every attempt is refused
	s, err := mail.New("smtp://"+dead, from)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs bytes.Buffer
	o, err := mail.NewOutbox(s, mail.OutboxConfig{Attempts: 5, Backoff: time.Hour,
		Logger: slog.New(slog.NewTextHandler(syncWriter{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	o.Enqueue(mail.Message{To: "ida@example.com", Subject: "x", Body: "x\n"})
	o.Enqueue(mail.Message{To: "jon@example.com", Subject: "x", Body: "x\n"})
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		retrying := strings.Contains(logs.String(), "retrying")
		mu.Unlock()
		if retrying {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed first attempt within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	o.Close(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close during an hour's backoff took %v, want at once", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("logs: got %q, want the dropped mail said", logs.String())
	}
}
