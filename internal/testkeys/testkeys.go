// Package testkeys holds fixed Ed25519 keys for tests and nothing else.
//
// Their seeds are derived from names written in this file, so anyone can
// recompute them: a key from here proves nothing and must never sign a log
// that anything outside a test trusts. Tests use them because nothing in
// keyledger creates and trusts a key on its own, and fixed keys make a
// failing test repeat exactly.
package testkeys

import (
	"crypto/ed25519"
	"crypto/sha256"
)

// seedLabel separates these seeds from any other hash of the same names.
const seedLabel = "keyledger test key, never trust it: "

// Key returns the test key called name: the same key for the same name,
// every run. Different names give unrelated keys.
func Key(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(seedLabel + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Ledger returns the test ledger's signing key: the key test stores sign
// with unless a test needs several ledgers.
func Ledger() ed25519.PrivateKey { return Key("ledger") }

// LedgerPublic returns the public half of Ledger.
func LedgerPublic() ed25519.PublicKey { return Ledger().Public().(ed25519.PublicKey) }
