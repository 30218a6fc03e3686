// Package apptest runs a real Server on loopback for end-to-end tests and
// holds the helpers the test packages of the API, the CLI and the
// deployment share: requests, responses, a load of commands and a fresh
// fold of the log to hold it against.
package apptest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/internal/app"
	"github.com/keyledger/keyledger/internal/auth"
	"github.com/keyledger/keyledger/internal/natsauth"
	"github.com/keyledger/keyledger/internal/natstest"
)

// SyncBuffer is a log sink that tests can read while the server writes.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Server is a running `keyledger serve` on loopback with its data in
// dir, logging at debug level into logs.
type Server struct {
	*app.Server
	Base string
	Logs *SyncBuffer

	rootOnce sync.Once
	root     AdminKey
}

// Start opens a Server with its data in dir and waits until it is ready.
// Its /metrics is on a listener of its own (see Metrics).
func Start(t *testing.T, dir string) *Server {
	t.Helper()
	return StartWith(t, dir, nil)
}

// StartWith is Start with the configuration changed by edit (nil: none).
func StartWith(t *testing.T, dir string, edit func(*app.ServeConfig)) *Server {
	t.Helper()
	logs := &SyncBuffer{}
	s := &app.Server{
		Config: app.ServeConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
			Argon2: auth.Argon2Params{Memory: 64, Time: 1, Threads: 1},
			// No checkpoints: tests compare the stream's head before and
			// after commands that must append nothing.
			CheckpointInterval: -1},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&s.Config)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ts := &Server{Server: s, Base: "http://" + s.HTTPAddr(), Logs: logs}
	natstest.Eventually(t, 10*time.Second, s.Ready, "server ready")
	return ts
}

// Stop closes the server gracefully, within 10 seconds.
func (ts *Server) Stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// Response is an HTTP response, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object.
func (r Response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %q", r.Status, r.Body)
	}
	return m
}

// ErrorCode returns the code of a JSON error body, failing the test if
// the body is not one.
func (r Response) ErrorCode(t *testing.T) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	if msg, _ := e["message"].(string); code == "" || msg == "" {
		t.Fatalf("got body %s, want a JSON error with code and message", r.Body)
	}
	return code
}

// Do sends a request; headers come in pairs.
func (ts *Server) Do(t *testing.T, method, path, body string, headers ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.Base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s %s: got %d %s, want no 5xx", method, path, resp.StatusCode, b)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// WantStatus fails the test unless r has status want.
func WantStatus(t *testing.T, r Response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("got status %d (%s), want %d", r.Status, r.Body, want)
	}
}

// Register registers a user and returns its id.
func (ts *Server) Register(t *testing.T, email, password string) string {
	t.Helper()
	r := ts.Do(t, "POST", "/users", `{"email":"`+email+`","password":"`+password+`"}`)
	WantStatus(t, r, http.StatusCreated)
	return r.JSON(t)["id"].(string)
}

// Login logs a user in and returns the session token.
func (ts *Server) Login(t *testing.T, email, password string) string {
	t.Helper()
	r := ts.Do(t, "POST", "/sessions", `{"email":"`+email+`","password":"`+password+`"}`)
	WantStatus(t, r, http.StatusOK)
	return r.JSON(t)["token"].(string)
}

// CreatedKey is an API key with its secret.
type CreatedKey struct{ Key, Secret string }

// CreateKey creates a key with body as the session of token.
func (ts *Server) CreateKey(t *testing.T, token, body string) CreatedKey {
	t.Helper()
	r := ts.Do(t, "POST", "/api-keys", body, "Authorization", "Bearer "+token)
	WantStatus(t, r, http.StatusCreated)
	m := r.JSON(t)
	return CreatedKey{Key: m["api_key"].(string), Secret: m["secret"].(string)}
}

// Base64 returns s in standard base64, as the credential headers carry it.
func Base64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Validate returns the status of /validate with x-api-key/x-api-secret.
func (ts *Server) Validate(t *testing.T, k CreatedKey) int {
	t.Helper()
	return ts.Do(t, "GET", "/validate", "", "X-Api-Key", Base64(k.Key), "X-Api-Secret", Base64(k.Secret)).Status
}

// Password is the password tests register users with.
const Password = "correct horse battery staple"

// CheckToken decodes a session token's header and claims.
func CheckToken(t *testing.T, ts *Server, token, userID string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("got %d token parts, want 3", len(parts))
	}
	var header, claims map[string]any
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		t.Fatalf("token header or claims are not JSON")
	}
	if header["alg"] != "EdDSA" || header["kid"] == nil || header["kid"] == "" {
		t.Fatalf("got header %v, want alg EdDSA and a kid", header)
	}
	for _, c := range []string{"iss", "aud", "sub", "iat", "exp"} {
		if claims[c] == nil {
			t.Fatalf("got claims %v, want %s", claims, c)
		}
	}
	if claims["sub"] != userID {
		t.Fatalf("got sub %v, want %s", claims["sub"], userID)
	}
}

// ForgeToken returns variants of a valid token that must all be refused.
func ForgeToken(t *testing.T, token string) map[string]string {
	t.Helper()
	parts := strings.Split(token, ".")
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := strings.Replace(string(claims), `"sub":"usr_`, `"sub":"usr_X`, 1)
	return map[string]string{
		"none":     enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"hs256":    enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2],
		"tampered": parts[0] + "." + enc([]byte(tampered)) + "." + parts[2],
	}
}

// StreamHead returns the sequence of the newest message of ts's log.
func StreamHead(t *testing.T, ts *Server) uint64 {
	t.Helper()
	js := JetStream(t, ts)
	s, err := js.Stream(context.Background(), "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// JetStream returns a JetStream context on a connection of its own to
// ts's NATS server.
func JetStream(t *testing.T, ts *Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(ts.NATSURL(), nats.UserCredentials(ts.CredsFile(natsauth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// AllStreamData returns the headers and payloads of every stored message.
func AllStreamData(t *testing.T, ts *Server) []byte {
	t.Helper()
	js := JetStream(t, ts)
	s, err := js.Stream(context.Background(), "KEYLEDGER")
	if err != nil {
		t.Fatal(err)
	}
	head := StreamHead(t, ts)
	var out bytes.Buffer
	for seq := uint64(1); seq <= head; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		for k, v := range m.Header {
			out.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		out.Write(m.Data)
		out.WriteByte('\n')
	}
	return out.Bytes()
}
