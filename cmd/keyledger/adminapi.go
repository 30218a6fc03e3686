package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/httpsig"
	"github.com/keyledger/keyledger/internal/tlsconfig"
)

// apiFlags are what the admin commands need to talk to serve's admin API:
// its address and the admin's own key, which signs every request (RFC
// 9421, tag keyledger-admin-v1). serve records the key's admin as the
// actor and keeps the signature in the events.
type apiFlags struct {
	url     string
	keyFile string
	ca      string
	timeout time.Duration
	asJSON  bool
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "url", "http://127.0.0.1:8080", "serve's HTTP API")
	fs.StringVar(&a.keyFile, "key", "admin.key", "your admin private key, as keyledger admin keygen wrote it (an admin enrolled its public key)")
	fs.StringVar(&a.ca, "ca", "", "PEM CA bundle that signs the certificate of an https:// --url")
	fs.DurationVar(&a.timeout, "timeout", 30*time.Second, "give up after this long")
	fs.BoolVar(&a.asJSON, "json", false, "print JSON instead of a table")
}

// adminAPI is a client of serve's admin API signing with an admin key.
type adminAPI struct {
	base  *url.URL
	key   ed25519.PrivateKey
	keyID string
	hc    *http.Client
}

func (a *apiFlags) open() (*adminAPI, error) {
	u, err := url.Parse(strings.TrimRight(a.url, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("--url %q: want http://host:port or https://...", a.url)}
	}
	if a.ca != "" && u.Scheme != "https" {
		return nil, usageError{errors.New("--ca needs an https:// --url")}
	}
	key, err := readAdminKey(a.keyFile)
	if err != nil {
		return nil, exitError{2, fmt.Errorf("--key: %w", err)}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if u.Scheme == "https" {
		var opts []tlsconfig.ClientOption
		if a.ca != "" {
			opts = append(opts, tlsconfig.WithRootCAFile(a.ca))
		}
		tc, err := tlsconfig.Client(opts...)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		transport.TLSClientConfig = tc
	}
	var pub domain.PublicKey
	copy(pub[:], key.Public().(ed25519.PublicKey))
	return &adminAPI{base: u, key: key, keyID: domain.AdminKeyID(pub),
		hc: &http.Client{Transport: transport, Timeout: a.timeout}}, nil
}

// readAdminKey reads an admin private key (PKCS#8 PEM, Ed25519); it never
// creates one.
func readAdminKey(path string) (ed25519.PrivateKey, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return auth.LoadOrCreateSigningKey(path)
}

// do sends one signed request with a JSON body (nil: none) and decodes a
// 2xx JSON answer into out (nil: ignored). A refusal is exit 1, an
// unreachable or failing server exit 3.
func (c *adminAPI) do(ctx context.Context, method, path string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if len(b) > 0 {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if err := httpsig.Sign(req, b, c.key, httpsig.SignOptions{KeyID: c.keyID, Tag: httpsig.AdminTag}); err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return exitError{3, fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return exitError{3, err}
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		msg := resp.Status
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message + " (" + resp.Status + ")"
		}
		if resp.StatusCode >= 500 {
			return exitError{3, errors.New(msg)}
		}
		return exitError{1, errors.New(msg)}
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// adminKeygen: keyledger admin keygen --out FILE.
func adminKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin keygen")
	out := fs.String("out", "admin.key", "where to write the private key (PKCS#8 PEM, mode 0600); the public key goes to FILE.pub")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	if err := auth.WriteFileExclusive(*out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return exitError{1, fmt.Errorf("write %s: %w (keygen never overwrites a key)", *out, err)}
	}
	var p domain.PublicKey
	copy(p[:], pub)
	text, _ := p.MarshalText()
	pubFile := *out + ".pub"
	content := fmt.Sprintf("# keyledger admin public key %s\n%s\n", domain.AdminKeyID(p), text)
	if err := os.WriteFile(pubFile, []byte(content), 0o644); err != nil {
		return exitError{1, err}
	}
	fmt.Fprintf(stdout, "admin key %s\npublic key %s (in %s)\n", domain.AdminKeyID(p), text, pubFile)
	return nil
}

// list fetches path and prints it: the JSON as served with --json, else
// decoded into v and written by table as aligned columns.
func (a *adminAPI) list(ctx context.Context, path string, asJSON bool, stdout io.Writer, v any, table func(io.Writer)) error {
	var raw json.RawMessage
	if err := a.do(ctx, "GET", path, nil, &raw); err != nil {
		return err
	}
	if asJSON {
		_, err := fmt.Fprintln(stdout, string(raw))
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}
