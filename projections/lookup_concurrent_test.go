package projections_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// TestLookup_ConcurrentApplyAndCheck applies renames, scope changes,
// secret regenerations and revocations while other goroutines validate
// the same keys (run it with -race). A validation reads the key as one
// event left it, never half of one: an accepted key has its owner, a name
// it was given and scopes whose list matches the set; and once a reader
// saw a key revoked, it never sees it accepted again.
func TestLookup_ConcurrentApplyAndCheck(t *testing.T) {
	t.Parallel()
	const keys, rounds, readers = 8, 200, 4
	user := newUserID()
	first, second := lookupSecret(t, 1), lookupSecret(t, 2)
	l := projections.NewLookup(0)
	apiKeys := make([]string, keys)
	ids := make([][16]byte, keys)
	for i := range apiKeys {
		apiKeys[i] = newAPIKey()
		ids[i], _ = domain.ParseAPIKeyID(apiKeys[i])
		e := keyCreated(apiKeys[i], user, 1)
		d := e.Data.(domain.KeyCreated)
		d.SecretHash, d.Name = first.Hash(), "name 0"
		e.Data = d
		if err := l.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(time.Hour)
	var done atomic.Bool
	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			revoked := make([]bool, keys)
			for n := 0; !done.Load() || n < 1000; n++ {
				k := (n + r) % keys
				secret := first
				if n%2 == 1 {
					secret = second
				}
				res := l.CheckParsed(ids[k], secret.Hash(), now)
				if res.Reason == domain.ReasonRevoked {
					revoked[k] = true
				}
				if !res.OK {
					continue
				}
				switch {
				case revoked[k]:
					t.Errorf("key %d accepted after it was seen revoked", k)
				case res.UserID != user:
					t.Errorf("key %d: owner %q, want %q", k, res.UserID, user)
				case !strings.HasPrefix(res.Name, "name "):
					t.Errorf("key %d: name %q was never given", k, res.Name)
				case strings.Join(res.ScopeList, " ") != string(res.Scopes):
					t.Errorf("key %d: scope list %q does not match the set %q", k, res.ScopeList, res.Scopes)
				default:
					continue
				}
				return
			}
		})
	}
	version := uint64(1)
	for round := range rounds {
		version++
		for k, apiKey := range apiKeys {
			var d domain.EventData
			switch round % 3 {
			case 0:
				d = domain.KeyRenamed{Name: fmt.Sprintf("name %d", round)}
			case 1:
				d = domain.KeyScopesChanged{Scopes: []string{fmt.Sprintf("s%d", round), "read"}}
			default:
				h := first.Hash()
				if round%2 == 0 {
					h = second.Hash()
				}
				d = domain.KeySecretRegenerated{SecretHash: h, PublicKey: domain.PublicKey{0x02}}
			}
			if round == rounds-1 && k%2 == 0 {
				d = domain.KeyRevoked{}
			}
			e := domain.Event{Type: d.EventType(), Schema: domain.SchemaFor(d), Aggregate: apiKey, Version: version,
				Time: t0, Actor: user, Data: d}
			if err := l.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Store(true)
	wg.Wait()
	// The last regeneration (round rounds-3) set the first secret; the
	// last round revoked the even keys.
	for k := range apiKeys {
		if res := l.CheckParsed(ids[k], first.Hash(), now); res.OK == (k%2 == 0) {
			t.Errorf("key %d, its secret, after the last round: got %+v", k, res)
		}
		if res := l.CheckParsed(ids[k], second.Hash(), now); res.OK {
			t.Errorf("key %d, its replaced secret, after the last round: got %+v", k, res)
		}
	}
}
