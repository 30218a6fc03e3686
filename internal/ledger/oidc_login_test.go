package ledger_test

import (
	"sync"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
)

const testIssuer = "https://id.example.com"

// TestService_OIDCLogin_Race: first logins of one identity at once (two
// tabs) end as one user, each login answered with it, never an error.
func TestService_OIDCLogin_Race(t *testing.T) {
	t.Parallel()
	l := ledgertest.New(t, natstest.Connect(t, natstest.RunServer(t)))
	ctx := ledgertest.Context(t)
	const n = 6
	users := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := l.Service.OIDCLogin(ctx, ledger.OIDCLogin{Issuer: testIssuer, Subject: "race", Email: "race@example.com"})
			users[i], errs[i] = out.User.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || users[i] == "" || users[i] != users[0] {
			t.Errorf("login %d: got %q, %v, want %q", i, users[i], errs[i], users[0])
		}
	}
	if got := len(l.Users.List()); got != 1 {
		t.Errorf("users: got %d, want 1", got)
	}
}

// TestService_LinkIdentity: a link needs the account's password, works
// once, and only for the address the account holds.
func TestService_LinkIdentity(t *testing.T) {
	t.Parallel()
	l := ledgertest.New(t, natstest.Connect(t, natstest.RunServer(t)))
	ctx := ledgertest.Context(t)
	u := l.Register(t)
	out, err := l.Service.OIDCLogin(ctx, ledger.OIDCLogin{Issuer: testIssuer, Subject: "s1", Email: u.Email})
	if err != nil || out.LinkTo != u.ID || out.User.ID != "" {
		t.Fatalf("got %+v, %v, want a link to %s and no login", out, err, u.ID)
	}
	link := ledger.LinkIdentity{Issuer: testIssuer, Subject: "s1", Email: u.Email, UserID: u.ID, Password: "not the password, surely"}
	if _, err := l.Service.LinkIdentity(ctx, link); domain.KindOf(err) != domain.Unauthorized {
		t.Fatalf("wrong password: got %v, want Unauthorized", err)
	}
	other := link
	other.Email, other.Password = "someone.else@example.com", ledgertest.Password
	if _, err := l.Service.LinkIdentity(ctx, other); domain.KindOf(err) != domain.Unauthorized {
		t.Fatalf("another address: got %v, want Unauthorized", err)
	}
	link.Password = ledgertest.Password
	got, err := l.Service.LinkIdentity(ctx, link)
	if err != nil || got.ID != u.ID {
		t.Fatalf("link: got %+v, %v, want %s", got, err, u.ID)
	}
	if _, err := l.Service.LinkIdentity(ctx, link); domain.KindOf(err) != domain.Conflict {
		t.Fatalf("second link: got %v, want Conflict", err)
	}
	out, err = l.Service.OIDCLogin(ctx, ledger.OIDCLogin{Issuer: testIssuer, Subject: "s1", Email: u.Email})
	if err != nil || out.User.ID != u.ID || out.Created {
		t.Fatalf("login after the link: got %+v, %v, want %s", out, err, u.ID)
	}
	// Another subject with the same address is another identity: it
	// must link on its own.
	out, err = l.Service.OIDCLogin(ctx, ledger.OIDCLogin{Issuer: testIssuer, Subject: "s2", Email: u.Email})
	if err != nil || out.LinkTo != u.ID {
		t.Fatalf("another subject: got %+v, %v, want a link to %s", out, err, u.ID)
	}
}
