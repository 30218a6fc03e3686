package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyledger/keyledger/internal/pki"
)

// DefaultPollInterval is how often a loaded Certificate checks its files
// for changes unless WithPollInterval says otherwise.
const DefaultPollInterval = 5 * time.Second

// Certificate is a server certificate and its key, handed to each TLS
// handshake by GetCertificate. One made by Load re-reads its files when
// they change (it polls their size and modification time) or when Reload
// is called; connections already established keep the certificate they
// started with, new ones get the new certificate, and a failed reload keeps
// the current certificate. All methods are safe for concurrent use.
type Certificate struct {
	certFile, keyFile string
	logger            *slog.Logger
	onReload          func(error)
	current           atomic.Pointer[tls.Certificate]

	mu   sync.Mutex // serialises reloads; guards seen
	seen [2]fileState

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// fileState is what the poller compares to notice that a file changed.
type fileState struct {
	exists  bool
	size    int64
	modTime int64 // Unix nanoseconds
}

// CertificateOption configures Load.
type CertificateOption func(*certificateOptions) error

type certificateOptions struct {
	interval time.Duration
	logger   *slog.Logger
	onReload func(error)
}

// WithPollInterval sets how often Load's Certificate checks its files for
// changes (positive; default DefaultPollInterval).
func WithPollInterval(d time.Duration) CertificateOption {
	return func(o *certificateOptions) error {
		if d <= 0 {
			return fmt.Errorf("poll interval %v: want a positive duration", d)
		}
		o.interval = d
		return nil
	}
}

// WithLogger sets the logger that reports reloads made by polling: each
// success at info level and each failure at error level (default: none).
func WithLogger(l *slog.Logger) CertificateOption {
	return func(o *certificateOptions) error {
		if l == nil {
			return errors.New("nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithOnReload sets a function called after each reload made by polling
// with its outcome (nil on success). It runs on the polling goroutine.
func WithOnReload(fn func(error)) CertificateOption {
	return func(o *certificateOptions) error {
		if fn == nil {
			return errors.New("nil reload callback")
		}
		o.onReload = fn
		return nil
	}
}

// Load reads a PEM certificate chain (leaf first) and its PEM private key
// from certFile and keyFile, and starts watching both files for changes.
// Call Stop to end the watching.
func Load(certFile, keyFile string, opts ...CertificateOption) (*Certificate, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("load TLS certificate: need both a certificate file and a key file")
	}
	o := certificateOptions{interval: DefaultPollInterval, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, logger: o.logger, onReload: o.onReload,
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	go c.poll(o.interval)
	return c, nil
}

// SelfSigned returns an in-memory self-signed certificate for development,
// with a new ECDSA P-256 key, valid for pki.DefaultDays, for localhost,
// 127.0.0.1, ::1 and hosts (DNS names or IP addresses; the first is also
// the CN, which is "localhost" without hosts). Clients must trust it
// explicitly: log its Fingerprint, or hand them its PEM. Reload does
// nothing on it.
func SelfSigned(hosts ...string) (*Certificate, error) {
	key, err := pki.GenerateKey(pki.ECDSA, 0)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	cn := "localhost"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	dns, ips := []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	der, err := pki.NewSelfSigned(key, pkix.Name{CommonName: cn}.ToRDNSequence(),
		pki.WithDNSNames(dns...), pki.WithIPAddresses(ips...))
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	c := &Certificate{stop: make(chan struct{}), done: make(chan struct{})}
	close(c.done)
	c.current.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf})
	return c, nil
}

// GetCertificate returns the current certificate; it has the signature of
// tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// Leaf returns the current certificate, parsed.
func (c *Certificate) Leaf() *x509.Certificate {
	return c.current.Load().Leaf
}

// Fingerprint returns the SHA-256 fingerprint of the current certificate,
// formatted like `openssl x509 -noout -fingerprint -sha256` does.
func (c *Certificate) Fingerprint() string {
	return pki.Fingerprint(c.current.Load().Certificate[0])
}

// PEM returns the current certificate chain in PEM, for clients to trust.
func (c *Certificate) PEM() []byte {
	var b []byte
	for _, der := range c.current.Load().Certificate {
		b = append(b, pki.EncodeCertificate(der)...)
	}
	return b
}

// Reload re-reads the certificate and key files now (on SIGHUP, say). On
// error it keeps the current certificate and returns the error; on a
// Certificate from SelfSigned it does nothing.
func (c *Certificate) Reload() error {
	if c.certFile == "" {
		return nil
	}
	return c.reload(c.stat())
}

// Stop ends the polling of the files and waits for it to finish. The
// certificate stays usable. Stop may be called more than once.
func (c *Certificate) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// reload reads both files; st is their state just before, which is what
// the poller compares against next, so a change during the read is seen.
func (c *Certificate) reload(st [2]fileState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = st
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s with key %s: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("load TLS certificate %s: %w", c.certFile, err)
		}
	}
	c.current.Store(&pair)
	return nil
}

func (c *Certificate) stat() [2]fileState {
	var st [2]fileState
	for i, name := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(name); err == nil {
			st[i] = fileState{exists: true, size: fi.Size(), modTime: fi.ModTime().UnixNano()}
		}
	}
	return st
}

// poll reloads whenever either file's size or modification time changes.
func (c *Certificate) poll(interval time.Duration) {
	defer close(c.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		st := c.stat()
		c.mu.Lock()
		changed := st != c.seen
		c.mu.Unlock()
		if !changed {
			continue
		}
		err := c.reload(st)
		if err != nil {
			c.logger.Error("TLS certificate reload failed; keeping the current certificate", "err", err)
		} else {
			leaf := c.Leaf()
			c.logger.Info("TLS certificate reloaded", "file", c.certFile, "subject", leaf.Subject.String(),
				"not_after", leaf.NotAfter, "sha256", c.Fingerprint())
		}
		if c.onReload != nil {
			c.onReload(err)
		}
	}
}
