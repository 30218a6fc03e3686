package ledger_test

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/internal/ledger"
	"github.com/keyledger/keyledger/internal/ledgertest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/testclock"
)

// outbox records the messages a Service sends, in order.
type outbox struct {
	mu   sync.Mutex
	sent []sent
}

type sent struct {
	to    string
	kind  string // "verification" or "already_registered"
	token domain.Token
}

func (o *outbox) Verification(to string, token domain.Token) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sent = append(o.sent, sent{to: to, kind: "verification", token: token})
}

func (o *outbox) AlreadyRegistered(to string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sent = append(o.sent, sent{to: to, kind: "already_registered"})
}

func (o *outbox) all() []sent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]sent(nil), o.sent...)
}

// signUpEnv is a ledger in one registration mode on a real nats-server.
type signUpEnv struct {
	*ledgertest.Ledger
	clock *testclock.Clock
	mail  *outbox
}

func newSignUpEnv(t *testing.T, mode ledger.Registration) *signUpEnv {
	t.Helper()
	e := &signUpEnv{clock: testclock.New(t0), mail: &outbox{}}
	nc := natstest.Connect(t, natstest.RunServer(t))
	e.Ledger = ledgertest.NewWith(t, nc, func(c *ledger.Config) {
		c.Registration, c.Mailer, c.Now = mode, e.mail, e.clock.Now
	}, eventstore.WithMemoryStorage())
	return e
}

func (e *signUpEnv) head(t *testing.T) uint64 {
	t.Helper()
	h, err := e.Store.Head(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestService_SignUp_Verified(t *testing.T) {
	t.Parallel()
	e := newSignUpEnv(t, ledger.RegistrationVerified)
	ctx := testContext(t)
	got, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "Alice@Example.com", Password: password})
	if err != nil {
		t.Fatalf("SignUp: %v", err)
	}
	if !got.Pending || got.Email != "alice@example.com" || got.User.ID != "" {
		t.Fatalf("SignUp: got %+v, want pending for alice@example.com and no user", got)
	}
	u, ok, err := e.Service.UserByEmail(ctx, "alice@example.com")
	if err != nil || !ok {
		t.Fatal("the account is not in the read model")
	}
	// Attack: log in and create keys before proving the address.
	_, err = e.Service.Login(ctx, ledger.Login{Email: "alice@example.com", Password: password})
	wantKind(t, err, domain.Forbidden)
	if _, err := e.Service.SessionUser(currentSession(t, e.Service, u.ID)); domain.KindOf(err) != domain.Unauthorized {
		t.Errorf("SessionUser of an unverified account: got %v, want Unauthorized", err)
	}
	// The wrong password says nothing of the account's state.
	_, err = e.Service.Login(ctx, ledger.Login{Email: "alice@example.com", Password: password + "x"})
	wantKind(t, err, domain.Unauthorized)

	mails := e.mail.all()
	if len(mails) != 1 || mails[0].kind != "verification" || mails[0].to != "alice@example.com" || mails[0].token.Aggregate != u.ID {
		t.Fatalf("mail: got %+v, want one verification to alice@example.com for %s", mails, u.ID)
	}
	token := mails[0].token.Reveal()
	if err := e.Service.VerifyEmail(ctx, ledger.VerifyEmail{Token: token}); err != nil {
		t.Fatalf("VerifyEmail: %v", err)
	}
	if _, err := e.Service.Login(ctx, ledger.Login{Email: "alice@example.com", Password: password}); err != nil {
		t.Fatalf("Login after verification: %v", err)
	}
	if _, err := e.Service.SessionUser(currentSession(t, e.Service, u.ID)); err != nil {
		t.Errorf("SessionUser after verification: %v", err)
	}
	// Attack: replay the link.
	if err := e.Service.VerifyEmail(ctx, ledger.VerifyEmail{Token: token}); !errors.Is(err, domain.ErrVerificationInvalid) {
		t.Errorf("second use of the token: got %v, want ErrVerificationInvalid", err)
	}
	// A link for a verified account sends nothing.
	if err := e.Service.ResendVerification(ctx, ledger.ResendVerification{Email: "alice@example.com"}); err != nil {
		t.Errorf("ResendVerification of a verified address: got %v, want nil", err)
	}
	if n := len(e.mail.all()); n != 1 {
		t.Errorf("mail after resend for a verified address: got %d messages, want 1", n)
	}
}

// TestService_SignUp_Verified_TakenAddress: registering a taken address
// answers as for a free one, appends nothing, and mails the address's
// owner instead of telling the caller.
func TestService_SignUp_Verified_TakenAddress(t *testing.T) {
	t.Parallel()
	e := newSignUpEnv(t, ledger.RegistrationVerified)
	ctx := testContext(t)
	first, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "bob@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	head := e.head(t)
	again, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "BOB@example.com", Password: "another long passphrase"})
	if err != nil {
		t.Fatalf("SignUp of a taken address: got %v, want the same answer as for a free one", err)
	}
	if !reflect.DeepEqual(again, first) {
		t.Errorf("SignUp of a taken address: got %+v, want %+v as for a free one", again, first)
	}
	if h := e.head(t); h != head {
		t.Errorf("log head: got %d, want %d: nothing appended", h, head)
	}
	mails := e.mail.all()
	if len(mails) != 2 || mails[1].kind != "already_registered" || mails[1].to != "bob@example.com" {
		t.Fatalf("mail: got %+v, want a verification then an already-registered notice to bob", mails)
	}
}

func TestService_VerifyEmail_Expired(t *testing.T) {
	t.Parallel()
	e := newSignUpEnv(t, ledger.RegistrationVerified)
	ctx := testContext(t)
	if _, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "carol@example.com", Password: password}); err != nil {
		t.Fatal(err)
	}
	old := e.mail.all()[0].token
	e.clock.Advance(domain.VerificationTTL)
	if err := e.Service.VerifyEmail(ctx, ledger.VerifyEmail{Token: old.Reveal()}); !errors.Is(err, domain.ErrVerificationInvalid) {
		t.Fatalf("expired token: got %v, want ErrVerificationInvalid", err)
	}
	// A new link works, and replaces the old one.
	if err := e.Service.ResendVerification(ctx, ledger.ResendVerification{Email: "carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	mails := e.mail.all()
	if len(mails) != 2 || mails[1].kind != "verification" {
		t.Fatalf("mail: got %+v, want a second verification", mails)
	}
	// At once again: nothing sent (a mailbox cannot be flooded).
	if err := e.Service.ResendVerification(ctx, ledger.ResendVerification{Email: "carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.mail.all()); n != 2 {
		t.Errorf("resend within %v: got %d messages, want 2", domain.ResendInterval, n)
	}
	if err := e.Service.VerifyEmail(ctx, ledger.VerifyEmail{Token: mails[1].token.Reveal()}); err != nil {
		t.Fatalf("new token: %v", err)
	}
}

func TestService_ResendVerification_Unknown(t *testing.T) {
	t.Parallel()
	e := newSignUpEnv(t, ledger.RegistrationVerified)
	ctx := testContext(t)
	if err := e.Service.ResendVerification(ctx, ledger.ResendVerification{Email: "nobody@example.com"}); err != nil {
		t.Errorf("unknown address: got %v, want nil (the same answer as for any address)", err)
	}
	err := e.Service.ResendVerification(ctx, ledger.ResendVerification{Email: "not an address"})
	wantKind(t, err, domain.Invalid)
	if n := len(e.mail.all()); n != 0 {
		t.Errorf("got %d messages, want none", n)
	}
	for _, bad := range []string{"", "garbage", "usr_01JH6Z3Q8X4N6V2R9T5M7K3B1A.AAAA",
		"inv_01JH6Z3Q8X4N6V2R9T5M7K3B1A.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if err := e.Service.VerifyEmail(ctx, ledger.VerifyEmail{Token: bad}); !errors.Is(err, domain.ErrVerificationInvalid) {
			t.Errorf("VerifyEmail(%q): got %v, want ErrVerificationInvalid", bad, err)
		}
	}
}

func TestService_SignUp_Closed(t *testing.T) {
	t.Parallel()
	e := newSignUpEnv(t, ledger.RegistrationClosed)
	_, err := e.Service.SignUp(testContext(t), ledger.SignUp{Email: "dave@example.com", Password: password})
	if !errors.Is(err, ledger.ErrRegistrationClosed) {
		t.Fatalf("got %v, want ErrRegistrationClosed", err)
	}
	// Admins still create accounts.
	if _, err := e.Service.CreateUser(testContext(t), ledger.CreateUser{Actor: "admin:root", Email: "dave@example.com", Password: password}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
}

func TestService_SignUp_Invite(t *testing.T) {
	t.Parallel()
	e := newSignUpEnv(t, ledger.RegistrationInvite)
	ctx := testContext(t)
	if _, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "erin@example.com", Password: password}); !errors.Is(err, ledger.ErrInvitationRequired) {
		t.Fatalf("without invitation: got %v, want ErrInvitationRequired", err)
	}
	inv, err := e.Service.CreateInvitation(ctx, ledger.CreateInvitation{Actor: "admin:root"})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.ExpiresAt.Equal(t0.Add(domain.DefaultInvitationTTL)) {
		t.Errorf("ExpiresAt: got %v, want %v", inv.ExpiresAt, t0.Add(domain.DefaultInvitationTTL))
	}
	got, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "erin@example.com", Password: password, Invitation: inv.Token.Reveal()})
	if err != nil || got.Pending || got.User.Email != "erin@example.com" {
		t.Fatalf("with invitation: got %+v, %v, want the new user", got, err)
	}
	if _, err := e.Service.Login(ctx, ledger.Login{Email: "erin@example.com", Password: password}); err != nil {
		t.Errorf("Login: %v", err)
	}
	// Attack: use it again.
	_, err = e.Service.SignUp(ctx, ledger.SignUp{Email: "frank@example.com", Password: password, Invitation: inv.Token.Reveal()})
	if !errors.Is(err, domain.ErrInvitationInvalid) {
		t.Errorf("reuse: got %v, want ErrInvitationInvalid", err)
	}
	if _, ok, _ := e.Service.UserByEmail(testContext(t), "frank@example.com"); ok {
		t.Error("reuse registered frank")
	}
	// Attack: a forged token for a real invitation id.
	other, err := e.Service.CreateInvitation(ctx, ledger.CreateInvitation{Actor: "admin:root"})
	if err != nil {
		t.Fatal(err)
	}
	forged := other.ID + "." + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "frank@example.com", Password: password, Invitation: forged}); !errors.Is(err, domain.ErrInvitationInvalid) {
		t.Errorf("forged token: got %v, want ErrInvitationInvalid", err)
	}
	// An expired one.
	e.clock.Advance(domain.DefaultInvitationTTL)
	if _, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "frank@example.com", Password: password, Invitation: other.Token.Reveal()}); !errors.Is(err, domain.ErrInvitationInvalid) {
		t.Errorf("expired: got %v, want ErrInvitationInvalid", err)
	}
}

func TestService_SignUp_InviteBoundToEmail(t *testing.T) {
	t.Parallel()
	e := newSignUpEnv(t, ledger.RegistrationInvite)
	ctx := testContext(t)
	inv, err := e.Service.CreateInvitation(ctx, ledger.CreateInvitation{Actor: "admin:root", Email: "Grace@Example.com", ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "mallory@example.com", Password: password, Invitation: inv.Token.Reveal()}); !errors.Is(err, domain.ErrInvitationInvalid) {
		t.Fatalf("another address: got %v, want ErrInvitationInvalid", err)
	}
	if _, err := e.Service.SignUp(ctx, ledger.SignUp{Email: "grace@example.com", Password: password, Invitation: inv.Token.Reveal()}); err != nil {
		t.Fatalf("the invited address: %v", err)
	}
	_, err = e.Service.CreateInvitation(ctx, ledger.CreateInvitation{Actor: "admin:root", ExpiresIn: domain.MaxInvitationTTL + time.Hour})
	wantKind(t, err, domain.Invalid)
}

// TestService_SignUp_InviteRace: of many registrations racing with one
// invitation, exactly one gets in.
func TestService_SignUp_InviteRace(t *testing.T) {
	t.Parallel()
	e := newSignUpEnv(t, ledger.RegistrationInvite)
	ctx := testContext(t)
	inv, err := e.Service.CreateInvitation(ctx, ledger.CreateInvitation{Actor: "admin:root"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = e.Service.SignUp(ctx, ledger.SignUp{Email: fmt.Sprintf("racer%d@example.com", i), Password: password,
				Invitation: inv.Token.Reveal()})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, domain.ErrInvitationInvalid):
			t.Errorf("racer %d: got %v, want nil or ErrInvitationInvalid", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("got %d registrations with one invitation, want exactly 1 (errors: %v)", won, errs)
	}
	registered := 0
	for i := range n {
		if _, ok, _ := e.Service.UserByEmail(testContext(t), fmt.Sprintf("racer%d@example.com", i)); ok {
			registered++
		}
	}
	if registered != 1 {
		t.Errorf("got %d users in the read model, want 1", registered)
	}
}
