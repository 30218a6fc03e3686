package eventstore

import (
	"crypto/sha256"
	"sync"
)

// ownSignaturesKept bounds how many of its own recent signatures a Store
// remembers. A subscription reading its store's appends sees each within
// moments; one that falls further behind than this verifies as usual.
const ownSignaturesKept = 8192

// ownSignatures remembers what this store signed, so that a subscription
// of the same store need not verify the signature of an event it wrote
// itself: a signature the store made over exactly these bytes verifies by
// construction. Entries are keyed by the SHA-256 of the signed bytes and
// the signature together, so a message differing in its subject, payload
// or signature (a forgery, or the ledger's bytes under another signature)
// finds nothing and is verified in full. Only the store writes entries;
// nothing read from NATS adds one. Safe for concurrent use.
type ownSignatures struct {
	mu   sync.Mutex
	set  map[[sha256.Size]byte]struct{}
	ring [][sha256.Size]byte // insertion order, for eviction
	next int
}

// ownDigest is the key of a signature over subject and data.
func ownDigest(subject string, data, sig []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(signaturePrefix))
	h.Write([]byte(subject))
	h.Write([]byte{'\n'})
	h.Write(data)
	h.Write(sig)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// add remembers a signature the store made, forgetting the oldest one
// when full.
func (o *ownSignatures) add(d [sha256.Size]byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.set == nil {
		o.set = make(map[[sha256.Size]byte]struct{}, ownSignaturesKept)
		o.ring = make([][sha256.Size]byte, ownSignaturesKept)
	}
	if _, ok := o.set[d]; ok {
		return
	}
	if old := o.ring[o.next]; len(o.set) == ownSignaturesKept {
		delete(o.set, old)
	}
	o.ring[o.next] = d
	o.next = (o.next + 1) % ownSignaturesKept
	o.set[d] = struct{}{}
}

// made reports whether the store signed exactly these bytes with sig.
func (o *ownSignatures) made(d [sha256.Size]byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.set[d]
	return ok
}
