// Package client is a Go client of keyledger's HTTP API: accounts and
// sessions, API-key management, validation, health and the admin routes.
//
// Every method takes a context first and answers a non-2xx response with
// an *Error (match it with errors.As, or with IsNotFound, IsUnauthorized,
// IsConflict, IsRateLimited and IsForbidden). Methods that need a session
// return ErrNoSession, without a request, when the Client has no token.
//
// WithRetries retries what a retry can cure, with one Idempotency-Key for
// all attempts of a command (see also WithIdempotencyKey).
//
// The credential helpers (SetAPIKeyHeaders, SetAuthorizationAPIKey,
// Transport, and Signer for signed requests) are for any Go program that
// calls a service protected by keyledger API keys.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNoSession is returned, without sending a request, by methods that
// need a session token when the Client has none. See WithToken and
// (*Client).WithSession.
var ErrNoSession = errors.New("keyledger: no session token (use WithToken or WithSession)")

// maxResponseBytes caps how much of a response body is read.
const maxResponseBytes = 8 << 20

// userAgent identifies this client in the server's logs.
const userAgent = "keyledger-go-client"

// Client calls one keyledger HTTP API. It is immutable once built and safe
// for concurrent use by multiple goroutines.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
	// tokenErr is why the token from WithSession is unusable.
	tokenErr error
	// attempts is how many times a request is sent at most (WithRetries);
	// maxWait bounds each wait between them.
	attempts int
	maxWait  time.Duration
}

// Option configures a Client in New. Options validate their input: New
// returns the first error an option reports.
type Option func(*Client) error

// WithHTTPClient makes the Client send its requests with hc instead of
// http.DefaultClient, for timeouts, TLS settings or a custom transport.
// hc must not be nil.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("keyledger: WithHTTPClient: nil *http.Client")
		}
		c.http = hc
		return nil
	}
}

// WithRetries makes the Client send a request again when it failed for a
// reason a retry can cure: no response at all (connection refused, reset,
// or lost on the way back), 503 unavailable, 429 rate_limited, or 409
// idempotency_key_in_use. It tries attempts times in all (at least 1),
// waiting as the server's Retry-After asks or else 100 ms doubling, but
// never more than maxWait between tries, and never past the context.
//
// Commands (every POST and DELETE) then carry an Idempotency-Key on every
// attempt: the context's (WithIdempotencyKey) or a random one drawn for
// the call. So a command whose answer was lost takes effect once, and its
// retry gets the first answer, the same key and secret for a create.
func WithRetries(attempts int, maxWait time.Duration) Option {
	return func(c *Client) error {
		if attempts < 1 || maxWait <= 0 {
			return errors.New("keyledger: WithRetries: want at least 1 attempt and a positive wait")
		}
		c.attempts, c.maxWait = attempts, maxWait
		return nil
	}
}

// WithToken makes the Client authenticate with a session token (from
// Login) on the routes that need one. The token must be non-empty and
// hold no whitespace or control characters.
func WithToken(token string) Option {
	return func(c *Client) error {
		if err := checkToken(token); err != nil {
			return err
		}
		c.token = token
		return nil
	}
}

func checkToken(token string) error {
	if token == "" {
		return errors.New("keyledger: empty session token")
	}
	for i := 0; i < len(token); i++ {
		if b := token[i]; b <= ' ' || b == 0x7f {
			// The token itself stays out of the message.
			return errors.New("keyledger: session token holds whitespace or control characters")
		}
	}
	return nil
}

// New returns a Client of the API at baseURL, an absolute http or https URL
// with no user info, query or fragment (a path prefix is kept, so
// "https://example.com/keyledger" works behind a proxy).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, errors.New("keyledger: base URL does not parse")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("keyledger: base URL scheme must be http or https")
	case u.Host == "":
		return nil, errors.New("keyledger: base URL has no host")
	case u.User != nil:
		// Credentials in a URL end up in logs and errors; the API does not
		// take them there anyway.
		return nil, errors.New("keyledger: base URL must not hold user info")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("keyledger: base URL must not have a query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, http: http.DefaultClient, attempts: 1}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("keyledger: nil Option")
		}
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// WithSession returns a copy of c that authenticates with token (from
// Login); c itself is unchanged. An empty token gives a copy without a
// session (its session routes return ErrNoSession); a token WithToken
// would refuse makes every call of the copy return that error.
func (c *Client) WithSession(token string) *Client {
	cp := *c
	cp.token, cp.tokenErr = token, nil
	if token != "" {
		cp.tokenErr = checkToken(token)
	}
	return &cp
}

// BaseURL returns the base URL the Client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// request describes one call.
type request struct {
	method string
	path   string // already escaped, relative to the base URL
	query  url.Values
	body   any  // JSON-encoded when non-nil
	auth   bool // needs the session token
	header http.Header
	// waitable commands take a key out of service: with WithWaitForNodes
	// they ask ?wait=nodes.
	waitable bool
}

// do sends req and decodes a 2xx body into out (when out is non-nil and
// the body is not empty). Anything but a 2xx is an *Error.
func (c *Client) do(ctx context.Context, req request, out any) error {
	if c.attempts > 1 && ctx != nil && (req.method == http.MethodPost || req.method == http.MethodDelete || req.method == http.MethodPatch) {
		if _, ok := ctx.Value(idempotencyKey{}).(string); !ok {
			ctx = WithIdempotencyKey(ctx, randomKey())
		}
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, req, out)
		wait, retry := retryable(err)
		if !retry || attempt >= c.attempts {
			return err
		}
		if wait <= 0 {
			wait, backoff = backoff, backoff*2
		}
		t := time.NewTimer(min(wait, c.maxWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// once sends req one time.
func (c *Client) once(ctx context.Context, req request, out any) error {
	resp, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseError(resp)
	}
	if resp.StatusCode == http.StatusAccepted && req.waitable && waitsForNodes(ctx) {
		return nodesPending(req, resp, out)
	}
	return decodeBody(req, resp, out)
}

// retryable reports whether err is worth another attempt, and how long
// the server asked to wait (0: it did not say).
func retryable(err error) (time.Duration, bool) {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.Status == http.StatusServiceUnavailable, apiErr.Status == http.StatusTooManyRequests,
			apiErr.Code == CodeIdempotencyKeyInUse:
			return apiErr.RetryAfter, true
		}
		return 0, false
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return 0, true // no response: the request may or may not have arrived
	}
	return 0, false
}

// randomKey draws an Idempotency-Key for one call.
func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *Client) send(ctx context.Context, req request) (*http.Response, error) {
	if ctx == nil {
		return nil, errors.New("keyledger: nil Context")
	}
	if c.tokenErr != nil {
		return nil, c.tokenErr
	}
	if req.auth && c.token == "" {
		return nil, ErrNoSession
	}
	// The base has no query or fragment and req.path is escaped already.
	target := c.base.String() + req.path
	if req.waitable && waitsForNodes(ctx) {
		q := url.Values{}
		for k, v := range req.query {
			q[k] = v
		}
		q.Set("wait", "nodes")
		req.query = q
	}
	if q := req.query.Encode(); q != "" {
		target += "?" + q
	}
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("keyledger: %s %s: encode request: %w", req.method, req.path, err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("keyledger: %s %s: %w", req.method, req.path, err)
	}
	for k, vs := range req.header {
		hr.Header[k] = vs
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", userAgent)
	if key, ok := ctx.Value(idempotencyKey{}).(string); ok && (req.method == http.MethodPost || req.method == http.MethodDelete || req.method == http.MethodPatch) {
		hr.Header.Set("Idempotency-Key", key)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.auth {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		// net/http's *url.Error names the URL (never a header), and New
		// refuses user info in it, so no credential reaches the message.
		return nil, fmt.Errorf("keyledger: %s %s: %w", req.method, req.path, err)
	}
	return resp, nil
}

func decodeBody(req request, resp *http.Response, out any) error {
	if out == nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("keyledger: %s %s: read response: %w", req.method, req.path, err)
	}
	if len(b) > maxResponseBytes {
		return fmt.Errorf("keyledger: %s %s: response exceeds %d bytes", req.method, req.path, maxResponseBytes)
	}
	if err := json.Unmarshal(b, out); err != nil {
		// The body may hold a secret: describe the problem, not the input.
		return fmt.Errorf("keyledger: %s %s: response %d is not the expected JSON", req.method, req.path, resp.StatusCode)
	}
	return nil
}

// drainClose reads a little of what is left so the connection can be
// reused, then closes the body.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// escape escapes one path segment taken from the caller.
func escape(segment string) string { return url.PathEscape(segment) }

type idempotencyKey struct{}

// WithIdempotencyKey returns a context whose commands (Register,
// CreateKey, RegenerateSecret, RevokeKey) carry Idempotency-Key: key.
// Retry a command with the same context (the same key) and the server
// answers with the first attempt's response instead of running it again.
// Use one key per intended operation, e.g. a random UUID.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, key)
}
