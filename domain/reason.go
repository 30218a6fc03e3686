package domain

import "time"

// Reason is the outcome of a validation: ReasonOK, or why the credential
// was refused. Reasons go to logs and metrics only; a client is always
// told the same thing, whatever the reason.
type Reason string

// Validation outcomes. Every reason a validation can end with is here, so
// that metrics can count each from the start; Reasons lists them. Append
// only: dashboards and alerts name them.
const (
	// ReasonOK is a credential that validated.
	ReasonOK Reason = "ok"

	// The key and what it allows, decided by Decide, DecideSecret and
	// DecideSigner.

	// ReasonUnknownKey is a key id the log has never created.
	ReasonUnknownKey Reason = "unknown_key"
	// ReasonWrongSecret is a secret that is not the key's current one.
	ReasonWrongSecret Reason = "wrong_secret"
	// ReasonSignedOnly is the right secret of a key that accepts only
	// signed requests.
	ReasonSignedOnly Reason = "signed_only"
	// ReasonNoPublicKey is a signed request for a key that cannot sign: it
	// was created before signed requests and never regenerated since.
	ReasonNoPublicKey Reason = "no_public_key"
	// ReasonRevoked is a revoked key.
	ReasonRevoked Reason = "revoked"
	// ReasonExpired is a key at or past its expiry.
	ReasonExpired Reason = "expired"
	// ReasonUserDisabled is a key whose owner is disabled.
	ReasonUserDisabled Reason = "user_disabled"

	// The request itself.

	// ReasonMalformed is credentials that do not parse.
	ReasonMalformed Reason = "malformed"
	// ReasonMalformedSignature is a signature that does not parse, or
	// credential headers that do not fit it.
	ReasonMalformedSignature Reason = "malformed_signature"
	// ReasonSignatureExpired is a signature created too far from the
	// validator's clock, or past its own expiry.
	ReasonSignatureExpired Reason = "signature_expired"
	// ReasonDigestMismatch is a body that does not match the signed
	// Content-Digest.
	ReasonDigestMismatch Reason = "digest_mismatch"
	// ReasonBadSignature is a signature that does not verify.
	ReasonBadSignature Reason = "bad_signature"
	// ReasonReplayed is a signed request accepted before.
	ReasonReplayed Reason = "replayed"
	// ReasonReplayCacheFull is a signed request refused because the
	// replay cache has no room left to remember it.
	ReasonReplayCacheFull Reason = "replay_cache_full"
	// ReasonReplayCacheUnavailable is a signed request refused because the
	// shared replay cache cannot be reached.
	ReasonReplayCacheUnavailable Reason = "replay_cache_unavailable"

	// The validator and its limits.

	// ReasonNotReady is a validator still catching up with the log.
	ReasonNotReady Reason = "not_ready"
	// ReasonStale is a validator that has lost the log for longer than its
	// staleness bound.
	ReasonStale Reason = "stale"
	// ReasonRateLimited is a key refused after too many failed validations.
	ReasonRateLimited Reason = "rate_limited"
	// ReasonRollback is a validator that refuses the log: it does not
	// extend the log the validator already read (rolled back, re-created,
	// another genesis).
	ReasonRollback Reason = "rollback"

	// ReasonAmbiguous is a request that names its credentials more than
	// once: a credential header twice, both header styles, or a secret
	// beside a signature (see ParseCredentials).
	ReasonAmbiguous Reason = "ambiguous_credentials"
	// ReasonKeyDisabled is a key that is disabled (paused) itself.
	ReasonKeyDisabled Reason = "key_disabled"
	// ReasonMissingScope is a valid key that lacks a scope the request
	// requires: the caller is told 403, not 401.
	ReasonMissingScope Reason = "missing_scope"

	// The key's own limits (429).

	// ReasonRateLimitExceeded is a valid key past its rate limit in the
	// current window, counted across every node.
	ReasonRateLimitExceeded Reason = "rate_limit_exceeded"
	// ReasonUsageExceeded is a valid key without credits enough left for
	// the request's cost.
	ReasonUsageExceeded Reason = "usage_exceeded"
	// ReasonLimitsUnavailable is a valid key with limits that could not be
	// counted: the shared counters are out of reach and the node is set to
	// deny then (--limits-unreachable deny).
	ReasonLimitsUnavailable Reason = "limits_unavailable"
)

// Reasons returns every validation outcome, ReasonOK first.
func Reasons() []Reason {
	return []Reason{ReasonOK,
		ReasonUnknownKey, ReasonWrongSecret, ReasonSignedOnly, ReasonNoPublicKey, ReasonRevoked, ReasonExpired,
		ReasonUserDisabled,
		ReasonMalformed, ReasonMalformedSignature, ReasonSignatureExpired, ReasonDigestMismatch, ReasonBadSignature,
		ReasonReplayed, ReasonReplayCacheFull, ReasonReplayCacheUnavailable,
		ReasonNotReady, ReasonStale, ReasonRateLimited, ReasonRollback,
		ReasonAmbiguous, ReasonKeyDisabled, ReasonMissingScope,
		ReasonRateLimitExceeded, ReasonUsageExceeded, ReasonLimitsUnavailable}
}

// Standing is what decides whether a key may be used, apart from the
// credential presented. Every read model that answers "may this key be
// used?" or "what is this key's status?" reduces what it holds to a
// Standing and asks its methods, so that no two of them can disagree.
type Standing struct {
	Exists        bool      // the key has been created
	Revoked       bool      // the key has been revoked
	ExpiresAt     time.Time // zero: never expires
	SignedOnly    bool      // the secret itself is refused
	CanSign       bool      // the key has a public key for signed requests
	OwnerDisabled bool      // the key's owner is disabled
	Disabled      bool      // the key itself is disabled
	// PreviousUntil is when the grace period of the secret replaced by
	// the last regeneration ends (zero: there is none).
	PreviousUntil time.Time
}

// Decide is the rule that says whether a key is in force at now, once its
// credential is known to be right: ReasonUnknownKey for a key that does
// not exist, then ReasonRevoked, ReasonExpired (at or after its expiry),
// ReasonKeyDisabled, ReasonUserDisabled, in that order, or ReasonOK.
func (s Standing) Decide(now time.Time) Reason {
	switch {
	case !s.Exists:
		return ReasonUnknownKey
	case s.Revoked:
		return ReasonRevoked
	case !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt):
		return ReasonExpired
	case s.Disabled:
		return ReasonKeyDisabled
	case s.OwnerDisabled:
		return ReasonUserDisabled
	}
	return ReasonOK
}

// DecideSecret decides a validation by secret at now; match says whether
// the secret hashed to the key's current hash (the caller compares in
// constant time). It returns ReasonUnknownKey, ReasonWrongSecret,
// ReasonSignedOnly, in that order, or what Decide says.
func (s Standing) DecideSecret(match bool, now time.Time) Reason {
	return s.DecideSecrets(match, false, now)
}

// PreviousValid reports whether the previous secret is in its grace
// period at now: strictly before PreviousUntil.
func (s Standing) PreviousValid(now time.Time) bool {
	return !s.PreviousUntil.IsZero() && now.Before(s.PreviousUntil)
}

// DecideSecrets decides a validation by secret at now; current and
// previous say whether the secret hashed to the key's current hash and to
// its previous one (the caller compares both in constant time). The
// previous secret counts only during its grace period (PreviousValid). It
// returns ReasonUnknownKey, ReasonWrongSecret, ReasonSignedOnly, in that
// order, or what Decide says.
func (s Standing) DecideSecrets(current, previous bool, now time.Time) Reason {
	match := current || (previous && s.PreviousValid(now))
	switch {
	case !s.Exists:
		return ReasonUnknownKey
	case !match:
		return ReasonWrongSecret
	case s.SignedOnly:
		return ReasonSignedOnly
	}
	return s.Decide(now)
}

// DecideSigner decides whether a key may sign requests at now, before its
// signature is checked: ReasonUnknownKey, ReasonNoPublicKey, in that
// order, or what Decide says.
func (s Standing) DecideSigner(now time.Time) Reason {
	switch {
	case !s.Exists:
		return ReasonUnknownKey
	case !s.CanSign:
		return ReasonNoPublicKey
	}
	return s.Decide(now)
}

// Status is the key's status at now, as listings show it: Decide's answer
// for the key itself (revoked, expired, disabled or active). A disabled owner does not change it: the key stays
// active, refused with ReasonUserDisabled while its owner is disabled and
// back in force once the owner is enabled. A key that does not exist is
// reported active: check Exists first.
func (s Standing) Status(now time.Time) KeyStatus {
	s.Exists, s.OwnerDisabled = true, false
	switch s.Decide(now) {
	case ReasonRevoked:
		return StatusRevoked
	case ReasonExpired:
		return StatusExpired
	case ReasonKeyDisabled:
		return StatusDisabled
	}
	return StatusActive
}
