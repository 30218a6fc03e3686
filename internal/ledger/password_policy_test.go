package ledger_test

import (
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
)

// onlyList is a list of common passwords for one test.
type onlyList map[string]bool

func (l onlyList) Contains(folded string) bool { return l[folded] }

// TestService_PasswordPolicy: self-registration and an admin's CreateUser
// both refuse what the policy refuses, appending nothing; by default the
// embedded list is used, and a configured list replaces it.
func TestService_PasswordPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct{ email, password string }{
		{"spaces@example.com", "               "},
		{"same@example.com", "aaaaaaaaaaaaaaa"},
		{"self@example.com", "self@example.com"},
		{"listed@example.com", "qwertyuiopasdfghjkl"}, // on the embedded list
		{"repeat@example.com", "Password Password"},
	} {
		head := e.head(t)
		_, err := e.svc.RegisterUser(testContext(t), ledger.RegisterUser{Email: tc.email, Password: tc.password})
		wantKind(t, err, domain.Invalid)
		_, err = e.svc.CreateUser(testContext(t), ledger.CreateUser{Actor: "admin:root", Email: tc.email, Password: tc.password})
		wantKind(t, err, domain.Invalid)
		if got := e.head(t); got != head {
			t.Errorf("%s: got head %d, want %d (nothing appended)", tc.email, got, head)
		}
	}

	t.Run("ConfiguredList", func(t *testing.T) {
		nc := natstest.Connect(t, natstest.RunServer(t))
		l := ledgertest.NewWith(t, nc, func(c *ledger.Config) {
			c.CommonPasswords = onlyList{domain.FoldPassword(password): true}
		}, eventstore.WithMemoryStorage())
		_, err := l.Service.RegisterUser(testContext(t), ledger.RegisterUser{Email: "erin@example.com", Password: password})
		wantKind(t, err, domain.Invalid)
		if _, err := l.Service.RegisterUser(testContext(t), ledger.RegisterUser{Email: "erin@example.com", Password: "qwertyuiopasdfghjkl"}); err != nil {
			t.Fatalf("a password only the embedded list has: got %v, want it accepted by the configured list", err)
		}
	})
}
