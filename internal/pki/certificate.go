package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// DefaultDays is the validity of a self-signed certificate when WithDays is
// not given, as in `openssl req -x509 -days 365`.
const DefaultDays = 365

// MaxDays is the longest validity WithDays accepts (100 years).
const MaxDays = 36525

// Option configures NewCSR and NewSelfSigned. Each option checks its input;
// the constructor returns the first error.
type Option func(*options) error

type options struct {
	dns  []string
	ips  []net.IP
	days int
	now  func() time.Time
}

// WithDNSNames adds DNS subject alternative names. Each must be a host
// name of letter-digit-hyphen labels, optionally with a leading "*."
// wildcard label; IP addresses belong in WithIPAddresses.
func WithDNSNames(names ...string) Option {
	return func(o *options) error {
		for _, n := range names {
			if err := CheckDNSName(n); err != nil {
				return err
			}
			o.dns = append(o.dns, n)
		}
		return nil
	}
}

// WithIPAddresses adds IP address subject alternative names.
func WithIPAddresses(ips ...net.IP) Option {
	return func(o *options) error {
		for _, ip := range ips {
			if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
				return fmt.Errorf("IP address %v: invalid", ip)
			}
			o.ips = append(o.ips, ip)
		}
		return nil
	}
}

// WithDays sets a certificate's validity to days (1 to MaxDays) from now.
// It applies to NewSelfSigned only; NewCSR refuses it.
func WithDays(days int) Option {
	return func(o *options) error {
		if days < 1 || days > MaxDays {
			return fmt.Errorf("validity of %d days: want 1 to %d", days, MaxDays)
		}
		o.days = days
		return nil
	}
}

// WithClock sets the source of the current time (default time.Now), which
// fixes a certificate's validity period.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("nil clock")
		}
		o.now = now
		return nil
	}
}

func applyOptions(opts []Option) (*options, error) {
	o := &options{now: time.Now}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// CheckDNSName reports whether name is usable as a DNS subject alternative
// name: at most 253 characters of dot-separated labels of 1 to 63 letters,
// digits and inner hyphens, the first of which may be the wildcard "*".
func CheckDNSName(name string) error {
	if name == "" {
		return errors.New("DNS name: empty")
	}
	if net.ParseIP(name) != nil {
		return fmt.Errorf("DNS name %q is an IP address", name)
	}
	if len(name) > 253 {
		return fmt.Errorf("DNS name %q: longer than 253 characters", name)
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("DNS name %q: bad label %q", name, l)
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("DNS name %q: %q is not a letter, digit or hyphen", name, c)
			}
		}
	}
	return nil
}

// hostNames splits a subject's CNs that name a host (an IP address,
// "localhost", or a valid DNS name with a dot) into DNS names and IPs.
// Browsers ignore the CN, so such a CN must also be a SAN.
func hostNames(subject pkix.RDNSequence) (dns []string, ips []net.IP) {
	for _, cn := range commonNames(subject) {
		if ip := net.ParseIP(cn); ip != nil {
			ips = append(ips, ip)
		} else if CheckDNSName(cn) == nil && (strings.Contains(cn, ".") || strings.EqualFold(cn, "localhost")) {
			dns = append(dns, cn)
		}
	}
	return dns, ips
}

// sans merges name lists, dropping repeats (DNS names compare without case).
func sans(dnsLists [][]string, ipLists [][]net.IP) ([]string, []net.IP) {
	var dns []string
	seen := map[string]bool{}
	for _, l := range dnsLists {
		for _, n := range l {
			if k := strings.ToLower(n); !seen[k] {
				seen[k] = true
				dns = append(dns, n)
			}
		}
	}
	var ips []net.IP
	for _, l := range ipLists {
		for _, ip := range l {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			if k := "ip:" + ip.String(); !seen[k] {
				seen[k] = true
				ips = append(ips, ip)
			}
		}
	}
	return dns, ips
}

// NewCSR returns a PKCS#10 certificate signing request in DER, signed by
// key, for subject (see ParseSubject) and the subject alternative names of
// WithDNSNames and WithIPAddresses; a CN that names a host is added to them.
// The key must be RSA of at least MinRSABits, ECDSA on P-256, P-384 or P-521,
// or Ed25519.
func NewCSR(key crypto.Signer, subject pkix.RDNSequence, opts ...Option) ([]byte, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	if o.days != 0 {
		return nil, errors.New("create CSR: a CSR has no validity; the CA chooses it")
	}
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	raw, err := marshalSubject(subject)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	cnDNS, cnIPs := hostNames(subject)
	dns, ips := sans([][]string{cnDNS, o.dns}, [][]net.IP{cnIPs, o.ips})
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		RawSubject: raw, DNSNames: dns, IPAddresses: ips,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	return der, nil
}

// NewSelfSigned returns a self-signed TLS server certificate in DER for
// key and subject (see ParseSubject), the equivalent of `openssl req -x509`:
// a random positive 128-bit serial; valid from a minute ago (to allow for
// clock skew) for DefaultDays or WithDays; key usage digitalSignature (and
// keyEncipherment for RSA keys), extended key usage serverAuth, and
// basicConstraints CA:FALSE (critical). Its subject alternative names are
// those of WithDNSNames and WithIPAddresses or, when neither is given,
// localhost, 127.0.0.1 and ::1; a CN that names a host is always added.
// Keys are as for NewCSR.
func NewSelfSigned(key crypto.Signer, subject pkix.RDNSequence, opts ...Option) ([]byte, error) {
	o, err := applyOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	if o.days == 0 {
		o.days = DefaultDays
	}
	if err := checkKey(key); err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	raw, err := marshalSubject(subject)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	given, givenIPs := o.dns, o.ips
	if len(given) == 0 && len(givenIPs) == 0 {
		given, givenIPs = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	cnDNS, cnIPs := hostNames(subject)
	dns, ips := sans([][]string{cnDNS, given}, [][]net.IP{cnIPs, givenIPs})

	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	now := o.now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            raw,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(0, 0, o.days),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return der, nil
}

// marshalSubject encodes a non-empty subject in DER.
func marshalSubject(subject pkix.RDNSequence) ([]byte, error) {
	if len(subject) == 0 {
		return nil, errors.New("empty subject")
	}
	raw, err := asn1.Marshal(subject)
	if err != nil {
		return nil, fmt.Errorf("encode subject: %w", err)
	}
	return raw, nil
}

// randomSerial returns a random positive integer of exactly 128 bits.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	b[0] |= 0x80
	return new(big.Int).SetBytes(b), nil
}

// Fingerprint returns the SHA-256 digest of a DER certificate as
// colon-separated upper-case hex pairs, as `openssl x509 -noout
// -fingerprint -sha256` prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return colonHex(sum[:])
}

// colonHex writes b as "AB:CD:...".
func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var s strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			s.WriteByte(':')
		}
		s.WriteString(h[i : i+2])
	}
	return s.String()
}

// SerialHex returns a certificate serial number in upper-case hex, as
// `openssl x509 -noout -serial` prints it.
func SerialHex(serial *big.Int) string {
	return strings.ToUpper(hex.EncodeToString(serial.Bytes()))
}
