package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/keyledger/keyledger/domain"
)

// cheapArgon2 keeps tests fast; only TestDefaultArgon2 pays the real cost.
var cheapArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1}

const dummyPassword = "keyledger dummy password for unknown users"

func newTestPasswords(t *testing.T) *Passwords {
	t.Helper()
	p, err := NewPasswords(cheapArgon2)
	if err != nil {
		t.Fatalf("NewPasswords(%+v): %v", cheapArgon2, err)
	}
	return p
}

func mustHash(t *testing.T, p *Passwords, password string) string {
	t.Helper()
	phc, err := p.Hash(password)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return phc
}

// phcParts splits a PHC string the way a reader of the format would,
// independently of parsePHC.
func phcParts(t *testing.T, phc string) (algo, version, params string, salt, sum []byte) {
	t.Helper()
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		t.Fatalf("PHC %q: got %d $-separated parts, want 6 with an empty first", phc, len(parts))
	}
	var err error
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		t.Fatalf("PHC salt %q: %v", parts[4], err)
	}
	if sum, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil {
		t.Fatalf("PHC hash %q: %v", parts[5], err)
	}
	return parts[1], parts[2], parts[3], salt, sum
}

func TestPasswords_Hash(t *testing.T) {
	t.Parallel()
	p := newTestPasswords(t)

	t.Run("PHCFormat", func(t *testing.T) {
		phc := mustHash(t, p, "correct horse battery staple")
		algo, version, params, salt, sum := phcParts(t, phc)
		if algo != "argon2id" {
			t.Errorf("algorithm: got %v, want %v", algo, "argon2id")
		}
		if version != "v=19" {
			t.Errorf("version: got %v, want %v", version, "v=19")
		}
		if params != "m=64,t=1,p=1" {
			t.Errorf("params: got %v, want %v", params, "m=64,t=1,p=1")
		}
		if len(salt) != 16 {
			t.Errorf("salt length: got %v, want %v", len(salt), 16)
		}
		if len(sum) != 32 {
			t.Errorf("hash length: got %v, want %v", len(sum), 32)
		}
		// The hash is plain argon2id of the password and the salt.
		want := argon2.IDKey([]byte("correct horse battery staple"), salt, 1, 64, 1, 32)
		if !bytes.Equal(sum, want) {
			t.Errorf("hash: got %x, want %x", sum, want)
		}
	})

	t.Run("FreshSalt", func(t *testing.T) {
		a := mustHash(t, p, "same password")
		b := mustHash(t, p, "same password")
		if a == b {
			t.Errorf("two hashes of one password: got %v twice, want different", a)
		}
		_, _, _, saltA, _ := phcParts(t, a)
		_, _, _, saltB, _ := phcParts(t, b)
		if bytes.Equal(saltA, saltB) {
			t.Errorf("salts: got %x twice, want different", saltA)
		}
	})
}

func TestPasswords_Verify(t *testing.T) {
	t.Parallel()
	p := newTestPasswords(t)
	phc := mustHash(t, p, "correct horse battery staple")

	tests := []struct {
		name     string
		phc      string
		password string
		want     bool
	}{
		{"OK", phc, "correct horse battery staple", true},
		{"WrongPassword", phc, "correct horse battery stapler", false},
		{"EmptyPassword", phc, "", false},
		{"UnknownUser", "", "correct horse battery staple", false},
		{"UnknownUserEmptyPassword", "", "", false},
		// The dummy hash is a real hash of this password; an unknown user
		// must still not match it.
		{"UnknownUserDummyPassword", "", dummyPassword, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Verify(tt.phc, tt.password)
			if err != nil {
				t.Fatalf("Verify: got error %v, want nil", err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("UnknownUserDoesDummyWork", func(t *testing.T) {
		// Same work as a known user: the dummy is a well-formed hash made
		// with this Passwords' own params, and it matches its password when
		// presented as a known hash, so the "" path really runs argon2.
		params, salt, sum, err := parsePHC(p.dummy)
		if err != nil {
			t.Fatalf("parsePHC(dummy): %v", err)
		}
		if params != p.params {
			t.Errorf("dummy params: got %+v, want %+v", params, p.params)
		}
		if len(salt) != saltLen || len(sum) != hashLen {
			t.Errorf("dummy salt, hash lengths: got %v, %v, want %v, %v", len(salt), len(sum), saltLen, hashLen)
		}
		ok, err := p.Verify(p.dummy, dummyPassword)
		if err != nil || !ok {
			t.Errorf("Verify(dummy, dummy password): got %v, %v, want true, nil", ok, err)
		}
	})

	t.Run("NotTruncated", func(t *testing.T) {
		long := strings.Repeat("0123456789", 30)
		phc := mustHash(t, p, long)
		for _, n := range []int{256, 299} {
			ok, err := p.Verify(phc, long[:n])
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ok {
				t.Errorf("Verify(hash of %d chars, its %d-char prefix): got %v, want %v", len(long), n, ok, false)
			}
		}
		ok, err := p.Verify(phc, long)
		if err != nil || !ok {
			t.Errorf("Verify(hash of %d chars, same): got %v, %v, want true, nil", len(long), ok, err)
		}
	})

	t.Run("ParamsFromHash", func(t *testing.T) {
		// A hash made with other params (say before a cost upgrade) still
		// verifies: Verify takes the params from the PHC string.
		other, err := NewPasswords(Argon2Params{Memory: 128, Time: 2, Threads: 2})
		if err != nil {
			t.Fatalf("NewPasswords: %v", err)
		}
		phc := mustHash(t, other, "pw")
		ok, err := p.Verify(phc, "pw")
		if err != nil || !ok {
			t.Errorf("got %v, %v, want true, nil", ok, err)
		}
	})
}

func TestPasswords_VerifyMalformed(t *testing.T) {
	t.Parallel()
	p := newTestPasswords(t)
	_, _, _, salt, sum := phcParts(t, mustHash(t, p, "pw"))
	s := base64.RawStdEncoding.EncodeToString(salt)
	h := base64.RawStdEncoding.EncodeToString(sum)
	short := base64.RawStdEncoding.EncodeToString(salt[:4])

	tests := []struct {
		name string
		phc  string
	}{
		{"Garbage", "not a hash"},
		{"NoLeadingDollar", "argon2id$v=19$m=64,t=1,p=1$" + s + "$" + h + "$"},
		{"TooFewParts", "$argon2id$v=19$m=64,t=1,p=1$" + s},
		{"TooManyParts", "$argon2id$v=19$m=64,t=1,p=1$" + s + "$" + h + "$x"},
		{"Argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + s + "$" + h},
		{"Argon2d", "$argon2d$v=19$m=64,t=1,p=1$" + s + "$" + h},
		{"Bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"WrongVersion", "$argon2id$v=16$m=64,t=1,p=1$" + s + "$" + h},
		{"NoVersion", "$argon2id$m=64,t=1,p=1$" + s + "$" + h + "$"},
		{"AbsurdMemory", "$argon2id$v=19$m=99999999,t=1,p=1$" + s + "$" + h},
		{"MemoryOverflow", "$argon2id$v=19$m=99999999999,t=1,p=1$" + s + "$" + h},
		{"NegativeMemory", "$argon2id$v=19$m=-1,t=1,p=1$" + s + "$" + h},
		{"AbsurdTime", "$argon2id$v=19$m=64,t=1000,p=1$" + s + "$" + h},
		{"ZeroTime", "$argon2id$v=19$m=64,t=0,p=1$" + s + "$" + h},
		{"ZeroThreads", "$argon2id$v=19$m=64,t=1,p=0$" + s + "$" + h},
		{"ThreadsOverflow", "$argon2id$v=19$m=64,t=1,p=300$" + s + "$" + h},
		{"MissingParams", "$argon2id$v=19$m=64$" + s + "$" + h},
		{"BadSaltBase64", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + h},
		{"BadHashBase64", "$argon2id$v=19$m=64,t=1,p=1$" + s + "$!!!!"},
		{"PaddedSalt", "$argon2id$v=19$m=64,t=1,p=1$" + base64.StdEncoding.EncodeToString(salt) + "$" + h},
		{"ShortSalt", "$argon2id$v=19$m=64,t=1,p=1$" + short + "$" + h},
		{"EmptySalt", "$argon2id$v=19$m=64,t=1,p=1$$" + h},
		{"ShortHash", "$argon2id$v=19$m=64,t=1,p=1$" + s + "$" + base64.RawStdEncoding.EncodeToString(sum[:8])},
		// These two expose a bug: fmt.Sscanf stops at the last verb and
		// ignores the rest, so parsePHC accepts non-canonical strings.
		{"TrailingGarbageVersion", "$argon2id$v=19junk$m=64,t=1,p=1$" + s + "$" + h},
		{"TrailingGarbageParams", "$argon2id$v=19$m=64,t=1,p=1,x=y$" + s + "$" + h},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := p.Verify(tt.phc, "pw")
			if err == nil {
				t.Errorf("Verify(%q): got nil error, want one", tt.phc)
			}
			if ok {
				t.Errorf("Verify(%q): got %v, want %v", tt.phc, ok, false)
			}
		})
	}
}

func TestNewPasswords(t *testing.T) {
	t.Parallel()
	t.Run("TooSmall", func(t *testing.T) {
		for _, params := range []Argon2Params{
			{Memory: 7, Time: 1, Threads: 1},
			{Memory: 0, Time: 1, Threads: 1},
			{Memory: 64, Time: 0, Threads: 1},
			{Memory: 64, Time: 1, Threads: 0},
		} {
			p, err := NewPasswords(params)
			if err == nil || p != nil {
				t.Errorf("NewPasswords(%+v): got %v, %v, want nil, an error", params, p, err)
			}
		}
	})

	t.Run("Smallest", func(t *testing.T) {
		params := Argon2Params{Memory: 8, Time: 1, Threads: 1}
		p, err := NewPasswords(params)
		if err != nil {
			t.Fatalf("NewPasswords(%+v): %v", params, err)
		}
		ok, err := p.Verify(mustHash(t, p, "pw"), "pw")
		if err != nil || !ok {
			t.Errorf("got %v, %v, want true, nil", ok, err)
		}
	})

	// Exposes a bug: NewPasswords accepts params above the bounds parsePHC
	// enforces (t > 64, m > 1<<22), so every hash it makes, the dummy
	// included, then fails Verify as malformed.
	t.Run("AcceptedParamsVerify", func(t *testing.T) {
		params := Argon2Params{Memory: 64, Time: 65, Threads: 1}
		p, err := NewPasswords(params)
		if err != nil {
			return // rejecting such params up front is fine too
		}
		ok, err := p.Verify(mustHash(t, p, "pw"), "pw")
		if err != nil || !ok {
			t.Errorf("NewPasswords(%+v) accepted, Verify(Hash(pw), pw): got %v, %v, want true, nil", params, ok, err)
		}
		ok, err = p.Verify("", "pw")
		if err != nil || ok {
			t.Errorf("NewPasswords(%+v) accepted, Verify(\"\", pw): got %v, %v, want false, nil", params, ok, err)
		}
	})
}

// TestDefaultArgon2 is the one test that pays for the production params.
func TestDefaultArgon2(t *testing.T) {
	t.Parallel()
	want := Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1}
	if DefaultArgon2 != want {
		t.Errorf("DefaultArgon2: got %+v, want %+v", DefaultArgon2, want)
	}
	p, err := NewPasswords(Argon2Params{})
	if err != nil {
		t.Fatalf("NewPasswords(zero): %v", err)
	}
	if p.params != DefaultArgon2 {
		t.Errorf("zero params: got %+v, want %+v", p.params, DefaultArgon2)
	}
	phc := mustHash(t, p, "pw")
	if _, _, params, _, _ := phcParts(t, phc); params != "m=19456,t=2,p=1" {
		t.Errorf("params: got %v, want %v", params, "m=19456,t=2,p=1")
	}
	ok, err := p.Verify(phc, "pw")
	if err != nil || !ok {
		t.Errorf("Verify: got %v, %v, want true, nil", ok, err)
	}
}

// FuzzParsePHC checks that parsePHC never panics and that whatever it
// accepts is within the bounds that keep Verify's cost in check.
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=64,t=1,p=300$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, phc string) {
		params, salt, sum, err := parsePHC(phc)
		if err != nil {
			return
		}
		if params.Memory > 1<<22 || params.Time < 1 || params.Time > 64 || params.Threads < 1 {
			t.Errorf("parsePHC(%q): got params %+v, want within bounds", phc, params)
		}
		if len(salt) < 8 || len(sum) < 16 {
			t.Errorf("parsePHC(%q): got salt %d, hash %d bytes, want >= 8, >= 16", phc, len(salt), len(sum))
		}
	})
}

// holdingPasswords returns a Passwords with at most max hashes at once and
// the given wait, whose hashes block until release is closed (once the
// dummy hash made at construction is done).
func holdingPasswords(t *testing.T, max int, wait time.Duration, release chan struct{}) *Passwords {
	t.Helper()
	p, err := NewPasswords(cheapArgon2, WithMaxHashing(max, wait))
	if err != nil {
		t.Fatal(err)
	}
	kdf := p.kdf
	p.kdf = func(password, salt []byte, tm, memory uint32, threads uint8, keyLen uint32) []byte {
		<-release
		return kdf(password, salt, tm, memory, threads, keyLen)
	}
	return p
}

func TestPasswords_MaxHashing(t *testing.T) {
	t.Parallel()
	t.Run("BusyAfterTheWait", func(t *testing.T) {
		release := make(chan struct{})
		p := holdingPasswords(t, 2, 10*time.Millisecond, release)
		phc := mustHashWith(t, cheapArgon2, "correct horse battery staple")
		var wg sync.WaitGroup
		results := make(chan error, 2)
		for range 2 {
			wg.Go(func() {
				_, err := p.Verify(phc, "correct horse battery staple")
				results <- err
			})
		}
		for p.InFlight() < 2 {
			runtime.Gosched()
		}
		// Every slot is taken: more callers wait 10 ms, then give up.
		var busy sync.WaitGroup
		for range 20 {
			busy.Go(func() {
				if _, err := p.Verify(phc, "x"); !errors.Is(err, ErrBusy) {
					t.Errorf("Verify with every slot taken: got %v, want ErrBusy", err)
				}
			})
		}
		if _, err := p.Hash("another password"); !errors.Is(err, ErrBusy) {
			t.Errorf("Hash with every slot taken: got %v, want ErrBusy", err)
		}
		busy.Wait()
		close(release)
		wg.Wait()
		close(results)
		for err := range results {
			if err != nil {
				t.Errorf("Verify holding a slot: got %v, want nil", err)
			}
		}
		if got := p.PeakInFlight(); got != 2 {
			t.Errorf("peak in flight: got %d, want 2", got)
		}
		if got := p.InFlight(); got != 0 {
			t.Errorf("in flight after all returned: got %d, want 0", got)
		}
		if _, err := p.Hash("another password"); err != nil {
			t.Errorf("Hash with free slots: got %v, want nil", err)
		}
	})

	t.Run("ErrBusyIsUnavailableWithRetryAfter", func(t *testing.T) {
		if got := domain.KindOf(ErrBusy); got != domain.Unavailable {
			t.Errorf("kind: got %v, want %v", got, domain.Unavailable)
		}
		if got := domain.RetryAfterOf(ErrBusy); got <= 0 {
			t.Errorf("retry after: got %v, want > 0", got)
		}
	})

	// Many concurrent callers with a wait long enough for all: every one
	// gets its answer, and never more than the cap hash at once.
	t.Run("NeverMoreThanTheCap", func(t *testing.T) {
		p, err := NewPasswords(Argon2Params{Memory: 1024, Time: 1, Threads: 1}, WithMaxHashing(3, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		phc := mustHash(t, p, "correct horse battery staple")
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				ok, err := p.Verify(phc, "correct horse battery staple")
				if err != nil || !ok {
					t.Errorf("Verify: got %v, %v, want true, nil", ok, err)
				}
			})
		}
		wg.Wait()
		if got := p.PeakInFlight(); got > 3 || got < 1 {
			t.Errorf("peak in flight: got %d, want 1 to 3", got)
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		p := newTestPasswords(t)
		if got, want := p.MaxHashing(), 2*runtime.GOMAXPROCS(0); got != want {
			t.Errorf("max hashing: got %d, want %d", got, want)
		}
	})

	t.Run("InvalidOptions", func(t *testing.T) {
		for _, opt := range []Option{WithMaxHashing(0, time.Second), WithMaxHashing(1, -time.Second)} {
			if _, err := NewPasswords(cheapArgon2, opt); err == nil {
				t.Error("got nil error, want one")
			}
		}
	})
}

func mustHashWith(t *testing.T, params Argon2Params, password string) string {
	t.Helper()
	p, err := NewPasswords(params)
	if err != nil {
		t.Fatal(err)
	}
	return mustHash(t, p, password)
}
