package pki_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/pki"
)

func TestGenerateKey(t *testing.T) {
	cases := []struct {
		typ  pki.KeyType
		bits int
		want string // DescribeKey
		text string // in `openssl pkey -text`
	}{
		{pki.RSA, 0, "RSA 2048", "Private-Key: (2048 bit"},
		{pki.RSA, 2048, "RSA 2048", "Private-Key: (2048 bit"},
		{pki.RSA, 3072, "RSA 3072", "Private-Key: (3072 bit"},
		{pki.RSA, 4096, "RSA 4096", "Private-Key: (4096 bit"},
		{pki.ECDSA, 0, "ECDSA P-256", "prime256v1"},
		{pki.Ed25519, 0, "Ed25519", "ED25519 Private-Key"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%d", c.typ, c.bits), func(t *testing.T) {
			t.Parallel()
			key := mustKey(t, c.typ, c.bits)
			if got := pki.DescribeKey(key.Public()); got != c.want {
				t.Errorf("DescribeKey: got %q, want %q", got, c.want)
			}
			path := keyFile(t, key)
			if out := openssl(t, "pkey", "-in", path, "-noout", "-text"); !strings.Contains(out, c.text) {
				t.Errorf("openssl pkey -text: got\n%s\nwant it to contain %q", out, c.text)
			}
			if c.typ != pki.Ed25519 {
				if out := openssl(t, "pkey", "-in", path, "-check", "-noout"); !strings.Contains(out, "valid") {
					t.Errorf("openssl pkey -check: got %q", out)
				}
			}
		})
	}
}

func TestGenerateKey_Refused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ  pki.KeyType
		bits int
	}{
		{pki.RSA, 1024}, {pki.RSA, 2047}, {pki.RSA, 8192}, {pki.RSA, -1},
		{pki.ECDSA, 384}, {pki.Ed25519, 256}, {"dsa", 0}, {"", 0},
	}
	for _, c := range cases {
		if k, err := pki.GenerateKey(c.typ, c.bits); err == nil {
			t.Errorf("GenerateKey(%q, %d): got a %T, want an error", c.typ, c.bits, k)
		}
	}
}

func TestParseKeyType(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]pki.KeyType{"rsa": pki.RSA, "RSA": pki.RSA, "ecdsa": pki.ECDSA, "Ed25519": pki.Ed25519} {
		if got, err := pki.ParseKeyType(in); err != nil || got != want {
			t.Errorf("ParseKeyType(%q): got %q, %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "dsa", "ec", "rsa2048"} {
		if got, err := pki.ParseKeyType(in); err == nil {
			t.Errorf("ParseKeyType(%q): got %q, want an error", in, got)
		}
	}
}

// TestParsePrivateKey reads keys in each format openssl writes.
func TestParsePrivateKey(t *testing.T) {
	t.Parallel()
	needOpenSSL(t)
	dir := t.TempDir()
	cases := []struct {
		name string
		gen  []string // openssl arguments writing the key to -out
		want string
	}{
		{"PKCS8-RSA", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}, "RSA 2048"},
		{"PKCS1-RSA", []string{"genrsa", "-traditional"}, "RSA 2048"},
		{"PKCS8-EC", []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "ECDSA P-256"},
		{"SEC1-EC-with-parameters", []string{"ecparam", "-genkey", "-name", "prime256v1"}, "ECDSA P-256"},
		{"SEC1-P384", []string{"ecparam", "-genkey", "-name", "secp384r1", "-noout"}, "ECDSA P-384"},
		{"PKCS8-Ed25519", []string{"genpkey", "-algorithm", "ed25519"}, "Ed25519"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".pem")
			openssl(t, append(c.gen, "-out", path)...)
			key, err := pki.ReadPrivateKey(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := pki.DescribeKey(key.Public()); got != c.want {
				t.Errorf("key: got %s, want %s", got, c.want)
			}
			// The same public key as openssl sees.
			der, err := x509.MarshalPKIXPublicKey(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			ours := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			if theirs := openssl(t, "pkey", "-in", path, "-pubout"); ours != theirs {
				t.Errorf("public key: got\n%s\nopenssl says\n%s", ours, theirs)
			}
		})
	}
}

func TestParsePrivateKey_Errors(t *testing.T) {
	t.Parallel()
	rsaKey := mustKey(t, pki.RSA, 2048)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"Empty", nil, "no private key"},
		{"NotPEM", []byte("hello"), "no private key"},
		{"CertificateOnly", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "no private key"},
		{"EncryptedPKCS8", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"EncryptedLegacy", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}), "encrypted"},
		{"OpenSSH", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte{1}}), "unsupported"},
		{"Garbage", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "PRIVATE KEY"},
		{"MislabelledPKCS8", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: pkcs8}), "EC PRIVATE KEY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key, err := pki.ParsePrivateKey(c.data)
			if err == nil {
				t.Fatalf("got a %T, want an error", key)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error: got %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestEncodePrivateKey_RoundTrip(t *testing.T) {
	t.Parallel()
	for _, typ := range []pki.KeyType{pki.RSA, pki.ECDSA, pki.Ed25519} {
		key := mustKey(t, typ, 0)
		b, err := pki.EncodePrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")) {
			t.Errorf("%s: got %q..., want a PKCS#8 PEM block", typ, b[:30])
		}
		back, err := pki.ParsePrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		equal := false
		switch k := key.(type) {
		case *rsa.PrivateKey:
			equal = k.Equal(back)
		case *ecdsa.PrivateKey:
			equal = k.Equal(back) && k.Curve == elliptic.P256()
		case ed25519.PrivateKey:
			equal = k.Equal(back)
		}
		if !equal {
			t.Errorf("%s: the key changed in a round trip", typ)
		}
	}
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "private.key")
	t.Run("Mode0600", func(t *testing.T) {
		if err := pki.WriteFile(path, []byte("one"), 0o600, false); err != nil {
			t.Fatal(err)
		}
		assertFile(t, path, "one", 0o600)
	})
	t.Run("RefusesOverwrite", func(t *testing.T) {
		err := pki.WriteFile(path, []byte("two"), 0o600, false)
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("error: got %v, want %v", err, fs.ErrExist)
		}
		assertFile(t, path, "one", 0o600)
	})
	t.Run("ForceOverwrites", func(t *testing.T) {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteFile(path, []byte("three"), 0o600, true); err != nil {
			t.Fatal(err)
		}
		assertFile(t, path, "three", 0o600)
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 1 {
			t.Errorf("directory: got %v, %v, want only the file (no temporary left)", entries, err)
		}
	})
	t.Run("ForceCreates", func(t *testing.T) {
		p := filepath.Join(dir, "new.crt")
		if err := pki.WriteFile(p, []byte("four"), 0o644, true); err != nil {
			t.Fatal(err)
		}
		assertFile(t, p, "four", 0o644)
	})
	t.Run("MissingDirectory", func(t *testing.T) {
		if err := pki.WriteFile(filepath.Join(dir, "no", "such"), nil, 0o600, false); err == nil {
			t.Error("got nil, want an error")
		}
	})
}

func assertFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Errorf("%s: got %q, want %q", path, b, content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != mode {
		t.Errorf("%s mode: got %v, want %v", path, got, mode)
	}
}

func TestParseCertificate(t *testing.T) {
	t.Parallel()
	key := mustKey(t, pki.ECDSA, 0)
	der, err := pki.NewSelfSigned(key, pkix.Name{CommonName: "x.example"}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// A combined file, key first: the certificate is still found.
	cert, err := pki.ParseCertificate(append(keyPEM, pki.EncodeCertificate(der)...))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert.Raw, der) {
		t.Error("ParseCertificate returned another certificate")
	}
	for name, data := range map[string][]byte{
		"Empty":   nil,
		"KeyOnly": keyPEM,
		"Garbage": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}),
	} {
		if _, err := pki.ParseCertificate(data); err == nil || !strings.HasPrefix(err.Error(), "parse certificate") {
			t.Errorf("%s: got %v, want a parse certificate error", name, err)
		}
	}
}
