// Package auth holds what keyledger needs to know who a user is: argon2id
// password hashes, Ed25519-signed session tokens (JWT) with their JWK Set,
// and a throttle for failed logins.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are argon2id cost parameters.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2 is OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane
// (~30 ms here).
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	hashLen = 32
	// Upper bounds on cost parameters, for configured ones and for those
	// read back from stored hashes alike.
	maxMemory = 1 << 22 // KiB: 4 GiB
	maxTime   = 64
)

// Passwords hashes and verifies passwords with argon2id, as PHC strings.
// It is safe for concurrent use.
type Passwords struct {
	params Argon2Params
	dummy  string // a hash to verify against when the user is unknown
}

// NewPasswords returns a Passwords using params (zero: DefaultArgon2).
func NewPasswords(params Argon2Params) (*Passwords, error) {
	if params == (Argon2Params{}) {
		params = DefaultArgon2
	}
	if params.Memory < 8 || params.Time < 1 || params.Threads < 1 {
		return nil, fmt.Errorf("argon2 params %+v: too small", params)
	}
	if params.Memory > maxMemory || params.Time > maxTime {
		return nil, fmt.Errorf("argon2 params %+v: too large", params)
	}
	p := &Passwords{params: params}
	dummy, err := p.Hash("keyledger dummy password for unknown users")
	if err != nil {
		return nil, err
	}
	p.dummy = dummy
	return p, nil
}

// Hash returns the PHC string of password with a fresh random salt:
// $argon2id$v=19$m=...,t=...,p=...$salt$hash (unpadded base64).
func (p *Passwords) Hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(password), salt, p.params.Time, p.params.Memory, p.params.Threads, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.params.Memory, p.params.Time, p.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// Verify reports whether password matches the PHC string phc. An empty phc
// (unknown user) is checked against a dummy hash so that it takes the same
// time, and never matches. The comparison takes constant time.
func (p *Passwords) Verify(phc, password string) (bool, error) {
	known := phc != ""
	if !known {
		phc = p.dummy
	}
	params, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, params.Time, params.Memory, params.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && known, nil
}

func parsePHC(phc string) (Argon2Params, []byte, []byte, error) {
	parts := strings.Split(phc, "$")
	bad := errors.New("malformed argon2id hash")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Argon2Params{}, nil, nil, bad
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return Argon2Params{}, nil, nil, bad
	}
	var params Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &params.Memory, &params.Time, &params.Threads); err != nil ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", params.Memory, params.Time, params.Threads) {
		return Argon2Params{}, nil, nil, bad
	}
	if params.Memory > maxMemory || params.Time > maxTime || params.Time < 1 || params.Threads < 1 {
		return Argon2Params{}, nil, nil, bad
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	sum, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(sum) < 16 {
		return Argon2Params{}, nil, nil, bad
	}
	return params, salt, sum, nil
}
