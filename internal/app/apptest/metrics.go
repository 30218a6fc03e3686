package apptest

import (
	"net/http"
	"testing"
)

// Metrics returns the text of the server's /metrics, from its metrics
// listener.
func (ts *Server) Metrics(t *testing.T) string {
	t.Helper()
	if ts.MetricsAddr() == "" {
		t.Fatal("the server has no metrics listener")
	}
	r := Send(t, "GET", "http://"+ts.MetricsAddr()+"/metrics", "")
	WantStatus(t, r, http.StatusOK)
	return string(r.Body)
}
