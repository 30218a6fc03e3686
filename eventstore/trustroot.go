package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/keyledger/keyledger/domain"
)

// TrustRootPrefix starts the text form of a trust-root fingerprint.
const TrustRootPrefix = "sha256:"

// ErrTrustRootMismatch is wrapped by New's error when the log's genesis is
// not the one WithTrustRoot pins: the log was rebuilt or forged.
var ErrTrustRootMismatch = errors.New("the log's genesis is not the pinned trust root")

// TrustRootOf returns the fingerprint of a genesis message: "sha256:" and
// the lowercase hex SHA-256 of exactly the bytes its signature covers
// (the signature's domain label, the subject and the stored data). It
// names one genesis, its keys, time and id included: a log rebuilt or
// forged around another genesis has another fingerprint, whoever signed it.
func TrustRootOf(subject string, data []byte) string {
	sum := sha256.Sum256(signedBytes(subject, data))
	return TrustRootPrefix + hex.EncodeToString(sum[:])
}

// ParseTrustRoot parses a fingerprint as TrustRootOf writes it (the
// "sha256:" prefix may be left out) and returns it in that form.
func ParseTrustRoot(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, TrustRootPrefix)
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("trust root %q: want sha256: and 64 hex digits, as keyledger audit trust-root prints", s)
	}
	return TrustRootPrefix + s, nil
}

// WithTrustRoot pins the log's genesis by its fingerprint (see TrustRootOf
// and ParseTrustRoot): New refuses a log whose genesis differs with an
// error wrapping ErrTrustRootMismatch. Unlike WithTrustedKeys it also
// refuses a log its own ledger key re-signed from scratch, e.g. a rebuilt
// stream with the ledger's genesis replaced.
func WithTrustRoot(fingerprint string) Option {
	return func(s *Store) error {
		fp, err := ParseTrustRoot(fingerprint)
		if err != nil {
			return err
		}
		s.trust.wantRoot = fp
		return nil
	}
}

// TrustRoot returns the fingerprint of the log's genesis and its stream
// sequence, as far as the store has read the log ("" and 0: no genesis, a
// log from before trust events read with pinned keys).
func (s *Store) TrustRoot() (string, uint64) {
	v := &s.trust
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.root, v.fold.GenesisSeq()
}

// checkTrustRoot refuses a log whose genesis is not the pinned one. Called
// with the trust view's mu held.
func (v *trustView) checkTrustRoot(stream string) error {
	if v.wantRoot == "" || v.root == v.wantRoot {
		return nil
	}
	got := v.root
	if got == "" {
		got = "none"
	}
	return domain.Wrap(domain.Invalid, ErrTrustRootMismatch, fmt.Sprintf(
		"stream %s: the log's genesis is %s, not the pinned trust root %s: the stream was rebuilt or forged", stream, got, v.wantRoot))
}

// CheckRoot hashes the log's messages 1..size into an RFC 6962 Merkle tree
// and checks that its root is root: the log still holds, unchanged, what a
// checkpoint verified earlier committed to. Errors: Invalid when it does
// not (the log was cut, rewritten or rebuilt), Unavailable.
func (s *Store) CheckRoot(ctx context.Context, size uint64, root domain.Hash) error {
	if size == 0 {
		return nil
	}
	err := s.matchCheckpoint(ctx, domain.LogCheckpoint{Size: size, Root: root})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return domain.Wrap(domain.Unavailable, err, "event log unavailable")
	}
	return domain.Wrap(domain.Invalid, err, fmt.Sprintf("the log does not extend the checkpoint at size %d: %v", size, err))
}
