package apptest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SeenRequest is what reached the app.
type SeenRequest struct {
	Method        string `json:"method"`
	URI           string `json:"uri"`
	User          string `json:"user"`
	Owner         string `json:"owner"`
	OwnerType     string `json:"owner_type"`
	Key           string `json:"key"`
	Authorization string `json:"authorization"`
	APIKey        string `json:"api_key"`
	APISecret     string `json:"api_secret"`
	BodyLen       int    `json:"body_len"`
	BodySHA256    string `json:"body_sha256"`
	// Digest is X-Keyledger-Content-Digest, and DigestOK whether the body
	// matches it (validator.CheckForwardedBody).
	Digest   string `json:"digest"`
	DigestOK bool   `json:"digest_ok"`
}

// Seen decodes what the echo app behind a proxy saw of a request.
func (r Response) Seen(t *testing.T) SeenRequest {
	t.Helper()
	var s SeenRequest
	if err := json.Unmarshal(r.Body, &s); err != nil {
		t.Fatalf("got %d %q, want the app's report of what reached it", r.Status, r.Body)
	}
	return s
}

// APIKeyAuth is the Authorization header pair of k.
func APIKeyAuth(k CreatedKey) []string {
	return []string{"Authorization", "ApiKey " + Base64(k.Key+":"+k.Secret)}
}

var proxyClient = &http.Client{Timeout: 15 * time.Second}

// Send sends a request to url; headers come in pairs.
func Send(t *testing.T, method, url, body string, headers ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return SendReader(t, method, url, rd, headers...)
}

// SendReader is Send with a body of any length; headers come in pairs.
func SendReader(t *testing.T, method, url string, body io.Reader, headers ...string) Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := proxyClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
