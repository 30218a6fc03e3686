package pki_test

import (
	"bytes"
	"context"
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/pki"
)

// needOpenSSL skips the test when the openssl binary, the independent peer
// of these tests, is missing; under CI (env CI set) it fails instead.
func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("openssl is required under CI: %v", err)
		}
		t.Skipf("openssl not installed: %v", err)
	}
}

// runOpenSSL runs openssl with args and returns its combined output and
// error.
func runOpenSSL(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// openssl runs openssl with args, fails the test if it fails, and returns
// its combined output.
func openssl(t *testing.T, args ...string) string {
	t.Helper()
	needOpenSSL(t)
	out, err := runOpenSSL(t, args...)
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return out
}

// writeTemp writes data to name in a new temporary directory.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keyFile writes key as PKCS#8 PEM to a temporary file.
func keyFile(t *testing.T, key crypto.Signer) string {
	t.Helper()
	b, err := pki.EncodePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "private.key", b)
}

// mustKey generates a key or fails the test.
func mustKey(t testing.TB, typ pki.KeyType, bits int) crypto.Signer {
	t.Helper()
	k, err := pki.GenerateKey(typ, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
