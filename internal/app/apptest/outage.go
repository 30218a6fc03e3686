package apptest

import (
	"encoding/json"
	"testing"
)

// ReadyBody is the JSON of /readyz.
type ReadyBody struct {
	Ready            bool    `json:"ready"`
	AppliedSeq       uint64  `json:"applied_seq"`
	StartSeq         uint64  `json:"start_seq"`
	StalenessSeconds float64 `json:"staleness_seconds"`
	Connected        bool    `json:"connected"`
	Reason           string  `json:"reason"`
}

// Readyz returns the status and body of /readyz with query.
func (ts *Server) Readyz(t *testing.T, query string) (int, ReadyBody) {
	t.Helper()
	r := ts.Do(t, "GET", "/readyz"+query, "")
	var b ReadyBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("/readyz: %q: %v", r.Body, err)
	}
	return r.Status, b
}
