// Package snapshot writes and reads signed snapshots of the validation
// lookup (KindLookup), which validation nodes start from, and of the
// lookup with serve's other read models (KindLedger), which serve starts
// from: each then tails the log from the sequence after it instead of
// replaying the whole log.
//
// A snapshot is untrusted input until verified: Decode only parses it,
// with every length checked against the input (no hostile length makes it
// allocate more than the input's size); Check then verifies it against the
// log itself: signed by a ledger key that the log's own trust events
// (genesis and signed key events) trust at the snapshot's sequence, of
// this stream (same name, same creation time, same genesis), no further
// than the log reaches, and bound to a signed checkpoint the log holds
// (the Merkle tree it carries gives that checkpoint's root). Only then is
// its lookup read. What a forged or stale snapshot can and cannot do is in
// the README's threat model: the tail after it, verified event by event,
// and the node's rollback detection still apply, so a stale snapshot
// cannot un-revoke a key.
package snapshot

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// Format versions. Version 1 carries the validation lookup; version 2
// carries the lookup and serve's other read models (Models). Encode
// writes a snapshot without models as version 1, so that nodes of
// earlier releases go on reading what they need; Decode reads both
// (testdata holds a frozen sample of each).
const (
	Version1 = 1
	Version2 = 2
	// Version is the newest format version.
	Version = Version2
)

// magic starts every snapshot; the format version follows it (2 bytes,
// big-endian).
const magic = "KLSNAP"

// signingContext is prepended to the SHA-256 of the bytes a snapshot's
// signature covers, so that no other signed thing of the ledger (an
// event, a request) can pass for a snapshot, nor a snapshot for one of
// them. Signing the digest rather than the bytes hashes a snapshot of a
// million keys (about 100 MB) once, with SHA-256, instead of copying it
// behind the context and hashing it with Ed25519's SHA-512.
const signingContext = "keyledger snapshot\n"

// Limits on the header's fields; the lookup is bounded by the input.
const (
	maxStreamName = 255
	maxTrustRoot  = 256
	maxSignerID   = 256
	maxTreeHashes = 64
	// MaxLeaves bounds the messages between the checkpoint a snapshot is
	// bound to and its position (eventstore.DefaultCheckpointWindow).
	MaxLeaves = eventstore.DefaultCheckpointWindow
)

// Checkpoint is the signed checkpoint of the log a snapshot is bound to:
// the newest one at or before its position.
type Checkpoint struct {
	Seq  uint64      // stream sequence of the checkpoint's event
	Size uint64      // how many messages it covers
	Root domain.Hash // their Merkle root
}

// Snapshot is a snapshot of the validation lookup at stream sequence Seq,
// with what a node needs to go on from there.
type Snapshot struct {
	Stream    string    // the log's stream
	Created   time.Time // when that stream was created
	TrustRoot string    // the fingerprint of the log's genesis
	Seq       uint64    // the lookup holds the log up to this sequence
	TakenAt   time.Time // when the ledger took it (informational)
	Keys      uint64    // how many keys the lookup holds (informational)
	// Checkpoint is the checkpoint the snapshot is bound to; Tree is the
	// log's Merkle tree at its size, and Leaves the leaf hashes of the
	// messages after it up to Seq: Tree extended with Leaves is the tree
	// at Seq, from which the node checks later checkpoints.
	Checkpoint Checkpoint
	Tree       eventstore.MerkleState
	Leaves     []domain.Hash
	// Lookup is the lookup's state (projections.Lookup.AppendSnapshot).
	Lookup []byte
	// Models is the state of serve's other read models
	// (projections.Models.AppendSnapshot); nil in a snapshot of the
	// lookup alone (format version 1).
	Models []byte
	// Signer is the id of the ledger key that signed it (eventstore.KeyID).
	Signer string

	signed    []byte // the bytes the signature covers, without the context
	signature []byte
}

// Errors of Decode and Check, matched with errors.Is.
var (
	// ErrMalformed: the bytes are not a snapshot.
	ErrMalformed = errors.New("malformed snapshot")
	// ErrUnknownVersion: a snapshot of a format this code does not read.
	ErrUnknownVersion = errors.New("snapshot of an unknown format version")
	// ErrNotThisLog: a snapshot of another stream, another creation of
	// the stream, or another genesis.
	ErrNotThisLog = errors.New("snapshot of another log")
	// ErrBeyondLog: a snapshot of a position the log does not reach.
	ErrBeyondLog = errors.New("snapshot beyond the end of the log")
	// ErrCheckpoint: the snapshot does not match the log's checkpoint it
	// claims to be bound to.
	ErrCheckpoint = errors.New("snapshot inconsistent with the log's checkpoint")
	// ErrSignature: not signed by a ledger key the log trusts at the
	// snapshot's position, or the signature does not verify.
	ErrSignature = errors.New("snapshot not signed by a ledger key trusted at its position")
)

// Encode returns the snapshot signed with key (its Signer is set from it).
func Encode(s Snapshot, key ed25519.PrivateKey) []byte {
	s.Signer = eventstore.KeyID(key.Public().(ed25519.PublicKey))
	b := make([]byte, 0, len(s.Lookup)+len(s.Models)+len(s.Leaves)*32+1024)
	version := uint16(Version1)
	if s.Models != nil {
		version = Version2
	}
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, version)
	b = appendString(b, s.Stream)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Created.UnixNano()))
	b = appendString(b, s.TrustRoot)
	b = binary.BigEndian.AppendUint64(b, s.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(s.TakenAt.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, s.Keys)
	b = binary.BigEndian.AppendUint64(b, s.Checkpoint.Seq)
	b = binary.BigEndian.AppendUint64(b, s.Checkpoint.Size)
	b = append(b, s.Checkpoint.Root[:]...)
	b = binary.BigEndian.AppendUint64(b, s.Tree.Size)
	b = binary.AppendUvarint(b, uint64(len(s.Tree.Hashes)))
	for _, h := range s.Tree.Hashes {
		b = append(b, h[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Leaves)))
	for _, h := range s.Leaves {
		b = append(b, h[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Lookup)))
	b = append(b, s.Lookup...)
	if s.Models != nil {
		b = binary.AppendUvarint(b, uint64(len(s.Models)))
		b = append(b, s.Models...)
	}
	b = appendString(b, s.Signer)
	sig := ed25519.Sign(key, signedBytes(b))
	return append(b, sig...)
}

// signedBytes is what a snapshot's signature signs: the context and the
// SHA-256 of its bytes before the signature.
func signedBytes(b []byte) []byte {
	sum := sha256.Sum256(b)
	return append([]byte(signingContext), sum[:]...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader reads a snapshot's bytes; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("truncated")
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// count reads a count of records of size bytes each, at most max and no
// more than the input holds.
func (r *reader) count(size, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail("bad length")
		return 0
	}
	r.b = r.b[k:]
	if n > max || n > uint64(len(r.b))/size {
		r.fail("length %d out of bounds", n)
		return 0
	}
	return n
}

func (r *reader) string(max uint64) string { return string(r.bytes(r.count(1, max))) }

func (r *reader) hash() (h domain.Hash) {
	copy(h[:], r.bytes(32))
	return h
}

func unixNano(u uint64) time.Time { return time.Unix(0, int64(u)).UTC() }

// Decode parses a snapshot without verifying anything but its form: the
// result is untrusted until Check passes. Errors: wrapping ErrMalformed or
// ErrUnknownVersion.
func Decode(b []byte) (Snapshot, error) {
	if len(b) < len(magic)+2 || string(b[:len(magic)]) != magic {
		return Snapshot{}, fmt.Errorf("%w: not a keyledger snapshot", ErrMalformed)
	}
	version := binary.BigEndian.Uint16(b[len(magic):])
	if version != Version1 && version != Version2 {
		return Snapshot{}, fmt.Errorf("%w: version %d, this code reads %d and %d", ErrUnknownVersion, version, Version1, Version2)
	}
	if len(b) < len(magic)+2+ed25519.SignatureSize {
		return Snapshot{}, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	body, sig := b[:len(b)-ed25519.SignatureSize], b[len(b)-ed25519.SignatureSize:]
	r := &reader{b: body[len(magic)+2:]}
	var s Snapshot
	s.Stream = r.string(maxStreamName)
	s.Created = unixNano(r.u64())
	s.TrustRoot = r.string(maxTrustRoot)
	s.Seq = r.u64()
	s.TakenAt = unixNano(r.u64())
	s.Keys = r.u64()
	s.Checkpoint = Checkpoint{Seq: r.u64(), Size: r.u64(), Root: r.hash()}
	s.Tree.Size = r.u64()
	if n := r.count(32, maxTreeHashes); n > 0 {
		s.Tree.Hashes = make([]domain.Hash, n)
		for i := range s.Tree.Hashes {
			s.Tree.Hashes[i] = r.hash()
		}
	}
	if n := r.count(32, MaxLeaves); n > 0 {
		s.Leaves = make([]domain.Hash, n)
		for i := range s.Leaves {
			s.Leaves[i] = r.hash()
		}
	}
	s.Lookup = r.bytes(r.count(1, uint64(len(r.b))))
	if version == Version2 {
		s.Models = r.bytes(r.count(1, uint64(len(r.b))))
		if s.Models == nil && r.err == nil {
			s.Models = []byte{}
		}
	}
	s.Signer = r.string(maxSignerID)
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes before the signature", len(r.b))
	}
	if r.err != nil {
		return Snapshot{}, r.err
	}
	if s.Tree.Size != s.Checkpoint.Size || s.Checkpoint.Size+uint64(len(s.Leaves)) != s.Seq ||
		s.Checkpoint.Seq <= s.Checkpoint.Size || s.Checkpoint.Seq > s.Seq {
		return Snapshot{}, fmt.Errorf("%w: checkpoint at %d of size %d, tree of size %d and %d leaves do not make position %d",
			ErrMalformed, s.Checkpoint.Seq, s.Checkpoint.Size, s.Tree.Size, len(s.Leaves), s.Seq)
	}
	if _, err := s.Tree.Root(); err != nil {
		return Snapshot{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	s.signed, s.signature = body, sig
	return s, nil
}
