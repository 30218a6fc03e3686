package domain

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Admin events: which Ed25519 keys may sign requests to the admin API, and
// on whose behalf. Each admin is an aggregate (CategoryAdmin, the admin's
// name), so its events are on a subject of their own.
const (
	TypeAdminKeyEnrolled = "admin.key_enrolled"
	TypeAdminKeyRevoked  = "admin.key_revoked"
)

// CategoryAdmin is the category of the admin events.
const CategoryAdmin = "admin"

// ActorBootstrap is the actor of the first admin key's enrolment, which
// serve makes on its own (--bootstrap-admin) while no admin key exists.
const ActorBootstrap = "system:bootstrap"

// AdminKeyEnrolled lets a key sign admin requests on behalf of the admin
// (the event's aggregate). Its event carries the signed request of the
// admin who enrolled it (Event.Request), except the bootstrap enrolment.
type AdminKeyEnrolled struct {
	Key    PublicKey `json:"key"`
	Reason string    `json:"reason,omitempty"`
}

// AdminKeyRevoked stops a key from signing admin requests, for good.
type AdminKeyRevoked struct {
	Key    PublicKey `json:"key"`
	Reason string    `json:"reason,omitempty"`
}

// EventType implements EventData.
func (AdminKeyEnrolled) EventType() string { return TypeAdminKeyEnrolled }

// EventType implements EventData.
func (AdminKeyRevoked) EventType() string { return TypeAdminKeyRevoked }

// AdminKeyID names an admin public key: the keyid of its signed requests.
// It is the same digest as LedgerKeyID.
func AdminKeyID(pub PublicKey) string { return LedgerKeyID(pub[:]) }

// MaxAdminNameLength bounds an admin's name.
const MaxAdminNameLength = 64

// ValidAdminName reports whether name can name an admin: 1 to
// MaxAdminNameLength lower-case letters, digits, '-' or '_', starting with
// a letter (it is part of a NATS subject and of the actor admin:<name>).
func ValidAdminName(name string) bool {
	if name == "" || len(name) > MaxAdminNameLength || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// AdminKey is one key of an admin.
type AdminKey struct {
	Key        PublicKey
	ID         string
	EnrolledAt time.Time
	EnrolledBy string // the actor of the enrolment
	Revoked    bool
}

// Admin is the admin aggregate: a name and its keys. The zero Admin does
// not exist yet. Apply is its only mutator.
type Admin struct {
	Name     string
	Keys     []AdminKey
	Version  uint64
	LastHash Hash
}

// Exists reports whether the admin has had a key enrolled.
func (a *Admin) Exists() bool { return a.Version > 0 }

// ActiveKey returns the admin's key with id if it is not revoked.
func (a *Admin) ActiveKey(id string) (AdminKey, bool) {
	for _, k := range a.Keys {
		if k.ID == id && !k.Revoked {
			return k, true
		}
	}
	return AdminKey{}, false
}

// Apply folds one admin event into the admin.
func (a *Admin) Apply(e Event) error {
	if e.Version != a.Version+1 {
		return fmt.Errorf("apply %s to %s: version %d after %d", e.Type, e.Aggregate, e.Version, a.Version)
	}
	if a.Exists() && e.Aggregate != a.Name {
		return fmt.Errorf("apply %s of %s to admin %s", e.Type, e.Aggregate, a.Name)
	}
	switch d := e.Data.(type) {
	case AdminKeyEnrolled:
		if !ValidAdminName(e.Aggregate) || d.Key.IsZero() {
			return fmt.Errorf("apply %s to %s: bad name or zero key", e.Type, e.Aggregate)
		}
		for _, k := range a.Keys {
			if k.Key == d.Key {
				return fmt.Errorf("apply %s to %s: key %s enrolled before", e.Type, e.Aggregate, k.ID)
			}
		}
		a.Name = e.Aggregate
		a.Keys = append(a.Keys, AdminKey{Key: d.Key, ID: AdminKeyID(d.Key), EnrolledAt: e.Time, EnrolledBy: e.Actor})
	case AdminKeyRevoked:
		found := false
		for i := range a.Keys {
			if a.Keys[i].Key == d.Key && !a.Keys[i].Revoked {
				a.Keys = append([]AdminKey(nil), a.Keys...)
				a.Keys[i].Revoked, found = true, true
			}
		}
		if !found {
			return fmt.Errorf("apply %s to %s: key not enrolled or revoked", e.Type, e.Aggregate)
		}
	default:
		return fmt.Errorf("apply %s to admin %s: not an admin event", e.Type, e.Aggregate)
	}
	a.Version, a.LastHash = e.Version, e.Hash
	return nil
}

// EnrollKey returns the event that enrolls key for the admin named name
// (a new admin when a does not exist), by actor on the strength of req
// (nil only for the bootstrap). Errors: Invalid (name, key, reason),
// Conflict (key already enrolled for this admin).
func (a *Admin) EnrollKey(name string, key PublicKey, actor, reason string, req *SignedRequest, now time.Time) ([]Event, error) {
	if !ValidAdminName(name) {
		return nil, Errorf(Invalid, "admin name must be 1 to %d lower-case letters, digits, - or _, starting with a letter", MaxAdminNameLength)
	}
	if a.Exists() && a.Name != name {
		return nil, Errorf(Internal, "admin %s is not %s", a.Name, name)
	}
	if key.IsZero() {
		return nil, Errorf(Invalid, "admin key is required")
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	for _, k := range a.Keys {
		if k.Key == key {
			return nil, Errorf(Conflict, "admin key %s was enrolled before", k.ID)
		}
	}
	probe := *a
	probe.Name = name
	return probe.record(actor, req, now, AdminKeyEnrolled{Key: key, Reason: reason})
}

// RevokeKey returns the event that revokes the admin's key with id.
// Errors: NotFound (no such active key), Invalid (reason).
func (a *Admin) RevokeKey(id, actor, reason string, req *SignedRequest, now time.Time) ([]Event, error) {
	k, ok := a.ActiveKey(id)
	if !ok {
		return nil, Errorf(NotFound, "admin key not found")
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	return a.record(actor, req, now, AdminKeyRevoked{Key: k.Key, Reason: reason})
}

func (a *Admin) record(actor string, req *SignedRequest, now time.Time, d EventData) ([]Event, error) {
	e := Event{Type: d.EventType(), Schema: CurrentSchema, Aggregate: a.Name, Version: a.Version + 1,
		Time: now.UTC(), Actor: actor, Prev: a.LastHash, Data: d, Request: req}
	probe := *a
	if err := probe.Apply(e); err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return []Event{e}, nil
}

// SignedRequest is an admin's signed request (RFC 9421, tag
// keyledger-admin-v1) as kept in the event it caused: the key id, the
// Signature-Input member value, the signature and the signature base (the
// values of the covered components: method, target URI, content type and
// the body's digest). Anyone holding the admin's public key, which the
// log's admin events name, can check it (Verify) without the request.
type SignedRequest struct {
	KeyID     string `json:"key_id"`
	Input     string `json:"signature_input"`
	Signature []byte `json:"signature"`
	Base      string `json:"base"`
}

// ErrBadRequestSignature is returned by SignedRequest.Verify for a kept
// request that does not verify.
var ErrBadRequestSignature = errors.New("the kept admin request does not verify")

// Verify checks that the kept request was signed by pub: the base ends
// with the signature's input, the input names the key id and the admin
// tag, and the Ed25519 signature of the base verifies.
func (r SignedRequest) Verify(pub PublicKey) error {
	switch {
	case AdminKeyID(pub) != r.KeyID:
		return fmt.Errorf("%w: key id %s is not the key's %s", ErrBadRequestSignature, r.KeyID, AdminKeyID(pub))
	case !strings.Contains(r.Input, `;keyid="`+r.KeyID+`"`) || !strings.Contains(r.Input, `;tag="keyledger-admin-v1"`):
		return fmt.Errorf("%w: input does not name the key id and the admin tag", ErrBadRequestSignature)
	case r.Base != `"@signature-params": `+r.Input && !strings.HasSuffix(r.Base, "\n\"@signature-params\": "+r.Input):
		return fmt.Errorf("%w: base does not end with the input", ErrBadRequestSignature)
	case !ed25519.Verify(pub[:], []byte(r.Base), r.Signature):
		return fmt.Errorf("%w: bad signature", ErrBadRequestSignature)
	}
	return nil
}

// Component returns the value of a covered component (such as "@method"
// or "@target-uri") as the base records it.
func (r SignedRequest) Component(name string) (string, bool) {
	prefix := []byte(`"` + name + `": `)
	for line := range bytes.SplitSeq([]byte(r.Base), []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, prefix); ok {
			return string(v), true
		}
	}
	return "", false
}
