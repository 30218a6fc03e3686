// Package mail sends keyledger's sign-up messages (email verification
// links, "someone tried to register with your address") through an SMTP
// server.
//
// It uses net/smtp from the standard library: it speaks STARTTLS and AUTH
// PLAIN, which is all a plain-text notification needs, and adds no
// dependency to the ledger's binary. The message itself (a handful of
// headers and a short ASCII body) is built here.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one delivery attempt: connecting, the SMTP dialogue
// and the message.
const DefaultTimeout = 30 * time.Second

// Message is one plain-text message to one recipient.
type Message struct {
	To      string // a bare address (no display name)
	Subject string // ASCII, one line
	Body    string // ASCII text; lines end in \n
}

// SMTP delivers messages to one SMTP server. It is safe for concurrent
// use: every Send opens its own connection.
type SMTP struct {
	host, addr string
	implicit   bool // smtps://: TLS from the first byte
	// plainOK allows a session without TLS: only to a loopback server.
	plainOK  bool
	auth     *url.Userinfo
	from     string
	tls      *tls.Config
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout  time.Duration
	hostname string
}

// Option configures an SMTP.
type Option func(*SMTP) error

// WithTLSConfig sets the TLS configuration of STARTTLS and smtps:// (its
// ServerName defaults to the URL's host): tests pass the root CA of a
// server with a self-signed certificate.
func WithTLSConfig(c *tls.Config) Option {
	return func(s *SMTP) error {
		if c == nil {
			return errors.New("mail: nil TLS config")
		}
		s.tls = c.Clone()
		return nil
	}
}

// WithDialer replaces the dialer (tests reach a server under another name
// with it).
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(s *SMTP) error {
		if dial == nil {
			return errors.New("mail: nil dialer")
		}
		s.dial = dial
		return nil
	}
}

// WithTimeout bounds each delivery attempt (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(s *SMTP) error {
		if d <= 0 {
			return errors.New("mail: timeout must be positive")
		}
		s.timeout = d
		return nil
	}
}

// New returns an SMTP that delivers through the server rawURL names,
// with from as the sender:
//
//	smtp://[user:password@]host[:port]   port 587 by default; STARTTLS is
//	                                     required unless host is loopback
//	smtps://[user:password@]host[:port]  port 465 by default; TLS throughout
//
// Credentials are sent only over TLS, or to a loopback server.
func New(rawURL, from string, opts ...Option) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("mail: the SMTP URL does not parse") // the URL may hold a password: not quoted
	}
	s := &SMTP{timeout: DefaultTimeout, auth: u.User}
	var port string
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		port, s.implicit = "465", true
	default:
		return nil, fmt.Errorf("mail: SMTP URL scheme %q: want smtp or smtps", u.Scheme)
	}
	if u.Host == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("mail: the SMTP URL must be scheme://[user:password@]host[:port], nothing more")
	}
	s.host = u.Hostname()
	if p := u.Port(); p != "" {
		port = p
	}
	s.addr = net.JoinHostPort(s.host, port)
	s.plainOK = isLoopback(s.host)
	if s.from, err = address(from); err != nil {
		return nil, fmt.Errorf("mail: sender %w", err)
	}
	s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	var d net.Dialer
	s.dial = d.DialContext
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.tls.ServerName == "" {
		s.tls.ServerName = s.host
	}
	s.hostname = "localhost"
	if _, domain, ok := strings.Cut(s.from, "@"); ok {
		s.hostname = domain
	}
	return s, nil
}

// isLoopback reports whether host is a loopback name or address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// address checks that s is a bare email address, fit for a header and an
// SMTP command.
func address(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || strings.ContainsAny(s, "\r\n<> ") {
		return "", errors.New("is not a bare email address")
	}
	return s, nil
}

// ErrNoTLS is returned by Send when a server that must offer STARTTLS
// does not: the message is not sent in clear.
var ErrNoTLS = errors.New("mail: the SMTP server does not offer STARTTLS, and it is not on loopback: refusing to send in clear")

// Send delivers m. It fails, having sent nothing, when TLS is required and
// not offered (ErrNoTLS) or the recipient is not a bare address.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	to, err := address(m.To)
	if err != nil {
		return fmt.Errorf("mail: recipient %w", err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("mail: subject must be one line")
	}
	data, err := s.format(to, m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := s.dial(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("mail: connect to %s: %w", s.addr, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	// Abandon the dialogue when ctx ends before the deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if s.implicit {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("mail: TLS with %s: %w", s.addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("mail: greeting of %s: %w", s.addr, err)
	}
	defer c.Close()
	if err := c.Hello(s.hostname); err != nil {
		return replyError("EHLO", err)
	}
	if !s.implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tls); err != nil {
				return fmt.Errorf("mail: STARTTLS with %s: %w", s.addr, err)
			}
		} else if !s.plainOK {
			return ErrNoTLS
		}
	}
	if s.auth != nil {
		password, _ := s.auth.Password()
		// PlainAuth itself refuses to send the password without TLS to a
		// server other than localhost.
		if err := c.Auth(smtp.PlainAuth("", s.auth.Username(), password, s.host)); err != nil {
			return replyError("AUTH", err)
		}
	}
	if err := c.Mail(s.from); err != nil {
		return replyError("MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return replyError("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return replyError("DATA", err)
	}
	if _, err := w.Write(data); err != nil {
		return replyError("message", err)
	}
	if err := w.Close(); err != nil {
		return replyError("message", err)
	}
	c.Quit() // the server took the message: a failed QUIT changes nothing
	return nil
}

// format returns the message in RFC 5322 form, lines ending in CRLF.
func (s *SMTP) format(to string, m Message) ([]byte, error) {
	for _, r := range m.Subject + m.Body {
		if r > 0x7e || (r < 0x20 && r != '\n' && r != '\t') {
			return nil, errors.New("mail: subject and body must be printable ASCII")
		}
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\n",
		s.from, to, m.Subject, time.Now().UTC().Format(time.RFC1123Z), hex.EncodeToString(id), s.hostname)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\nAuto-Submitted: auto-generated\r\n\r\n")
	b.WriteString(strings.ReplaceAll(m.Body, "\n", "\r\n"))
	return []byte(b.String()), nil
}

// replyError reports a failed SMTP step with the server's reply code only:
// a reply's text may quote the recipient's address, which must not reach
// the logs.
func replyError(step string, err error) error {
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return fmt.Errorf("mail: %s: the server answered %d", step, reply.Code)
	}
	return fmt.Errorf("mail: %s: %w", step, err)
}
