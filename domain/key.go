package domain

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// KeyStatus is what a key is at a given time.
type KeyStatus string

// Key statuses.
const (
	StatusActive   KeyStatus = "active"
	StatusRevoked  KeyStatus = "revoked"
	StatusExpired  KeyStatus = "expired"
	StatusDisabled KeyStatus = "disabled"
)

// MaxGracePeriod is the longest grace period a regenerated key's previous
// secret may keep validating.
const MaxGracePeriod = 7 * 24 * time.Hour

// MaxKeyNameLength is the longest key name, in characters.
const MaxKeyNameLength = 100

// Key is the API-key aggregate: the state folded from its events. The zero
// Key is a key that does not exist yet. Apply is its only mutator.
type Key struct {
	APIKey              string
	UserID              string
	Name                string
	SecretHash          Hash
	PublicKey           PublicKey // verifies signed requests; zero for keys from before them
	SignedOnly          bool      // the secret itself is refused: only signed requests validate
	CreatedAt           time.Time
	ExpiresAt           time.Time // zero: never expires
	SecretRegeneratedAt time.Time // zero: never regenerated
	RevokedAt           time.Time // zero: not revoked
	DisabledAt          time.Time // zero: not disabled
	Scopes              ScopeSet  // what the key grants; "": no scope
	Metadata            string    // a compact JSON object; "": none
	// PreviousSecretHash is the SHA-256 of the secret replaced by the last
	// regeneration, which validates before PreviousExpiresAt (zero: no
	// previous secret validates).
	PreviousSecretHash Hash
	PreviousExpiresAt  time.Time
	// RateLimit and Credits are the key's limits (nil: none). Apply never
	// changes what they point to, it replaces them: copies of a Key may
	// share them.
	RateLimit *RateLimit
	Credits   *CreditPolicy
	// TeamID is the team that owns the key ("": the key is UserID's);
	// UserID is then the member who created it. ServiceAccount, on a
	// team key, is the team's service account the key belongs to.
	TeamID         string
	ServiceAccount string
	Version        uint64
	LastHash       Hash // Hash of the last event applied: the next event's Prev
	// member is the team member a team key is handed to by ForMember: the
	// owner checks of the key's commands accept them.
	member string
}

// OwnedBy reports whether userID may act on the key as its owner: the
// key exists and is userID's own, or it is a team key handed to userID by
// ForMember once their role allowed it.
func (k *Key) OwnedBy(userID string) bool {
	if !k.Exists() || userID == "" {
		return false
	}
	if k.TeamID != "" {
		return k.member == userID
	}
	return k.UserID == userID
}

// ForMember returns a copy of the team key on which userID acts as its
// owner would, the events recording userID as the actor. The caller must
// have checked the member's role first (Team.KeyAccess).
func (k Key) ForMember(userID string) Key {
	k.member = userID
	return k
}

// CreatedBy returns who created the key: its service account for a key
// of one, else the user who created it.
func (k *Key) CreatedBy() string {
	if k.ServiceAccount != "" {
		return k.ServiceAccount
	}
	return k.UserID
}

// Exists reports whether the key has been created.
func (k *Key) Exists() bool { return k.Version > 0 }

// Revoked reports whether the key has been revoked.
func (k *Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Disabled reports whether the key is disabled.
func (k *Key) Disabled() bool { return !k.DisabledAt.IsZero() }

// Standing returns what decides whether the key may be used;
// ownerDisabled says whether its owner is disabled, which the key itself
// does not know.
func (k *Key) Standing(ownerDisabled bool) Standing {
	return Standing{Exists: k.Exists(), Revoked: k.Revoked(), ExpiresAt: k.ExpiresAt, SignedOnly: k.SignedOnly,
		CanSign: !k.PublicKey.IsZero(), OwnerDisabled: ownerDisabled, Disabled: k.Disabled(),
		PreviousUntil: k.PreviousExpiresAt}
}

// Usable returns whether the key is in force at now, its credential
// aside: ReasonOK, or ReasonUnknownKey, ReasonRevoked, ReasonExpired,
// ReasonKeyDisabled, ReasonUserDisabled (see Standing.Decide).
func (k *Key) Usable(now time.Time, ownerDisabled bool) Reason {
	return k.Standing(ownerDisabled).Decide(now)
}

// StatusAt returns the key's status at now (see Standing.Status). A key
// that does not exist is reported active: check Exists first.
func (k *Key) StatusAt(now time.Time) KeyStatus {
	return k.Standing(false).Status(now)
}

// PreviousInGrace reports whether the previous secret still validates at
// now (the key itself permitting): whether now is before
// PreviousExpiresAt.
func (k *Key) PreviousInGrace(now time.Time) bool {
	return k.Standing(false).PreviousValid(now)
}

// Apply folds one event into the key. It is used for new events and replay
// alike, and rejects events that do not follow the key's history.
func (k *Key) Apply(e Event) error {
	if e.Version != k.Version+1 {
		return fmt.Errorf("apply %s to %s: version %d after %d", e.Type, e.Aggregate, e.Version, k.Version)
	}
	if k.Exists() && e.Aggregate != k.APIKey {
		return fmt.Errorf("apply %s of %s to key %s", e.Type, e.Aggregate, k.APIKey)
	}
	switch d := e.Data.(type) {
	case KeyCreated:
		if k.Exists() {
			return fmt.Errorf("apply %s to %s: key exists", e.Type, e.Aggregate)
		}
		k.APIKey, k.UserID, k.Name, k.SecretHash, k.CreatedAt = e.Aggregate, d.UserID, d.Name, d.SecretHash, e.Time
		k.PublicKey, k.SignedOnly = d.PublicKey, d.SignedOnly
		k.TeamID, k.ServiceAccount = d.TeamID, d.ServiceAccount
		if d.ExpiresAt != nil {
			k.ExpiresAt = d.ExpiresAt.UTC()
		}
		if err := k.setPolicy(e, d.Scopes, d.Metadata); err != nil {
			return err
		}
		if err := k.setRateLimit(e, d.RateLimit); err != nil {
			return err
		}
		if err := k.setCredits(e, d.Credits); err != nil {
			return err
		}
	case KeyRateLimitChanged:
		if err := k.applyable(e); err != nil {
			return err
		}
		if err := k.setRateLimit(e, d.RateLimit); err != nil {
			return err
		}
	case KeyCreditsChanged:
		if err := k.applyable(e); err != nil {
			return err
		}
		if err := k.setCredits(e, d.Credits); err != nil {
			return err
		}
	case KeyCreditsAdded:
		if err := k.applyable(e); err != nil {
			return err
		}
		if err := k.addCredits(e, d.Add); err != nil {
			return err
		}
	case KeySecretRegenerated:
		if err := k.applyable(e); err != nil {
			return err
		}
		k.PreviousSecretHash, k.PreviousExpiresAt = Hash{}, time.Time{}
		if d.PreviousExpiresAt != nil && d.PreviousExpiresAt.After(e.Time) {
			k.PreviousSecretHash, k.PreviousExpiresAt = k.SecretHash, d.PreviousExpiresAt.UTC()
		}
		k.SecretHash, k.PublicKey, k.SecretRegeneratedAt = d.SecretHash, d.PublicKey, e.Time
	case KeyRevoked:
		if err := k.applyable(e); err != nil {
			return err
		}
		k.RevokedAt = e.Time
		k.PreviousSecretHash, k.PreviousExpiresAt = Hash{}, time.Time{}
	case KeyDisabled:
		if err := k.applyable(e); err != nil {
			return err
		}
		if k.Disabled() {
			return fmt.Errorf("apply %s to %s: key already disabled", e.Type, e.Aggregate)
		}
		k.DisabledAt = e.Time
		k.PreviousSecretHash, k.PreviousExpiresAt = Hash{}, time.Time{}
	case KeyEnabled:
		if err := k.applyable(e); err != nil {
			return err
		}
		if !k.Disabled() {
			return fmt.Errorf("apply %s to %s: key not disabled", e.Type, e.Aggregate)
		}
		k.DisabledAt = time.Time{}
	case KeyRenamed:
		if err := k.applyable(e); err != nil {
			return err
		}
		k.Name = d.Name
	case KeyScopesChanged:
		if err := k.applyable(e); err != nil {
			return err
		}
		if err := k.setPolicy(e, d.Scopes, []byte(k.Metadata)); err != nil {
			return err
		}
	case KeyMetadataChanged:
		if err := k.applyable(e); err != nil {
			return err
		}
		if err := k.setPolicy(e, k.Scopes.List(), d.Metadata); err != nil {
			return err
		}
	case KeyExpiryChanged:
		if err := k.applyable(e); err != nil {
			return err
		}
		k.ExpiresAt = time.Time{}
		if d.ExpiresAt != nil {
			k.ExpiresAt = d.ExpiresAt.UTC()
		}
	default:
		return fmt.Errorf("apply %s to key %s: not a key event", e.Type, e.Aggregate)
	}
	k.Version, k.LastHash = e.Version, e.Hash
	return nil
}

// applyable checks that an event other than key.created may apply: the
// key exists and is not revoked.
func (k *Key) applyable(e Event) error {
	if !k.Exists() || k.Revoked() {
		return fmt.Errorf("apply %s to %s: key missing or revoked", e.Type, e.Aggregate)
	}
	return nil
}

// setPolicy sets the key's scopes and metadata from an event's, which must
// be valid: a log is not believed beyond what commands may write.
func (k *Key) setPolicy(e Event, scopes []string, metadata []byte) error {
	set, err := NewScopeSet(scopes)
	if err != nil {
		return fmt.Errorf("apply %s to %s: %w", e.Type, e.Aggregate, err)
	}
	meta, err := CompactMetadata(metadata)
	if err != nil {
		return fmt.Errorf("apply %s to %s: %w", e.Type, e.Aggregate, err)
	}
	k.Scopes, k.Metadata = set, meta
	return nil
}

// setRateLimit sets the key's rate limit from an event's (nil: none),
// which must be valid.
func (k *Key) setRateLimit(e Event, r *RateLimit) error {
	if r == nil {
		k.RateLimit = nil
		return nil
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("apply %s to %s: %w", e.Type, e.Aggregate, err)
	}
	v := *r
	k.RateLimit = &v
	return nil
}

// setCredits starts a new credit epoch at e from an event's credits
// (nil: none), which must be valid.
func (k *Key) setCredits(e Event, c *Credits) error {
	if c == nil {
		k.Credits = nil
		return nil
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("apply %s to %s: %w", e.Type, e.Aggregate, err)
	}
	p := &CreditPolicy{Epoch: e.Version, Since: e.Time.UTC(), Initial: c.Remaining}
	if c.Refill != nil {
		r := *c.Refill
		p.Refill = &r
	}
	k.Credits = p
	return nil
}

// addCredits adds a top-up to the key's current credit epoch, within the
// bounds AddCredits checks.
func (k *Key) addCredits(e Event, n uint64) error {
	if k.Credits == nil {
		return fmt.Errorf("apply %s to %s: the key has no credits", e.Type, e.Aggregate)
	}
	if err := k.Credits.checkTopUp(n); err != nil {
		return fmt.Errorf("apply %s to %s: %w", e.Type, e.Aggregate, err)
	}
	p := *k.Credits
	p.Added += n
	k.Credits = &p
	return nil
}

// Limits returns the key's limits, nil when it has none.
func (k *Key) Limits() *Limits {
	if k.RateLimit == nil && k.Credits == nil {
		return nil
	}
	return &Limits{RateLimit: k.RateLimit, Credits: k.Credits}
}

// CreateKey is the command that makes a new key for a user.
type CreateKey struct {
	APIKey     string    // a fresh NewAPIKey value
	UserID     string    // the owner
	Name       string    // optional label
	SecretHash Hash      // SHA-256 of the new secret
	PublicKey  PublicKey // the new secret's PublicKey(APIKey)
	SignedOnly bool      // refuse the secret in headers; accept only signed requests
	ExpiresAt  time.Time // zero: never
	Scopes     []string  // what the key grants (see ScopeSet); none: no scope
	Metadata   []byte    // a JSON object (see CompactMetadata); empty: none
	RateLimit  *RateLimit
	Credits    *Credits // remaining from creation on, and an optional refill
	// TeamID makes the key the team's (UserID is then the member who
	// creates it); ServiceAccount, with TeamID, gives it to one of the
	// team's service accounts.
	TeamID         string
	ServiceAccount string
}

// Create returns the events that create the key described by cmd. k must be
// the zero Key. It returns Invalid for a bad name, scopes or metadata, or
// an expiry not in the future, limits out of bounds, and Conflict if the
// key exists.
func (k *Key) Create(cmd CreateKey, now time.Time) ([]Event, error) {
	if k.Exists() {
		return nil, Errorf(Conflict, "key already exists")
	}
	if !ValidAPIKey(cmd.APIKey) {
		return nil, Errorf(Invalid, "malformed api key")
	}
	if !ValidUserID(cmd.UserID) {
		return nil, Errorf(Invalid, "malformed owner id")
	}
	if cmd.SecretHash == (Hash{}) || cmd.PublicKey.IsZero() {
		return nil, Errorf(Invalid, "missing secret hash or public key")
	}
	if err := ValidateKeyName(cmd.Name); err != nil {
		return nil, err
	}
	scopes, err := NewScopeSet(cmd.Scopes)
	if err != nil {
		return nil, err
	}
	meta, err := CompactMetadata(cmd.Metadata)
	if err != nil {
		return nil, err
	}
	if cmd.TeamID != "" && !ValidTeamID(cmd.TeamID) || cmd.ServiceAccount != "" && (cmd.TeamID == "" || !ValidServiceAccountID(cmd.ServiceAccount)) {
		return nil, Errorf(Invalid, "malformed team or service account id")
	}
	d := KeyCreated{UserID: cmd.UserID, Name: cmd.Name, SecretHash: cmd.SecretHash, PublicKey: cmd.PublicKey,
		SignedOnly: cmd.SignedOnly, TeamID: cmd.TeamID, ServiceAccount: cmd.ServiceAccount}
	if scopes != "" {
		d.Scopes = scopes.List()
	}
	if meta != "" {
		d.Metadata = json.RawMessage(meta)
	}
	if cmd.RateLimit != nil {
		if err := cmd.RateLimit.Validate(); err != nil {
			return nil, err
		}
		r := *cmd.RateLimit
		d.RateLimit = &r
	}
	if cmd.Credits != nil {
		if err := cmd.Credits.Validate(); err != nil {
			return nil, err
		}
		d.Credits = cmd.Credits.clone()
	}
	if !cmd.ExpiresAt.IsZero() {
		if !cmd.ExpiresAt.After(now) {
			return nil, Errorf(Invalid, "expires_at must be in the future")
		}
		t := cmd.ExpiresAt.UTC()
		d.ExpiresAt = &t
	}
	return k.record(cmd.APIKey, cmd.UserID, now, d)
}

// Revoke returns the events that revoke the key on behalf of userID. Only
// the owner may revoke: anyone else gets NotFound, exactly like a missing
// key. Revoking a revoked key returns no events and no error.
func (k *Key) Revoke(userID string, now time.Time) ([]Event, error) {
	if err := k.checkOwner(userID); err != nil {
		return nil, err
	}
	if k.Revoked() {
		return nil, nil
	}
	return k.record(k.APIKey, userID, now, KeyRevoked{})
}

// RevokeAsAdmin returns the events that revoke the key on behalf of an
// admin (actor "admin:<name>"), whoever owns it, recording the reason.
// Revoking a revoked key returns no events. Errors: NotFound, Invalid.
func (k *Key) RevokeAsAdmin(actor, reason string, now time.Time) ([]Event, error) {
	if !k.Exists() {
		return nil, Errorf(NotFound, "api key not found")
	}
	if k.Revoked() {
		return nil, nil
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	return k.record(k.APIKey, actor, now, KeyRevoked{Reason: reason})
}

// RegenerateSecret returns the events that replace the key's secret with
// the one hashed to newHash and its public key with newPublic, on behalf of
// userID. With a grace period (0 to MaxGracePeriod) the current secret
// keeps validating until now+grace; without one it stops at once, and so
// does a previous secret still in its grace period. It returns NotFound
// for a missing key or one userID does not own, Conflict for a revoked or
// expired key or a grace period for a disabled one, and Invalid for a
// missing hash or public key or a grace period out of range.
func (k *Key) RegenerateSecret(userID string, newHash Hash, newPublic PublicKey, grace time.Duration, now time.Time) ([]Event, error) {
	if err := k.checkOwner(userID); err != nil {
		return nil, err
	}
	if newHash == (Hash{}) || newPublic.IsZero() {
		return nil, Errorf(Invalid, "missing secret hash or public key")
	}
	if grace < 0 || grace > MaxGracePeriod {
		return nil, Errorf(Invalid, "grace_period must be between 0 and %s", MaxGracePeriod)
	}
	switch k.StatusAt(now) {
	case StatusRevoked:
		return nil, Errorf(Conflict, "key is revoked")
	case StatusExpired:
		return nil, Errorf(Conflict, "key has expired")
	case StatusDisabled:
		if grace > 0 {
			return nil, Errorf(Conflict, "key is disabled: its secret has no grace period to keep")
		}
	}
	d := KeySecretRegenerated{SecretHash: newHash, PublicKey: newPublic}
	if grace > 0 {
		until := now.Add(grace).UTC()
		d.PreviousExpiresAt = &until
	}
	return k.record(k.APIKey, userID, now, d)
}

// Disable returns the events that pause the key on behalf of userID (its
// owner: anyone else gets NotFound), recording the reason. A disabled key
// is refused until enabled; its previous secret's grace period ends.
// Disabling a disabled key returns no events. Errors: NotFound, Conflict
// (revoked), Invalid (reason).
func (k *Key) Disable(userID, reason string, now time.Time) ([]Event, error) {
	if err := k.checkOwner(userID); err != nil {
		return nil, err
	}
	return k.setDisabled(userID, true, reason, now)
}

// Enable returns the events that lift a Disable on behalf of userID (see
// Disable). Enabling a key that is not disabled returns no events.
func (k *Key) Enable(userID, reason string, now time.Time) ([]Event, error) {
	if err := k.checkOwner(userID); err != nil {
		return nil, err
	}
	return k.setDisabled(userID, false, reason, now)
}

// DisableAsAdmin is Disable on behalf of an admin (actor "admin:<name>"),
// whoever owns the key. Errors: NotFound, Conflict, Invalid.
func (k *Key) DisableAsAdmin(actor, reason string, now time.Time) ([]Event, error) {
	if !k.Exists() {
		return nil, Errorf(NotFound, "api key not found")
	}
	return k.setDisabled(actor, true, reason, now)
}

// EnableAsAdmin is Enable on behalf of an admin, whoever owns the key.
// Errors: NotFound, Conflict, Invalid.
func (k *Key) EnableAsAdmin(actor, reason string, now time.Time) ([]Event, error) {
	if !k.Exists() {
		return nil, Errorf(NotFound, "api key not found")
	}
	return k.setDisabled(actor, false, reason, now)
}

func (k *Key) setDisabled(actor string, disable bool, reason string, now time.Time) ([]Event, error) {
	if k.Revoked() {
		return nil, Errorf(Conflict, "key is revoked")
	}
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	switch {
	case disable && !k.Disabled():
		return k.record(k.APIKey, actor, now, KeyDisabled{Reason: reason})
	case !disable && k.Disabled():
		return k.record(k.APIKey, actor, now, KeyEnabled{Reason: reason})
	}
	return nil, nil
}

// KeyEdit is a change to a key's editable fields. Only the fields marked
// Set change; each field that changes is one event.
type KeyEdit struct {
	SetName      bool
	Name         string
	SetScopes    bool
	Scopes       []string // none: the key grants no scope
	SetMetadata  bool
	Metadata     []byte // a JSON object; empty or null: none
	SetExpiresAt bool
	ExpiresAt    time.Time // zero: never expires
	SetRateLimit bool
	RateLimit    *RateLimit // nil: none
	// SetCredits with Credits sets the key's credits anew, a new credit
	// epoch, even when they equal the current ones (the remaining credits
	// go back to Credits.Remaining); with nil it removes them.
	SetCredits bool
	Credits    *Credits
}

// Edit returns the events that apply edit to the key on behalf of userID,
// its owner (anyone else gets NotFound): one event per field whose value
// changes (credits set count as a change, see KeyEdit), none when nothing
// does. Errors: NotFound, Conflict (revoked), Invalid (a bad name, scopes
// or metadata, an expiry not in the future, limits out of bounds).
func (k *Key) Edit(userID string, edit KeyEdit, now time.Time) ([]Event, error) {
	if err := k.checkOwner(userID); err != nil {
		return nil, err
	}
	return k.edit(userID, edit, now)
}

// EditAsAdmin is Edit on behalf of an admin (actor "admin:<name>"),
// whoever owns the key. Errors: NotFound, Conflict, Invalid.
func (k *Key) EditAsAdmin(actor string, edit KeyEdit, now time.Time) ([]Event, error) {
	if !k.Exists() {
		return nil, Errorf(NotFound, "api key not found")
	}
	return k.edit(actor, edit, now)
}

func (k *Key) edit(actor string, edit KeyEdit, now time.Time) ([]Event, error) {
	if k.Revoked() {
		return nil, Errorf(Conflict, "key is revoked")
	}
	var changes []EventData
	if edit.SetName {
		if err := ValidateKeyName(edit.Name); err != nil {
			return nil, err
		}
		if edit.Name != k.Name {
			changes = append(changes, KeyRenamed{Name: edit.Name})
		}
	}
	if edit.SetScopes {
		set, err := NewScopeSet(edit.Scopes)
		if err != nil {
			return nil, err
		}
		if set != k.Scopes {
			changes = append(changes, KeyScopesChanged{Scopes: set.List()})
		}
	}
	if edit.SetMetadata {
		meta, err := CompactMetadata(edit.Metadata)
		if err != nil {
			return nil, err
		}
		if meta != k.Metadata {
			d := KeyMetadataChanged{}
			if meta != "" {
				d.Metadata = json.RawMessage(meta)
			}
			changes = append(changes, d)
		}
	}
	if edit.SetExpiresAt {
		d := KeyExpiryChanged{}
		if !edit.ExpiresAt.IsZero() {
			if !edit.ExpiresAt.After(now) {
				return nil, Errorf(Invalid, "expires_at must be in the future")
			}
			t := edit.ExpiresAt.UTC()
			d.ExpiresAt = &t
		}
		if !edit.ExpiresAt.Equal(k.ExpiresAt) {
			changes = append(changes, d)
		}
	}
	if edit.SetRateLimit {
		d := KeyRateLimitChanged{}
		if edit.RateLimit != nil {
			if err := edit.RateLimit.Validate(); err != nil {
				return nil, err
			}
			r := *edit.RateLimit
			d.RateLimit = &r
		}
		if !equalRateLimits(d.RateLimit, k.RateLimit) {
			changes = append(changes, d)
		}
	}
	if edit.SetCredits {
		d := KeyCreditsChanged{}
		if edit.Credits != nil {
			if err := edit.Credits.Validate(); err != nil {
				return nil, err
			}
			d.Credits = edit.Credits.clone()
		}
		if d.Credits != nil || k.Credits != nil {
			changes = append(changes, d)
		}
	}
	var out []Event
	probe := *k
	for _, d := range changes {
		events, err := probe.record(probe.APIKey, actor, now, d)
		if err != nil {
			return nil, err
		}
		if err := probe.Apply(events[0]); err != nil {
			return nil, Wrap(Internal, err, "")
		}
		out = append(out, events...)
	}
	return out, nil
}

// CheckSecret decides a validation of the key by secret at now, with
// ownerDisabled saying whether its owner is disabled: ReasonOK, or the
// reason for refusing (see Standing.DecideSecrets). The secret is
// compared with the current and the previous secret, each in constant
// time, whatever the key's state.
func (k *Key) CheckSecret(secret Secret, ownerDisabled bool, now time.Time) Reason {
	current := SecretMatches(k.SecretHash, secret)
	previous := SecretMatches(k.PreviousSecretHash, secret) && k.PreviousSecretHash != (Hash{})
	return k.Standing(ownerDisabled).DecideSecrets(current, previous, now)
}

// SecretMatches reports whether secret hashes to stored: one SHA-256 and a
// constant-time compare, whatever the inputs. A zero Secret never matches.
func SecretMatches(stored Hash, secret Secret) bool {
	h := secret.Hash()
	return subtle.ConstantTimeCompare(h[:], stored[:]) == 1 && !secret.IsZero()
}

func (k *Key) checkOwner(userID string) error {
	if !k.OwnedBy(userID) {
		return Errorf(NotFound, "api key not found")
	}
	return nil
}

// record builds one event that follows the key's current version, and
// checks it applies.
func (k *Key) record(apiKey, actor string, now time.Time, d EventData) ([]Event, error) {
	e := Event{
		Type: d.EventType(), Schema: SchemaFor(d), Aggregate: apiKey,
		Version: k.Version + 1, Time: now.UTC(), Actor: actor, Prev: k.LastHash, Data: d,
	}
	probe := *k
	if err := probe.Apply(e); err != nil {
		return nil, Wrap(Internal, err, "")
	}
	return []Event{e}, nil
}

// ValidateKeyName checks a key's optional label: at most MaxKeyNameLength
// characters, valid UTF-8, no control characters, no surrounding spaces.
func ValidateKeyName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return Errorf(Invalid, "name must be valid UTF-8")
	case utf8.RuneCountInString(name) > MaxKeyNameLength:
		return Errorf(Invalid, "name must be at most %d characters", MaxKeyNameLength)
	case strings.TrimSpace(name) != name:
		return Errorf(Invalid, "name must not start or end with spaces")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return Errorf(Invalid, "name must not contain control characters")
	}
	return nil
}
