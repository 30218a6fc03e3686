package mail

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyledger/keyledger/domain"
)

// Subjects of the sign-up messages. Logs name a message by its subject.
const (
	SubjectVerification      = "Confirm your email address for keyledger"
	SubjectAlreadyRegistered = "Someone tried to register with your address at keyledger"
	SubjectTeamInvitation    = "You are invited to a team at keyledger"
)

// Notifier writes the sign-up messages and queues them on an Outbox. It
// implements the ledger's Mailer.
type Notifier struct {
	outbox *Outbox
	base   string // the public URL, without a trailing slash
}

// NewNotifier returns a Notifier whose links start with publicURL, the
// address users reach keyledger's API (or its sign-up pages) at.
func NewNotifier(o *Outbox, publicURL string) (*Notifier, error) {
	u, err := url.Parse(publicURL)
	if o == nil || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("mail: the public URL must be http(s)://host[:port][/path], nothing more")
	}
	return &Notifier{outbox: o, base: strings.TrimSuffix(u.String(), "/")}, nil
}

// VerificationLink is the link a verification message carries:
// <public URL>/verify?token=<token>. It is meant for a page that posts the
// token to POST /users/verify: no GET request verifies anything, so a mail
// scanner that opens links cannot use the token up.
func VerificationLink(publicURL string, t domain.Token) string {
	return strings.TrimSuffix(publicURL, "/") + "/verify?token=" + url.QueryEscape(t.Reveal())
}

// Verification queues the message that proves the address to.
func (n *Notifier) Verification(to string, t domain.Token) {
	n.outbox.Enqueue(Message{To: to, Subject: SubjectVerification, Body: "Hello,\n\n" +
		"someone, hopefully you, registered this address at keyledger (" + n.base + ").\n" +
		"To confirm it, open this link within 24 hours:\n\n" +
		"  " + VerificationLink(n.base, t) + "\n\n" +
		"or send the token to the API yourself:\n\n" +
		"  curl -X POST " + n.base + "/users/verify -d '{\"token\":\"" + t.Reveal() + "\"}'\n\n" +
		"The link works once. If you did not register, ignore this message: the account\n" +
		"stays unusable, and nobody can use it without this link.\n"})
}

// AlreadyRegistered queues the message that tells the owner of to that
// someone tried to register the address again.
func (n *Notifier) AlreadyRegistered(to string) {
	n.outbox.Enqueue(Message{To: to, Subject: SubjectAlreadyRegistered, Body: "Hello,\n\n" +
		"someone tried to register this address at keyledger (" + n.base + "),\n" +
		"but it already belongs to an account. Nothing was changed.\n\n" +
		"If it was you, log in with your password. If your account still waits for\n" +
		"its confirmation, ask for a new link:\n\n" +
		"  curl -X POST " + n.base + "/users/verify/resend -d '{\"email\":\"<this address>\"}'\n\n" +
		"If it was not you, you need not do anything.\n"})
}

// TeamInvitation queues the message that carries a team invitation's
// token to the address it was issued for. It implements the ledger's
// TeamMailer.
func (n *Notifier) TeamInvitation(to, team string, t domain.Token) {
	n.outbox.Enqueue(Message{To: to, Subject: SubjectTeamInvitation, Body: "Hello,\n\n" +
		"you are invited to join the team " + strconvQuote(team) + " at keyledger (" + n.base + ").\n" +
		"Log in (or register) and send the token within its expiry, once:\n\n" +
		"  curl -X POST " + n.base + "/teams/join -H 'Authorization: Bearer <your session>' -d '{\"token\":\"" + t.Reveal() + "\"}'\n\n" +
		"If you did not expect this, ignore this message.\n"})
}

// strconvQuote quotes a team's name so that nothing in it reads as part
// of the message around it.
func strconvQuote(s string) string { return strconv.Quote(s) }
