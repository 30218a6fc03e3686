package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyledger/keyledger/client"
)

// The admin pages: for a user whose role is admin, who acts with their
// session like `curl` with the same token would. What the API refuses to
// a session (erasing a user takes a request signed with an admin key) the
// pages say, and point to the command line.

// maxAdminRows bounds the rows an admin list shows; the filters narrow it.
const maxAdminRows = 200

func (c *Console) adminRoutes() {
	c.mux.HandleFunc("GET /console/admin/{$}", c.admin(c.adminHome))
	c.mux.HandleFunc("POST /console/admin/integrity/verify", c.admin(c.adminVerify))
	c.mux.HandleFunc("GET /console/admin/users", c.admin(c.adminUsers))
	c.mux.HandleFunc("GET /console/admin/users/{id}", c.admin(c.adminUser))
	c.mux.HandleFunc("POST /console/admin/users/{id}/{action}", c.admin(c.adminUserAction))
	c.mux.HandleFunc("GET /console/admin/keys", c.admin(c.adminKeys))
	c.mux.HandleFunc("GET /console/admin/keys/{key}", c.admin(c.adminKey))
	c.mux.HandleFunc("POST /console/admin/keys/{key}/{action}", c.admin(c.adminKeyAction))
}

// admin runs next for a signed-in admin; anyone else gets the console's
// 404, as for a page that does not exist.
func (c *Console) admin(next func(http.ResponseWriter, *http.Request, *client.Client)) http.HandlerFunc {
	return c.signedIn(func(w http.ResponseWriter, r *http.Request, api *client.Client) {
		if me, ok := meFrom(r.Context()); !ok || !me.IsAdmin() {
			c.notFound(w, r)
			return
		}
		next(w, r, api)
	})
}

type adminHomeView struct {
	Integrity    client.Integrity
	IntegrityErr string
	Busy         []client.BusyKey
	BusyErr      string
	Nodes        []client.Node
	NodesErr     string
}

func (c *Console) adminHome(w http.ResponseWriter, r *http.Request, api *client.Client) {
	c.renderAdminHome(w, r, api, "")
}

func (c *Console) renderAdminHome(w http.ResponseWriter, r *http.Request, api *client.Client, notice string) {
	var v adminHomeView
	var err error
	if v.Integrity, err = api.AdminIntegrity(r.Context()); err != nil {
		v.IntegrityErr = apiMessage(err)
	}
	if v.Busy, err = api.AdminUsage(r.Context(), 24*time.Hour, 10); err != nil {
		v.BusyErr = apiMessage(err)
	}
	if v.Nodes, err = api.AdminListNodes(r.Context()); err != nil {
		v.NodesErr = apiMessage(err)
	}
	c.render(w, r, http.StatusOK, "admin", page{Title: "Admin", SignedIn: true, Notice: notice, Data: v})
}

func (c *Console) adminVerify(w http.ResponseWriter, r *http.Request, api *client.Client) {
	if _, err := api.AdminVerifyLog(r.Context()); err != nil {
		c.apiFailed(w, r, "Admin", "message", page{SignedIn: true}, err)
		return
	}
	c.renderAdminHome(w, r, api, "The log is being verified: reload this page for the verdict.")
}

// apiMessage is the message of a failed API call, for a panel of a page
// that shows the rest.
func apiMessage(err error) string {
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return "unavailable"
}

type adminUsersView struct {
	Q, Status string
	Users     []client.AdminUser
	Total     int
	More      bool
}

// userStatus is how the users page names a user's standing.
func userStatus(u client.AdminUser) string {
	switch {
	case u.Erased:
		return "erased"
	case u.Disabled:
		return "disabled"
	}
	return "active"
}

func (c *Console) adminUsers(w http.ResponseWriter, r *http.Request, api *client.Client) {
	q := r.URL.Query()
	v := adminUsersView{Q: strings.TrimSpace(q.Get("q")), Status: q.Get("status")}
	users, err := api.AdminListUsers(r.Context())
	if err != nil {
		c.apiFailed(w, r, "Users", "message", page{SignedIn: true}, err)
		return
	}
	needle := strings.ToLower(v.Q)
	for _, u := range users {
		if needle != "" && !strings.Contains(strings.ToLower(u.Email), needle) && !strings.Contains(strings.ToLower(u.ID), needle) {
			continue
		}
		switch v.Status {
		case "", "any":
		case "admin":
			if u.Role != "admin" {
				continue
			}
		default:
			if userStatus(u) != v.Status {
				continue
			}
		}
		v.Total++
		if len(v.Users) < maxAdminRows {
			v.Users = append(v.Users, u)
		}
	}
	v.More = v.Total > len(v.Users)
	c.render(w, r, http.StatusOK, "admin_users", page{Title: "Users", SignedIn: true, Data: v})
}

type adminUserView struct {
	User   client.AdminUser
	Status string
	Keys   []client.Key
}

// findUser returns the user id names, or false.
func findUser(ctx context.Context, api *client.Client, id string) (client.AdminUser, bool, error) {
	users, err := api.AdminListUsers(ctx)
	if err != nil {
		return client.AdminUser{}, false, err
	}
	for _, u := range users {
		if u.ID == id {
			return u, true, nil
		}
	}
	return client.AdminUser{}, false, nil
}

func (c *Console) adminUser(w http.ResponseWriter, r *http.Request, api *client.Client) {
	c.renderAdminUser(w, r, api, http.StatusOK, "", "")
}

func (c *Console) renderAdminUser(w http.ResponseWriter, r *http.Request, api *client.Client, status int, notice, failure string) {
	u, ok, err := findUser(r.Context(), api, r.PathValue("id"))
	if err != nil {
		c.apiFailed(w, r, "User", "message", page{SignedIn: true}, err)
		return
	}
	if !ok {
		c.notFound(w, r)
		return
	}
	keys, err := api.AdminListKeys(r.Context(), u.ID)
	if err != nil {
		c.apiFailed(w, r, "User", "message", page{SignedIn: true}, err)
		return
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].CreatedAt.After(keys[j].CreatedAt) })
	title := u.Email
	if title == "" {
		title = "Erased user"
	}
	c.render(w, r, status, "admin_user", page{Title: title, SignedIn: true, Notice: notice, Error: failure,
		Data: adminUserView{User: u, Status: userStatus(u), Keys: keys}})
}

func (c *Console) adminUserAction(w http.ResponseWriter, r *http.Request, api *client.Client) {
	id, reason := r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("reason"))
	var err error
	var notice string
	switch r.PathValue("action") {
	case "disable":
		err, notice = api.AdminDisableUser(r.Context(), id, reason), "The user is disabled: their logins, sessions and keys are refused."
	case "enable":
		err, notice = api.AdminEnableUser(r.Context(), id, reason), "The user is enabled again."
	case "revoke-sessions":
		err, notice = api.AdminRevokeSessions(r.Context(), id, reason), "Every session of the user has ended."
	case "revoke-keys":
		if r.PostForm.Get("confirm") != "yes" {
			c.renderAdminUser(w, r, api, http.StatusBadRequest, "", "Tick the box to confirm that every key of this user is to be revoked.")
			return
		}
		var revoked []string
		revoked, err = api.AdminRevokeUserKeys(r.Context(), id, reason)
		notice = plural(len(revoked), "key was", "keys were") + " revoked."
	default:
		c.notFound(w, r)
		return
	}
	if err != nil {
		if isStatus(err, http.StatusUnauthorized) {
			c.apiFailed(w, r, "User", "message", page{SignedIn: true}, err)
			return
		}
		var ae *client.Error
		if !errors.As(err, &ae) {
			c.apiFailed(w, r, "User", "message", page{SignedIn: true}, err)
			return
		}
		c.renderAdminUser(w, r, api, ae.Status, "", ae.Message)
		return
	}
	c.renderAdminUser(w, r, api, http.StatusOK, notice, "")
}

// plural is "1 key was" or "n keys were".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

type adminKeysView struct {
	Q, User, Status string
	Keys            []client.Key
	Total           int
	More            bool
}

var keyStatuses = map[string]bool{"active": true, "revoked": true, "expired": true, "disabled": true}

func (c *Console) adminKeys(w http.ResponseWriter, r *http.Request, api *client.Client) {
	q := r.URL.Query()
	v := adminKeysView{Q: strings.TrimSpace(q.Get("q")), User: strings.TrimSpace(q.Get("user")), Status: q.Get("status")}
	var statuses []string
	if keyStatuses[v.Status] {
		statuses = append(statuses, v.Status)
	} else {
		v.Status = ""
	}
	keys, err := api.AdminListKeys(r.Context(), v.User, statuses...)
	if err != nil {
		c.apiFailed(w, r, "Keys", "message", page{SignedIn: true}, err)
		return
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].CreatedAt.After(keys[j].CreatedAt) })
	needle := strings.ToLower(v.Q)
	for _, k := range keys {
		if needle != "" && !strings.Contains(strings.ToLower(k.APIKey), needle) && !strings.Contains(strings.ToLower(k.Name), needle) {
			continue
		}
		v.Total++
		if len(v.Keys) < maxAdminRows {
			v.Keys = append(v.Keys, k)
		}
	}
	v.More = v.Total > len(v.Keys)
	c.render(w, r, http.StatusOK, "admin_keys", page{Title: "All keys", SignedIn: true, Data: v})
}

// findKey returns the key apiKey of user (its owner, as the admin list
// names it), or false.
func findKey(ctx context.Context, api *client.Client, user, apiKey string) (client.Key, bool, error) {
	if user == "" {
		return client.Key{}, false, nil
	}
	keys, err := api.AdminListKeys(ctx, user)
	if err != nil {
		return client.Key{}, false, err
	}
	for _, k := range keys {
		if k.APIKey == apiKey {
			return k, true, nil
		}
	}
	return client.Key{}, false, nil
}

func (c *Console) adminKey(w http.ResponseWriter, r *http.Request, api *client.Client) {
	c.renderAdminKey(w, r, api, r.URL.Query().Get("user"), http.StatusOK, "", "")
}

func (c *Console) renderAdminKey(w http.ResponseWriter, r *http.Request, api *client.Client, user string, status int, notice, failure string) {
	k, ok, err := findKey(r.Context(), api, user, r.PathValue("key"))
	if err != nil {
		c.apiFailed(w, r, "Key", "message", page{SignedIn: true}, err)
		return
	}
	if !ok {
		c.notFound(w, r)
		return
	}
	c.render(w, r, status, "admin_key", page{Title: "Key " + keyTitle(k), SignedIn: true, Notice: notice, Error: failure, Data: k})
}

func (c *Console) adminKeyAction(w http.ResponseWriter, r *http.Request, api *client.Client) {
	key, user, reason := r.PathValue("key"), r.PostForm.Get("user"), strings.TrimSpace(r.PostForm.Get("reason"))
	var err error
	var notice string
	switch r.PathValue("action") {
	case "revoke":
		if r.PostForm.Get("confirm") != "yes" {
			c.renderAdminKey(w, r, api, user, http.StatusBadRequest, "", "Tick the box to confirm the revocation.")
			return
		}
		err, notice = api.AdminRevokeKey(r.Context(), key, reason), "The key is revoked: every request with it is refused."
	case "disable":
		err, notice = api.AdminDisableKey(r.Context(), key, reason), "The key is disabled until it is enabled again."
	case "enable":
		err, notice = api.AdminEnableKey(r.Context(), key, reason), "The key is enabled again."
	default:
		c.notFound(w, r)
		return
	}
	if err != nil {
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status == http.StatusUnauthorized {
			c.apiFailed(w, r, "Key", "message", page{SignedIn: true}, err)
			return
		}
		c.renderAdminKey(w, r, api, user, ae.Status, "", ae.Message)
		return
	}
	c.renderAdminKey(w, r, api, user, http.StatusOK, notice, "")
}

// adminKeyURL is a key's admin page.
func adminKeyURL(k client.Key) string {
	return Prefix + "admin/keys/" + url.PathEscape(k.APIKey) + "?user=" + url.QueryEscape(k.UserID)
}
