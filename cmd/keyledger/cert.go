package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyledger/keyledger/internal/pki"
)

// listFlag is a repeatable flag; each value may also list items separated
// by commas (as in KEYLEDGER_DNS=a.example,b.example).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// certRequest is what the flags of `cert csr` and `cert selfsigned` ask for.
type certRequest struct {
	selfSigned bool
	keyOut     string
	out        string
	subject    string
	keyFile    string
	keyType    string
	rsaBits    int
	days       int
	dns, ips   listFlag
	force      bool
}

const defaultKeyOut = "private.key"

func (r *certRequest) flags(set *flag.FlagSet) {
	out, subject, subjectHelp := "request.csr", "", `subject in openssl -subj syntax, e.g. "/C=DE/ST=Berlin/L=Berlin/O=Example/OU=Ops/CN=example.com" (\/ escapes a slash, + joins a multi-valued RDN) (required)`
	if r.selfSigned {
		out, subject, subjectHelp = "certificate.crt", "/CN=localhost", `subject in openssl -subj syntax, e.g. "/O=Example/CN=example.com" (\/ escapes a slash, + joins a multi-valued RDN)`
	}
	set.StringVar(&r.keyOut, "key-out", defaultKeyOut, "where to write the new private key (PKCS#8 PEM, mode 0600)")
	set.StringVar(&r.out, "out", out, "where to write the "+map[bool]string{false: "CSR", true: "certificate"}[r.selfSigned]+" (PEM)")
	set.StringVar(&r.subject, "subject", subject, subjectHelp)
	set.Var(&r.dns, "dns", "DNS subject alternative `name` (repeatable, or comma-separated)")
	set.Var(&r.ips, "ip", "IP `address` subject alternative name (repeatable, or comma-separated)")
	set.StringVar(&r.keyType, "key-type", string(pki.RSA), "type of the new key: rsa, ecdsa (P-256) or ed25519")
	set.IntVar(&r.rsaBits, "rsa-bits", pki.DefaultRSABits, "size of a new RSA key: 2048, 3072 or 4096")
	set.StringVar(&r.keyFile, "key", "", "reuse this private key (PKCS#8, PKCS#1 or SEC1 PEM) instead of creating one")
	set.Var((*cmdLineBool)(&r.force), "force", "overwrite existing output files (command line only: a stray KEYLEDGER_FORCE must not overwrite a key)")
	if r.selfSigned {
		set.IntVar(&r.days, "days", pki.DefaultDays, "days the certificate is valid")
	}
}

// certPlan is a checked certRequest.
type certPlan struct {
	subject pkix.RDNSequence
	keyType pki.KeyType
	rsaBits int
	opts    []pki.Option
}

// check validates the flags; every error is a usage error.
func (r *certRequest) check() (*certPlan, error) {
	p := &certPlan{}
	if r.subject == "" {
		return nil, errors.New(`--subject is required, e.g. --subject "/O=Example/CN=example.com"`)
	}
	var err error
	if p.subject, err = pki.ParseSubject(r.subject); err != nil {
		return nil, fmt.Errorf("--subject: %w", err)
	}
	if r.keyFile != "" {
		if r.keyType != string(pki.RSA) || r.rsaBits != pki.DefaultRSABits {
			return nil, errors.New("--key reuses an existing key; --key-type and --rsa-bits do not apply")
		}
		if r.keyOut != defaultKeyOut {
			return nil, errors.New("--key reuses an existing key; --key-out does not apply")
		}
		if filepath.Clean(r.keyFile) == filepath.Clean(r.out) {
			return nil, errors.New("--key and --out name the same file")
		}
	} else {
		if p.keyType, err = pki.ParseKeyType(r.keyType); err != nil {
			return nil, fmt.Errorf("--key-type: %w", err)
		}
		switch {
		case p.keyType == pki.RSA && r.rsaBits != 2048 && r.rsaBits != 3072 && r.rsaBits != 4096:
			return nil, fmt.Errorf("--rsa-bits %d: want 2048, 3072 or 4096", r.rsaBits)
		case p.keyType == pki.RSA:
			p.rsaBits = r.rsaBits
		case r.rsaBits != pki.DefaultRSABits:
			return nil, fmt.Errorf("--rsa-bits applies to RSA keys, not %s", p.keyType)
		}
		if r.keyOut == "" {
			return nil, errors.New("--key-out: empty")
		}
		if filepath.Clean(r.keyOut) == filepath.Clean(r.out) {
			return nil, errors.New("--key-out and --out name the same file")
		}
	}
	if r.out == "" {
		return nil, errors.New("--out: empty")
	}
	for _, name := range r.dns {
		if err := pki.CheckDNSName(name); err != nil {
			return nil, fmt.Errorf("--dns: %w", err)
		}
	}
	var ips []net.IP
	for _, s := range r.ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("--ip %q: not an IP address", s)
		}
		ips = append(ips, ip)
	}
	p.opts = []pki.Option{pki.WithDNSNames(r.dns...), pki.WithIPAddresses(ips...)}
	if r.selfSigned {
		if r.days < 1 || r.days > pki.MaxDays {
			return nil, fmt.Errorf("--days %d: want 1 to %d", r.days, pki.MaxDays)
		}
		p.opts = append(p.opts, pki.WithDays(r.days))
	}
	return p, nil
}

func runCertCommand(ctx context.Context, selfSigned bool, args []string, stdout, stderr io.Writer) error {
	r := &certRequest{selfSigned: selfSigned}
	name := "cert csr"
	if selfSigned {
		name = "cert selfsigned"
	}
	set := newFlagSet(name)
	r.flags(set)
	if err := parseFlags(set, args); err != nil {
		return err
	}
	plan, err := r.check()
	if err != nil {
		return usageError{err}
	}

	// Refuse before creating anything, so that no output is left half made.
	newKey := r.keyFile == ""
	keyExisted := false
	if newKey {
		keyExisted = exists(r.keyOut)
	}
	if !r.force {
		for _, path := range []string{r.keyOut, r.out} {
			if (path == r.out || newKey) && exists(path) {
				return fmt.Errorf("%s: %w; use --force to overwrite it", path, fs.ErrExist)
			}
		}
	}

	var key crypto.Signer
	if newKey {
		if key, err = pki.GenerateKey(plan.keyType, plan.rsaBits); err != nil {
			return err
		}
	} else if key, err = pki.ReadPrivateKey(r.keyFile); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var der []byte
	if selfSigned {
		der, err = pki.NewSelfSigned(key, plan.subject, plan.opts...)
	} else {
		der, err = pki.NewCSR(key, plan.subject, plan.opts...)
	}
	if err != nil {
		return err
	}

	if newKey {
		keyPEM, err := pki.EncodePrivateKey(key)
		if err != nil {
			return err
		}
		if err := pki.WriteFile(r.keyOut, keyPEM, 0o600, r.force); err != nil {
			return forceHint(err)
		}
	}
	out := pki.EncodeCSR(der)
	if selfSigned {
		out = pki.EncodeCertificate(der)
	}
	if err := pki.WriteFile(r.out, out, 0o644, r.force); err != nil {
		if newKey && !keyExisted {
			os.Remove(r.keyOut)
		}
		return forceHint(err)
	}

	if newKey {
		fmt.Fprintf(stdout, "wrote private key %s (%s, PKCS#8 PEM, mode 0600)\n", r.keyOut, pki.DescribeKey(key.Public()))
	} else {
		fmt.Fprintf(stdout, "reused private key %s (%s)\n", r.keyFile, pki.DescribeKey(key.Public()))
	}
	if !selfSigned {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			return fmt.Errorf("parse the new CSR: %w", err)
		}
		fmt.Fprintf(stdout, "wrote certificate signing request %s\n", r.out)
		fmt.Fprintf(stdout, "  subject: %s\n", pki.FormatSubject(plan.subject))
		fmt.Fprintf(stdout, "  SANs:    %s\n", formatSANs(csr.DNSNames, csr.IPAddresses))
		return nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse the new certificate: %w", err)
	}
	fmt.Fprintf(stdout, "wrote self-signed certificate %s\n", r.out)
	fmt.Fprintf(stdout, "  subject: %s\n", pki.FormatSubject(plan.subject))
	fmt.Fprintf(stdout, "  SANs:    %s\n", formatSANs(cert.DNSNames, cert.IPAddresses))
	fmt.Fprintf(stdout, "  valid:   %s to %s (%d days)\n", cert.NotBefore.Format(time.RFC3339),
		cert.NotAfter.Format(time.RFC3339), r.days)
	fmt.Fprintf(stdout, "  serial:  %s\n", pki.SerialHex(cert.SerialNumber))
	fmt.Fprintf(stdout, "SHA-256 fingerprint: %s\n", pki.Fingerprint(der))
	return nil
}

// exists reports whether something is at path (a dangling symlink counts).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// forceHint adds the --force hint to a refusal to overwrite.
func forceHint(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w (use --force to overwrite)", err)
	}
	return err
}

// formatSANs lists subject alternative names the way openssl prints them.
func formatSANs(dns []string, ips []net.IP) string {
	var names []string
	for _, n := range dns {
		names = append(names, "DNS:"+n)
	}
	for _, ip := range ips {
		names = append(names, "IP:"+ip.String())
	}
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}
