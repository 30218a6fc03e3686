package apptest

import (
	"net/http"
	"testing"
)

// Metrics returns the text of the server's /metrics.
func (ts *Server) Metrics(t *testing.T) string {
	t.Helper()
	r := ts.Do(t, "GET", "/metrics", "")
	WantStatus(t, r, http.StatusOK)
	return string(r.Body)
}
