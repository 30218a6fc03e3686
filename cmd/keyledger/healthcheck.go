package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/keyledger/keyledger/internal/tlsconfig"
)

// HealthcheckConfig is the configuration of `keyledger healthcheck`.
type HealthcheckConfig struct {
	URL      string
	Timeout  time.Duration
	CA       string
	Insecure bool
}

func (c *HealthcheckConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080/readyz", "endpoint to probe: /readyz (caught up with the log) or /healthz (alive) of serve or validator")
	fs.DurationVar(&c.Timeout, "timeout", 3*time.Second, "give up after this long")
	fs.StringVar(&c.CA, "ca", "", "PEM CA bundle that signs the certificate of an https:// endpoint")
	fs.BoolVar(&c.Insecure, "insecure", false, "do not verify the certificate of an https:// endpoint (--tls-self-signed); the probe sends nothing secret")
}

// runHealthcheck probes an HTTP endpoint of a running serve or validator
// and succeeds on a 2xx answer (exit 0), failing with exit 1 otherwise: the
// container health check of an image with no shell or curl (distroless).
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg HealthcheckConfig
	fs := newFlagSet("healthcheck")
	cfg.flags(fs)
	// No flag of serve or validator has the name of one of the probe's,
	// so the container's KEYLEDGER_* environment, which configures the
	// process being probed, leaves the probe alone.
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	client, err := cfg.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
	if err != nil {
		return usageError{fmt.Errorf("--url: %w", err)}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err // names the method and URL
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	body = bytes.TrimSpace(body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s %s", req.URL.Redacted(), resp.Status, body)
	}
	fmt.Fprintf(stdout, "%s %s\n", resp.Status, body)
	return nil
}

// client checks the configuration and returns the HTTP client of the probe.
func (c *HealthcheckConfig) client() (*http.Client, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, usageError{fmt.Errorf("--url: %w", err)}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("--url %q: want http://host:port/path or https://...", c.URL)}
	}
	if c.Timeout <= 0 {
		return nil, usageError{fmt.Errorf("--timeout %v: must be positive", c.Timeout)}
	}
	if c.CA != "" && c.Insecure {
		return nil, usageError{errors.New("--ca and --insecure exclude each other")}
	}
	if u.Scheme == "http" && (c.CA != "" || c.Insecure) {
		return nil, usageError{errors.New("--ca and --insecure need an https:// --url")}
	}
	// No proxy from the environment: the probe targets the container itself.
	transport := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if u.Scheme == "https" {
		var opts []tlsconfig.ClientOption
		if c.CA != "" {
			opts = append(opts, tlsconfig.WithRootCAFile(c.CA))
		}
		tc, err := tlsconfig.Client(opts...)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		tc.InsecureSkipVerify = c.Insecure
		transport.TLSClientConfig = tc
	}
	return &http.Client{
		Transport: transport,
		Timeout:   c.Timeout,
		// A redirect is not health: report it rather than follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
