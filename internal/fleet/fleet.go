// Package fleet is how serve learns which nodes validate keys and how far
// each has applied the log: every node (validation nodes, and serve's own
// projector) publishes a small heartbeat on a subject of its own,
// keyledger_fleet.<name>, outside the ledger's log (core NATS, no stream),
// every second and right after it applied more of the log; serve folds
// them into a View, lists it (GET /admin/nodes) and waits on it for a
// command's event to be applied by every live node (?wait=nodes).
//
// A heartbeat is a claim, not a proof: every validation node holds the same
// validator credentials, so one holder can publish under any node's name.
// What a forger can do is bounded here: claim that a node applied more
// than it did (a ?wait=nodes answers early for the node it impersonates),
// or announce nodes that do not exist (they count as live and unconfirmed,
// so waits time out into 202 until they are forgotten). It cannot make a
// key valid anywhere, and the View caps how many nodes it keeps, so a flood
// of names cannot grow serve's memory.
package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// SubjectPrefix is the first token of the heartbeats' subjects. It is not
// under the log's subjects (keyledger.>), so no heartbeat can ever be taken
// for an event.
const SubjectPrefix = "keyledger_fleet"

// SubjectAll matches every node's heartbeats.
const SubjectAll = SubjectPrefix + ".*"

// MaxNameLen caps a node's name.
const MaxNameLen = 64

// MaxHeartbeatBytes caps a heartbeat's encoding: anything longer is
// refused unread.
const MaxHeartbeatBytes = 1024

// maxVersionLen caps the version string a node reports.
const maxVersionLen = 64

// Heartbeat is what a node announces about itself.
type Heartbeat struct {
	// Name is the node's name, also the last token of its subject.
	Name string `json:"name"`
	// Version is the keyledger version the node runs.
	Version string `json:"version"`
	// AppliedSeq is the stream sequence the node applied: an event at
	// sequence N is in force on the node once AppliedSeq >= N.
	AppliedSeq uint64 `json:"applied_seq"`
	// StalenessSeconds is how long ago the node last confirmed its view
	// complete (-1: not yet).
	StalenessSeconds float64 `json:"staleness_seconds"`
}

// Subject returns the subject a node named name publishes on.
func Subject(name string) string { return SubjectPrefix + "." + name }

// ValidName reports whether name can name a node: 1 to MaxNameLen
// letters, digits, '_', '-' or ':' (one subject token, printable).
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameLen {
		return false
	}
	for _, c := range []byte(name) {
		if !nameByte(c) {
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == ':'
}

// NameFrom makes a valid node name of s (a host name, say): every other
// byte becomes '_', and it is cut to MaxNameLen; "" gives "node".
func NameFrom(s string) string {
	b := []byte(s)
	if len(b) > MaxNameLen {
		b = b[:MaxNameLen]
	}
	for i, c := range b {
		if !nameByte(c) {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "node"
	}
	return string(b)
}

// ErrInvalid is the error of Parse for anything that is not a well-formed
// heartbeat of the node its subject names.
var ErrInvalid = errors.New("fleet: invalid heartbeat")

// Parse decodes the heartbeat data received on subject. It refuses, with
// ErrInvalid, data over MaxHeartbeatBytes, anything but one JSON object of
// the known fields, an invalid name, a name other than the subject's last
// token, and a version that is not short printable UTF-8.
func Parse(subject string, data []byte) (Heartbeat, error) {
	var hb Heartbeat
	if len(data) > MaxHeartbeatBytes {
		return hb, fmt.Errorf("%w: %d bytes", ErrInvalid, len(data))
	}
	token, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	if !ok || !ValidName(token) {
		return hb, fmt.Errorf("%w: subject", ErrInvalid)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hb); err != nil {
		return Heartbeat{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Heartbeat{}, fmt.Errorf("%w: trailing data", ErrInvalid)
	}
	if hb.Name != token {
		return Heartbeat{}, fmt.Errorf("%w: the name is not the subject's", ErrInvalid)
	}
	if len(hb.Version) > maxVersionLen || !utf8.ValidString(hb.Version) || strings.ContainsFunc(hb.Version, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return Heartbeat{}, fmt.Errorf("%w: version", ErrInvalid)
	}
	if hb.StalenessSeconds < -1 || hb.StalenessSeconds != hb.StalenessSeconds {
		return Heartbeat{}, fmt.Errorf("%w: staleness", ErrInvalid)
	}
	return hb, nil
}

// Encode returns the heartbeat's wire form.
func (hb Heartbeat) Encode() ([]byte, error) {
	if !ValidName(hb.Name) {
		return nil, fmt.Errorf("%w: name %q", ErrInvalid, hb.Name)
	}
	return json.Marshal(hb)
}
