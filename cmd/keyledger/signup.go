package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/keyledger/keyledger/internal/app"
)

// signUpFlags registers serve's flags of who may register, which set c.
func signUpFlags(fs *flag.FlagSet, c *app.SignUpConfig) {
	fs.StringVar(&c.Registration, "registration", "", "who may register with POST /users: open, verified (a link mailed to the address must be followed), invite (an admin's invitation) or closed (admins create users) (default open when --http-addr is loopback and no --trusted-proxy is set, else verified)")
	fs.StringVar(&c.SMTPURL, "smtp-url", "", "mail server for sign-up mail: smtp://[user:password@]host[:port] (STARTTLS required unless host is loopback) or smtps://... (better in KEYLEDGER_SMTP_URL than on the command line)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "", "sender address of sign-up mail")
	fs.StringVar(&c.SMTPCA, "smtp-ca", "", "PEM CA bundle that signs the mail server's certificate (default: the system's)")
	fs.StringVar(&c.PublicURL, "public-url", "", "where users reach the API: mailed links are <public-url>/verify?token=... (default http(s)://<http-addr> when that is not a wildcard address)")
}

func adminInvitationsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin invitations create")
	var af apiFlags
	af.register(fs)
	email := fs.String("email", "", "the one address the invitation admits (default: any)")
	expiresIn := fs.Duration("expires-in", 0, "how long the invitation works, at most 720h (default 168h)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	api, err := af.open()
	if err != nil {
		return err
	}
	body := map[string]string{}
	if *email != "" {
		// The salt keeps the digest of the body, which serve keeps in the
		// log with the signature, from being a hash of the address.
		var salt [24]byte
		if _, err := rand.Read(salt[:]); err != nil {
			return err
		}
		body["email"], body["salt"] = *email, base64.RawURLEncoding.EncodeToString(salt[:])
	}
	if *expiresIn != 0 {
		body["expires_in"] = expiresIn.String()
	}
	var inv struct {
		ID        string    `json:"id"`
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := api.do(ctx, "POST", "/admin/invitations", body, &inv); err != nil {
		return err
	}
	if af.asJSON {
		return json.NewEncoder(stdout).Encode(inv)
	}
	fmt.Fprintf(stderr, "invitation %s, works once until %s; its token (shown only now):\n", inv.ID, inv.ExpiresAt.Format(time.RFC3339))
	fmt.Fprintln(stdout, inv.Token)
	return nil
}
