package client

import (
	"context"
	"net/http"
)

// OIDCSession is the session of a login through serve's OpenID provider,
// and whose it is.
type OIDCSession struct {
	Session
	UserID string `json:"user_id"`
}

// OIDCLoginURL returns where to send a browser to log in through serve's
// OpenID provider: GET /oidc/login, which redirects it to the provider and
// sets the login cookie. The provider sends the browser back to GET
// /oidc/callback, which answers the session as JSON (OIDCSession) or, for
// an address that belongs to an account with a password, 409 with a link
// token for LinkOIDC. The login is a browser's: this client has no method
// for it.
func (c *Client) OIDCLoginURL() string { return c.base.String() + "/oidc/login" }

// LinkOIDC completes a login through the OpenID provider whose callback
// answered 409 with linkToken: with the account's password the provider's
// identity logs in as the account from now on (POST /oidc/link). Use the
// returned token with WithSession. Errors: *Error with status 401 (wrong
// password, alike a failed Login; or an expired or forged link token),
// 409 (the link token was used already), 403 (the address is not verified
// yet), 404 (serve has no OpenID provider) or 429.
func (c *Client) LinkOIDC(ctx context.Context, linkToken, password string) (OIDCSession, error) {
	body := struct {
		LinkToken string `json:"link_token"`
		Password  string `json:"password"`
	}{linkToken, password}
	var s OIDCSession
	err := c.do(ctx, request{method: http.MethodPost, path: "/oidc/link", body: body}, &s)
	return s, err
}
