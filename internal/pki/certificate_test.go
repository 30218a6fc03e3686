package pki_test

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/pki"
)

// keyCases are the key types and sizes CSRs and certificates are made
// with, and how `openssl req|x509 -text` shows each.
var keyCases = []struct {
	name string
	typ  pki.KeyType
	bits int
	text []string
}{
	{"RSA2048", pki.RSA, 2048, []string{"rsaEncryption", "Public-Key: (2048 bit)", "sha256WithRSAEncryption"}},
	{"RSA3072", pki.RSA, 3072, []string{"rsaEncryption", "Public-Key: (3072 bit)"}},
	{"RSA4096", pki.RSA, 4096, []string{"rsaEncryption", "Public-Key: (4096 bit)"}},
	{"ECDSA", pki.ECDSA, 0, []string{"id-ecPublicKey", "Public-Key: (256 bit)", "prime256v1", "ecdsa-with-SHA256"}},
	{"Ed25519", pki.Ed25519, 0, []string{"ED25519"}},
}

func TestNewCSR(t *testing.T) {
	needOpenSSL(t)
	subject, err := pki.ParseSubject("/C=DE/ST=Berlin/L=Berlin/O=Example GmbH/OU=Ops/CN=api.example.com/emailAddress=ops@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range keyCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			key := mustKey(t, c.typ, c.bits)
			der, err := pki.NewCSR(key, subject, pki.WithDNSNames("www.example.com", "*.api.example.com"),
				pki.WithIPAddresses(net.ParseIP("10.0.0.1"), net.ParseIP("2001:db8::1")))
			if err != nil {
				t.Fatal(err)
			}
			path := writeTemp(t, "request.csr", pki.EncodeCSR(der))
			if out := openssl(t, "req", "-in", path, "-noout", "-verify"); !strings.Contains(out, "verify OK") {
				t.Errorf("openssl req -verify: got %q", out)
			}
			text := openssl(t, "req", "-in", path, "-noout", "-text")
			for _, want := range append([]string{
				"Subject: C = DE, ST = Berlin, L = Berlin, O = Example GmbH, OU = Ops, CN = api.example.com, emailAddress = ops@example.com",
				"X509v3 Subject Alternative Name",
				"DNS:api.example.com, DNS:www.example.com, DNS:*.api.example.com, IP Address:10.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1",
			}, c.text...) {
				if !strings.Contains(text, want) {
					t.Errorf("openssl req -text: want %q in\n%s", want, text)
				}
			}
			// The CSR carries this key.
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil {
				t.Fatal(err)
			}
			if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
				t.Error("the CSR's public key is not the key's")
			}
		})
	}
}

func TestNewCSR_SANs(t *testing.T) {
	t.Parallel()
	key := mustKey(t, pki.ECDSA, 0)
	cases := []struct {
		subject string
		opts    []pki.Option
		dns     []string
		ips     []string
	}{
		{"/CN=example.com", nil, []string{"example.com"}, nil},
		{"/CN=10.1.2.3", nil, nil, []string{"10.1.2.3"}},
		{"/CN=localhost", nil, []string{"localhost"}, nil},
		{"/O=Example/CN=Example Root", nil, nil, nil},
		{"/CN=singlelabel", nil, nil, nil},
		{"/CN=Example.com", []pki.Option{pki.WithDNSNames("example.com", "b.example")}, []string{"Example.com", "b.example"}, nil},
	}
	for _, c := range cases {
		subject, err := pki.ParseSubject(c.subject)
		if err != nil {
			t.Fatal(err)
		}
		der, err := pki.NewCSR(key, subject, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(csr.DNSNames, c.dns) || !reflect.DeepEqual(ipStrings(csr.IPAddresses), c.ips) {
			t.Errorf("%s: SANs: got %v %v, want %v %v", c.subject, csr.DNSNames, csr.IPAddresses, c.dns, c.ips)
		}
	}
}

func TestNewCSR_Refused(t *testing.T) {
	t.Parallel()
	key := mustKey(t, pki.ECDSA, 0)
	subject := pkix.Name{CommonName: "x"}.ToRDNSequence()
	cases := []struct {
		name    string
		key     crypto.Signer
		subject pkix.RDNSequence
		opts    []pki.Option
		want    string
	}{
		{"NoKey", nil, subject, nil, "no private key"},
		{"EmptySubject", key, nil, nil, "empty subject"},
		{"Days", key, subject, []pki.Option{pki.WithDays(30)}, "no validity"},
		{"IPAsDNS", key, subject, []pki.Option{pki.WithDNSNames("127.0.0.1")}, "is an IP address"},
		{"BadDNS", key, subject, []pki.Option{pki.WithDNSNames("a..b")}, "bad label"},
		{"BadIP", key, subject, []pki.Option{pki.WithIPAddresses(net.IP{1, 2, 3})}, "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := pki.NewCSR(c.key, c.subject, c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "create CSR") {
				t.Errorf("error: got %v, want \"create CSR: ...%s...\"", err, c.want)
			}
		})
	}
}

func TestNewSelfSigned(t *testing.T) {
	needOpenSSL(t)
	subject, err := pki.ParseSubject("/O=Example/CN=keyledger.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range keyCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			key := mustKey(t, c.typ, c.bits)
			before := time.Now()
			der, err := pki.NewSelfSigned(key, subject)
			if err != nil {
				t.Fatal(err)
			}
			path := writeTemp(t, "certificate.crt", pki.EncodeCertificate(der))
			text := openssl(t, "x509", "-in", path, "-noout", "-text")
			usage := "Digital Signature"
			if c.typ == pki.RSA {
				usage = "Digital Signature, Key Encipherment"
			}
			for _, want := range append([]string{
				"Subject: O = Example, CN = keyledger.example",
				"Issuer: O = Example, CN = keyledger.example",
				"X509v3 Basic Constraints: critical\n                CA:FALSE",
				"X509v3 Key Usage: critical\n                " + usage + "\n",
				"X509v3 Extended Key Usage: \n                TLS Web Server Authentication\n",
				"DNS:keyledger.example, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1\n",
			}, c.text...) {
				if !strings.Contains(text, want) {
					t.Errorf("openssl x509 -text: want %q in\n%s", want, text)
				}
			}
			notBefore, notAfter := opensslDates(t, path)
			checkNear(t, "notBefore", notBefore, before.Add(-time.Minute))
			checkNear(t, "notAfter", notAfter, before.AddDate(0, 0, 365))

			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
				t.Errorf("self-signature: %v", err)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() != 128 {
				t.Errorf("serial: got %v (%d bits), want a positive 128-bit number", cert.SerialNumber, cert.SerialNumber.BitLen())
			}
			if got := openssl(t, "x509", "-in", path, "-noout", "-serial"); got != "serial="+pki.SerialHex(cert.SerialNumber)+"\n" {
				t.Errorf("SerialHex: got %q, openssl says %q", pki.SerialHex(cert.SerialNumber), got)
			}
		})
	}
}

func TestNewSelfSigned_Options(t *testing.T) {
	t.Parallel()
	needOpenSSL(t)
	key := mustKey(t, pki.ECDSA, 0)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, subject string
		opts          []pki.Option
		dns, ips      []string
		days          int
	}{
		{"Defaults", "/CN=Dev Cert", nil, []string{"localhost"}, []string{"127.0.0.1", "::1"}, 365},
		{"DefaultsWithHostCN", "/CN=dev.example", nil, []string{"dev.example", "localhost"}, []string{"127.0.0.1", "::1"}, 365},
		{"GivenReplaceDefaults", "/CN=api.example",
			[]pki.Option{pki.WithDNSNames("www.example"), pki.WithIPAddresses(net.ParseIP("10.0.0.5")), pki.WithDays(30)},
			[]string{"api.example", "www.example"}, []string{"10.0.0.5"}, 30},
		{"IPOnly", "/CN=192.0.2.7", []pki.Option{pki.WithIPAddresses(net.ParseIP("192.0.2.7"), net.ParseIP("192.0.2.8"))},
			nil, []string{"192.0.2.7", "192.0.2.8"}, 365},
		{"OneDay", "/CN=x.example", []pki.Option{pki.WithDNSNames("x.example"), pki.WithDays(1)}, []string{"x.example"}, nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			subject, err := pki.ParseSubject(c.subject)
			if err != nil {
				t.Fatal(err)
			}
			der, err := pki.NewSelfSigned(key, subject, append(c.opts, pki.WithClock(func() time.Time { return now }))...)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cert.DNSNames, c.dns) || !reflect.DeepEqual(ipStrings(cert.IPAddresses), c.ips) {
				t.Errorf("SANs: got %v %v, want %v %v", cert.DNSNames, cert.IPAddresses, c.dns, c.ips)
			}
			if got, want := cert.NotBefore, now.Add(-time.Minute); !got.Equal(want) {
				t.Errorf("NotBefore: got %v, want %v", got, want)
			}
			if got, want := cert.NotAfter, now.AddDate(0, 0, c.days); !got.Equal(want) {
				t.Errorf("NotAfter: got %v, want %v", got, want)
			}
			path := writeTemp(t, "certificate.crt", pki.EncodeCertificate(der))
			notBefore, notAfter := opensslDates(t, path)
			if got := notAfter.Sub(notBefore); got != time.Duration(c.days)*24*time.Hour+time.Minute {
				t.Errorf("validity according to openssl: got %v, want %d days and a minute", got, c.days)
			}
		})
	}
	for _, days := range []int{0, -1, pki.MaxDays + 1} {
		if _, err := pki.NewSelfSigned(key, pkix.Name{CommonName: "x"}.ToRDNSequence(), pki.WithDays(days)); err == nil {
			t.Errorf("WithDays(%d): got nil, want an error", days)
		}
	}
	if _, err := pki.NewSelfSigned(key, pkix.Name{CommonName: "x"}.ToRDNSequence(), pki.WithClock(nil)); err == nil {
		t.Error("WithClock(nil): got nil, want an error")
	}
}

func TestNewSelfSigned_RefusesWeakRSA(t *testing.T) {
	t.Parallel()
	needOpenSSL(t)
	path := writeTemp(t, "weak.key", nil)
	openssl(t, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", path)
	key, err := pki.ReadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pki.NewSelfSigned(key, pkix.Name{CommonName: "x"}.ToRDNSequence())
	if err == nil || !strings.Contains(err.Error(), "1024 bits") {
		t.Errorf("error: got %v, want a refusal of the 1024-bit key", err)
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	needOpenSSL(t)
	der, err := pki.NewSelfSigned(mustKey(t, pki.ECDSA, 0), pkix.Name{CommonName: "x"}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	path := writeTemp(t, "certificate.crt", pki.EncodeCertificate(der))
	out := openssl(t, "x509", "-in", path, "-noout", "-fingerprint", "-sha256")
	_, want, _ := strings.Cut(strings.TrimSpace(out), "=")
	if got := pki.Fingerprint(der); got != want {
		t.Errorf("Fingerprint: got %s, openssl says %s", got, want)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(want) {
		t.Errorf("openssl fingerprint %q: unexpected format", want)
	}
}

func TestCheckDNSName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"localhost", "example.com", "a-b.example.com", "*.example.com", "xn--bcher-kva.example", "A.B", "1.example"} {
		if err := pki.CheckDNSName(ok); err != nil {
			t.Errorf("CheckDNSName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1", "::1", "a..b", ".a", "a.", "-a.b", "a-.b", "a_b.c", "a.*.b", "*", "*x.b",
		"ex ample.com", strings.Repeat("a", 64) + ".b", strings.Repeat("a.", 127) + "bb"} {
		if err := pki.CheckDNSName(bad); err == nil {
			t.Errorf("CheckDNSName(%q): got nil, want an error", bad)
		}
	}
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

// opensslDates returns a certificate's validity as openssl reads it.
func opensslDates(t *testing.T, path string) (notBefore, notAfter time.Time) {
	t.Helper()
	out := openssl(t, "x509", "-in", path, "-noout", "-startdate", "-enddate")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		when, err := time.Parse("Jan _2 15:04:05 2006 MST", v)
		if err != nil {
			t.Fatalf("openssl date %q: %v", line, err)
		}
		switch k {
		case "notBefore":
			notBefore = when
		case "notAfter":
			notAfter = when
		}
	}
	return notBefore, notAfter
}

// checkNear fails unless got is within a few seconds of want.
func checkNear(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("%s: got %v, want about %v", what, got, want)
	}
}
