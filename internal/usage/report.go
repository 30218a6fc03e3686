package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// ReportVersion is the schema version of Report.
const ReportVersion = 1

// MaxReportBytes caps one report message: a node splits a larger
// interval into several reports, and the fold refuses larger ones.
const MaxReportBytes = 512 * 1024

// MaxNodeName caps a node's name.
const MaxNodeName = 64

// MaxCount bounds one count of one key in one report: 2^40, about 12
// days at a billion validations a second, far more than any node does in
// an interval. A report above it is refused as forged.
const MaxCount = 1 << 40

// Report is what one node counted in one interval [Start, End).
type Report struct {
	Version int        `json:"v"`
	Node    string     `json:"node"`
	Start   time.Time  `json:"start"`
	End     time.Time  `json:"end"`
	Keys    []KeyUsage `json:"keys"`
}

// KeyUsage is one key's counts within a report.
type KeyUsage struct {
	APIKey   string                   `json:"api_key"`
	Valid    uint64                   `json:"valid,omitempty"`
	Refused  map[domain.Reason]uint64 `json:"refused,omitempty"`
	LastUsed *time.Time               `json:"last_used,omitempty"`
}

// StreamName is the usage stream of the event stream named stream.
func StreamName(stream string) string { return stream + "_USAGE" }

// SubjectPrefix is the first token of the usage stream's subjects,
// outside the log's (keyledger.>): a node allowed to publish usage still
// cannot write an event.
const SubjectPrefix = "keyledger_usage"

// Subjects are the usage stream's subjects: SubjectPrefix.<node>.
const Subjects = SubjectPrefix + ".>"

// Subject is the subject node publishes its reports on.
func Subject(node string) string { return SubjectPrefix + "." + node }

// ValidNodeName reports whether name may name a node: 1 to MaxNodeName
// letters, digits, '-', '_' or ':' (one subject token).
func ValidNodeName(name string) bool {
	if name == "" || len(name) > MaxNodeName {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// Split returns r as reports of at most max keys each (the same node and
// interval), so that each stays under MaxReportBytes.
func (r Report) Split(max int) []Report {
	if len(r.Keys) <= max {
		return []Report{r}
	}
	var out []Report
	for i := 0; i < len(r.Keys); i += max {
		part := r
		part.Keys = r.Keys[i:min(i+max, len(r.Keys))]
		out = append(out, part)
	}
	return out
}

// ParseReport decodes and checks a report as read from the usage stream,
// which any node with the validator's credentials may write: unknown
// fields, a wrong version, a bad node name, an interval that ends before
// it starts or lasts longer than a day, a last use after its end, a key that is not a key id, the
// same key twice, a reason the domain does not name, or more than
// MaxReportBytes are refused.
func ParseReport(data []byte) (Report, error) {
	if len(data) > MaxReportBytes {
		return Report{}, fmt.Errorf("usage report: %d bytes, more than %d", len(data), MaxReportBytes)
	}
	var r Report
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Report{}, fmt.Errorf("usage report: %w", err)
	}
	if dec.More() {
		return Report{}, errors.New("usage report: data after the report")
	}
	if r.Version != ReportVersion {
		return Report{}, fmt.Errorf("usage report: version %d, want %d", r.Version, ReportVersion)
	}
	if !ValidNodeName(r.Node) {
		return Report{}, errors.New("usage report: bad node name")
	}
	if r.Start.IsZero() || r.End.Before(r.Start) || r.End.Sub(r.Start) > 24*time.Hour {
		return Report{}, errors.New("usage report: bad interval")
	}
	seen := make(map[string]struct{}, len(r.Keys))
	for _, k := range r.Keys {
		if !domain.ValidAPIKey(k.APIKey) {
			return Report{}, errors.New("usage report: bad key id")
		}
		if _, dup := seen[k.APIKey]; dup {
			return Report{}, errors.New("usage report: a key twice")
		}
		seen[k.APIKey] = struct{}{}
		if k.Valid > MaxCount {
			return Report{}, errors.New("usage report: count out of range")
		}
		for reason, n := range k.Refused {
			if _, ok := reasonIndex[reason]; !ok || reason == domain.ReasonOK {
				return Report{}, errors.New("usage report: unknown reason")
			}
			if n > MaxCount {
				return Report{}, errors.New("usage report: count out of range")
			}
		}
		if k.LastUsed != nil && k.LastUsed.After(r.End) {
			return Report{}, errors.New("usage report: last use after the interval")
		}
	}
	return r, nil
}
