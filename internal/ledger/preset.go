package ledger

import (
	"encoding/json"
	"fmt"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
)

// Preset fixes what a command (the Preset field of CreateKey,
// RegenerateSecret, RevokeKey and RegisterUser) would otherwise draw at
// random: the ids of the events it appends, the id of the key or user it
// creates, the secret it issues. A command run again with the same Preset takes effect once:
// within JetStream's duplicate window the repeated append carries the same
// message ids, and past it the command recognises its own earlier effect
// (the key it created with that secret, the secret it set, the user it
// registered with that email) and answers as the first run did without
// appending. This is what makes a retried HTTP request with an
// Idempotency-Key safe after a crash.
//
// Use a Preset for one command with one set of arguments only: JetStream
// drops an append whose message id it saw within its duplicate window,
// whatever the subject, so a Preset reused for another key could make a
// command report an effect it did not have. (CreateKey and RegisterUser
// detect that; the others cannot.)
//
// Zero fields are drawn afresh, so the zero Preset is an ordinary run.
// The Secret is the raw secret: keep a Preset only where a secret may be.
type Preset struct {
	// EventIDs are the ids of the events the command appends, in order
	// (registration appends two or three; the others one).
	EventIDs []string
	// APIKey is the id of the key CreateKey creates.
	APIKey string
	// UserID is the id of the user RegisterUser registers.
	UserID string
	// Secret is the secret CreateKey and RegenerateSecret issue.
	Secret domain.Secret
}

// presetEvents is the most events one command appends (an edit of a
// key's name, scopes, metadata, expiry, rate limit and credits: six).
const presetEvents = 6

// NewPreset returns a Preset with every field drawn: enough for any
// command.
func (s *Service) NewPreset() (Preset, error) {
	return s.fill(Preset{})
}

// fill draws the zero fields of p.
func (s *Service) fill(p Preset) (Preset, error) {
	ids := make([]string, 0, presetEvents)
	ids = append(ids, p.EventIDs...)
	for len(ids) < presetEvents {
		ids = append(ids, ulid.MustNew(ulid.Timestamp(s.now()), s.random).String())
	}
	p.EventIDs = ids
	if p.APIKey == "" {
		p.APIKey = s.newID(domain.APIKeyPrefix)
	}
	if p.UserID == "" {
		p.UserID = s.newID(domain.UserIDPrefix)
	}
	if p.Secret.IsZero() {
		secret, err := domain.NewSecret(s.random)
		if err != nil {
			return Preset{}, err
		}
		p.Secret = secret
	}
	if !domain.ValidAPIKey(p.APIKey) || !domain.ValidUserID(p.UserID) || !validEventIDs(p.EventIDs) {
		return Preset{}, domain.Errorf(domain.Internal, "malformed preset identifiers")
	}
	return p, nil
}

// validEventIDs reports whether every id is a ULID, as the event store
// would draw it.
func validEventIDs(ids []string) bool {
	for _, id := range ids {
		if _, err := ulid.ParseStrict(id); err != nil {
			return false
		}
	}
	return true
}

// withIDs gives events the preset's event ids, in order.
func (p Preset) withIDs(events []domain.Event) []domain.Event {
	for i := range events {
		if i < len(p.EventIDs) {
			events[i].ID = p.EventIDs[i]
		}
	}
	return events
}

// presetWire is a Preset's encoding.
type presetWire struct {
	EventIDs []string `json:"event_ids,omitempty"`
	APIKey   string   `json:"api_key,omitempty"`
	UserID   string   `json:"user_id,omitempty"`
	Secret   string   `json:"secret,omitempty"`
}

// MarshalBinary encodes p, raw secret included, so that a later run can
// repeat the command: store the result only encrypted.
func (p Preset) MarshalBinary() ([]byte, error) {
	w := presetWire{EventIDs: p.EventIDs, APIKey: p.APIKey, UserID: p.UserID}
	if !p.Secret.IsZero() {
		w.Secret = p.Secret.Reveal()
	}
	return json.Marshal(w)
}

// UnmarshalBinary decodes what MarshalBinary encoded, checking the
// identifiers' and the secret's formats.
func (p *Preset) UnmarshalBinary(b []byte) error {
	var w presetWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decode preset: %w", err)
	}
	out := Preset{EventIDs: w.EventIDs, APIKey: w.APIKey, UserID: w.UserID}
	if w.APIKey != "" && !domain.ValidAPIKey(w.APIKey) || w.UserID != "" && !domain.ValidUserID(w.UserID) ||
		!validEventIDs(w.EventIDs) {
		return fmt.Errorf("decode preset: malformed identifiers")
	}
	if w.Secret != "" {
		secret, err := domain.ParseSecret(w.Secret)
		if err != nil {
			return fmt.Errorf("decode preset: malformed secret") // never the secret itself
		}
		out.Secret = secret
	}
	*p = out
	return nil
}
