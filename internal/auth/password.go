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
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/keyledger/keyledger/domain"
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

// DefaultHashWait is how long a hash or a check waits for a free slot by
// default before it gives up with ErrBusy.
const DefaultHashWait = 250 * time.Millisecond

// DefaultMaxHashing is the default cap on hashes computed at once: two per
// processor the Go scheduler uses, enough to keep every core busy while
// bounding memory to that many times the argon2id cost.
func DefaultMaxHashing() int { return 2 * runtime.GOMAXPROCS(0) }

// ErrBusy is returned by Hash and Verify when every hashing slot stayed
// taken for the whole wait: the server is overloaded as a whole, not this
// caller over a quota, so it is Unavailable (503) with a Retry-After
// rather than RateLimited.
var ErrBusy = &domain.Error{Kind: domain.Unavailable, Message: "too many password checks in progress; try again shortly",
	RetryAfter: time.Second}

// Passwords hashes and verifies passwords with argon2id, as PHC strings.
// Each hash holds the argon2 memory (19 MiB by default) while it runs, so
// at most a fixed number run at once (WithMaxHashing); a call beyond that
// waits a bounded time for a slot, then fails with ErrBusy. A flood of
// logins therefore costs bounded memory and sheds load instead of piling
// up. It is safe for concurrent use.
type Passwords struct {
	params Argon2Params
	dummy  string // a hash to verify against when the user is unknown

	slots    chan struct{} // one token per hash running
	wait     time.Duration
	inFlight atomic.Int64
	peak     atomic.Int64
	// kdf is argon2.IDKey; tests replace it to hold hashes in flight.
	kdf func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

// Option tunes a Passwords.
type Option func(*Passwords) error

// WithMaxHashing caps the hashes computed at once at n (default
// DefaultMaxHashing) and bounds how long a call waits for a free slot
// (default DefaultHashWait; 0: not at all).
func WithMaxHashing(n int, wait time.Duration) Option {
	return func(p *Passwords) error {
		if n < 1 || wait < 0 {
			return fmt.Errorf("max hashing %d, wait %v: want at least 1 and a wait of 0 or more", n, wait)
		}
		p.slots, p.wait = make(chan struct{}, n), wait
		return nil
	}
}

// NewPasswords returns a Passwords using params (zero: DefaultArgon2).
func NewPasswords(params Argon2Params, opts ...Option) (*Passwords, error) {
	if params == (Argon2Params{}) {
		params = DefaultArgon2
	}
	if params.Memory < 8 || params.Time < 1 || params.Threads < 1 {
		return nil, fmt.Errorf("argon2 params %+v: too small", params)
	}
	if params.Memory > maxMemory || params.Time > maxTime {
		return nil, fmt.Errorf("argon2 params %+v: too large", params)
	}
	p := &Passwords{params: params, slots: make(chan struct{}, DefaultMaxHashing()), wait: DefaultHashWait, kdf: argon2.IDKey}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, err
		}
	}
	dummy, err := p.Hash("keyledger dummy password for unknown users")
	if err != nil {
		return nil, err
	}
	p.dummy = dummy
	return p, nil
}

// acquire takes a hashing slot, waiting at most p.wait. Errors: ErrBusy.
func (p *Passwords) acquire() error {
	select {
	case p.slots <- struct{}{}:
	default:
		if p.wait <= 0 {
			return ErrBusy
		}
		t := time.NewTimer(p.wait)
		defer t.Stop()
		select {
		case p.slots <- struct{}{}:
		case <-t.C:
			return ErrBusy
		}
	}
	n := p.inFlight.Add(1)
	for {
		peak := p.peak.Load()
		if n <= peak || p.peak.CompareAndSwap(peak, n) {
			return nil
		}
	}
}

func (p *Passwords) release() {
	p.inFlight.Add(-1)
	<-p.slots
}

// InFlight returns the number of hashes being computed now.
func (p *Passwords) InFlight() int { return int(p.inFlight.Load()) }

// MaxHashing returns the cap on hashes computed at once.
func (p *Passwords) MaxHashing() int { return cap(p.slots) }

// PeakInFlight returns the most hashes ever computed at once: never more
// than MaxHashing.
func (p *Passwords) PeakInFlight() int { return int(p.peak.Load()) }

// Hash returns the PHC string of password with a fresh random salt:
// $argon2id$v=19$m=...,t=...,p=...$salt$hash (unpadded base64).
// Errors: ErrBusy.
func (p *Passwords) Hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	if err := p.acquire(); err != nil {
		return "", err
	}
	defer p.release()
	sum := p.kdf([]byte(password), salt, p.params.Time, p.params.Memory, p.params.Threads, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.params.Memory, p.params.Time, p.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

// Verify reports whether password matches the PHC string phc. An empty phc
// (unknown user) is checked against a dummy hash so that it takes the same
// time, and never matches. The comparison takes constant time.
// Errors: ErrBusy, or one for a malformed phc.
func (p *Passwords) Verify(phc, password string) (bool, error) {
	known := phc != ""
	if !known {
		phc = p.dummy
	}
	params, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	if err := p.acquire(); err != nil {
		return false, err
	}
	defer p.release()
	got := p.kdf([]byte(password), salt, params.Time, params.Memory, params.Threads, uint32(len(want)))
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
