package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestServe_KeyPolicies drives the key policy routes of serve end to end:
// scopes and metadata on create, PATCH with If-Match, disable/enable,
// regenerate with a grace period, /validate with required scopes, and the
// attacks a hostile client tries on them.
func TestServe_KeyPolicies(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	ts.Register(t, "alice@example.com", apptest.Password)
	alice := "Bearer " + ts.Login(t, "alice@example.com", apptest.Password)
	ts.Register(t, "mallory@example.com", apptest.Password)
	mallory := "Bearer " + ts.Login(t, "mallory@example.com", apptest.Password)

	r := ts.Do(t, "POST", "/api-keys", `{"name":"orders","scopes":["orders:*","billing:read"],"metadata":{"plan":"pro","n":[1,2]}}`,
		"Authorization", alice)
	apptest.WantStatus(t, r, http.StatusCreated)
	created := r.JSON(t)
	k := apptest.CreatedKey{Key: created["api_key"].(string), Secret: created["secret"].(string)}
	if got, _ := json.Marshal(created["scopes"]); string(got) != `["billing:read","orders:*"]` {
		t.Errorf("create scopes: got %s", got)
	}
	if got, _ := json.Marshal(created["metadata"]); string(got) != `{"n":[1,2],"plan":"pro"}` {
		t.Errorf("create metadata: got %s", got)
	}
	if r.Header.Get("ETag") != `"1"` || created["version"] != float64(1) || created["status"] != "active" {
		t.Errorf("create: got ETag %q, %v, want \"1\", version 1, active", r.Header.Get("ETag"), created)
	}
	keyPath := "/api-keys/" + k.Key
	creds := []string{"X-Api-Key", apptest.Base64(k.Key), "X-Api-Secret", apptest.Base64(k.Secret)}

	t.Run("CreateRefusesBadPolicy", func(t *testing.T) {
		for name, body := range map[string]string{
			"UnknownField":     `{"name":"x","permissions":["*"]}`,
			"BadScope":         `{"scopes":["orders read"]}`,
			"ScopeNotString":   `{"scopes":[1]}`,
			"MetadataArray":    `{"metadata":[1]}`,
			"MetadataTooLarge": `{"metadata":{"a":"` + strings.Repeat("x", 4096) + `"}}`,
		} {
			if r := ts.Do(t, "POST", "/api-keys", body, "Authorization", alice); r.Status != http.StatusBadRequest {
				t.Errorf("%s: got %d %s, want 400", name, r.Status, r.Body)
			}
		}
	})

	t.Run("ValidateScopes", func(t *testing.T) {
		r := ts.Do(t, "GET", "/validate?scope=orders:read", "", creds...)
		apptest.WantStatus(t, r, http.StatusOK)
		if r.Header.Get("X-Keyledger-Scopes") != "billing:read orders:*" || r.JSON(t)["name"] != "orders" {
			t.Errorf("got %v %s, want the scopes header and the name", r.Header, r.Body)
		}
		r = ts.Do(t, "GET", "/validate", "", append(creds, "X-Keyledger-Required-Scopes", "billing:write")...)
		if r.Status != http.StatusForbidden || r.ErrorCode(t) != "forbidden" {
			t.Errorf("missing scope: got %d %s, want 403 forbidden", r.Status, r.Body)
		}
	})

	t.Run("Patch", func(t *testing.T) {
		r := ts.Do(t, "PATCH", keyPath, `{"name":"orders v2","scopes":["orders:read"],"metadata":null,"expires_at":"2099-01-01T00:00:00Z"}`,
			"Authorization", alice, "If-Match", `"1"`)
		apptest.WantStatus(t, r, http.StatusOK)
		v := r.JSON(t)
		if v["name"] != "orders v2" || v["version"] != float64(5) || r.Header.Get("ETag") != `"5"` || v["expires_at"] != "2099-01-01T00:00:00Z" {
			t.Errorf("got %v ETag %q, want every field changed, version 5", v, r.Header.Get("ETag"))
		}
		if got, _ := json.Marshal(v["metadata"]); string(got) != `{}` {
			t.Errorf("metadata after null: got %s, want {}", got)
		}
		// In force before the PATCH answered.
		if r := ts.Do(t, "GET", "/validate?scope=billing:read", "", creds...); r.Status != http.StatusForbidden {
			t.Errorf("dropped scope: got %d, want 403", r.Status)
		}
		r = ts.Do(t, "PATCH", keyPath, `{"name":"stale"}`, "Authorization", alice, "If-Match", `"1"`)
		if r.Status != http.StatusPreconditionFailed || r.ErrorCode(t) != "precondition_failed" {
			t.Errorf("stale If-Match: got %d %s, want 412", r.Status, r.Body)
		}
		for name, h := range map[string][]string{"BadIfMatch": {"If-Match", "five"}, "WeakIfMatch": {"If-Match", `W/"5"`}} {
			if r := ts.Do(t, "PATCH", keyPath, `{"name":"x"}`, append([]string{"Authorization", alice}, h...)...); r.Status != http.StatusBadRequest {
				t.Errorf("%s: got %d, want 400", name, r.Status)
			}
		}
		r = ts.Do(t, "PATCH", keyPath, `{"expires_at":null}`, "Authorization", alice)
		apptest.WantStatus(t, r, http.StatusOK)
		if r.JSON(t)["expires_at"] != nil {
			t.Errorf("expires_at null: got %s, want the expiry cleared", r.Body)
		}
		for name, body := range map[string]string{"Unknown": `{"status":"active"}`, "ScopesNotArray": `{"scopes":"orders:read"}`,
			"BadExpiry": `{"expires_at":"tomorrow"}`, "PastExpiry": `{"expires_at":"2001-01-01T00:00:00Z"}`} {
			if r := ts.Do(t, "PATCH", keyPath, body, "Authorization", alice); r.Status != http.StatusBadRequest {
				t.Errorf("%s: got %d %s, want 400", name, r.Status, r.Body)
			}
		}
	})

	t.Run("OthersKeysAre404", func(t *testing.T) {
		for _, req := range [][2]string{{"PATCH", keyPath}, {"POST", keyPath + "/disable"}, {"POST", keyPath + "/enable"},
			{"POST", keyPath + "/regenerate"}, {"GET", keyPath}} {
			body := ""
			if req[0] == "PATCH" {
				body = `{"scopes":["*"]}`
			}
			if r := ts.Do(t, req[0], req[1], body, "Authorization", mallory, "If-Match", `"1"`); r.Status != http.StatusNotFound {
				t.Errorf("%s %s as another user: got %d %s, want 404", req[0], req[1], r.Status, r.Body)
			}
		}
		if got := ts.Validate(t, k); got != http.StatusOK {
			t.Errorf("key after another user's attempts: got %d, want 200", got)
		}
	})

	t.Run("DisableEnable", func(t *testing.T) {
		apptest.WantStatus(t, ts.Do(t, "POST", keyPath+"/disable", `{"reason":"pause"}`, "Authorization", alice), http.StatusNoContent)
		if got := ts.Validate(t, k); got != http.StatusUnauthorized {
			t.Errorf("disabled: got %d, want 401", got)
		}
		if st := ts.Do(t, "GET", keyPath, "", "Authorization", alice).JSON(t)["status"]; st != "disabled" {
			t.Errorf("status: got %v, want disabled", st)
		}
		apptest.WantStatus(t, ts.Do(t, "POST", keyPath+"/enable", "", "Authorization", alice), http.StatusNoContent)
		if got := ts.Validate(t, k); got != http.StatusOK {
			t.Errorf("enabled: got %d, want 200", got)
		}
		if r := ts.Do(t, "POST", keyPath+"/disable", `{"why":"x"}`, "Authorization", alice); r.Status != http.StatusBadRequest {
			t.Errorf("unknown field: got %d, want 400", r.Status)
		}
	})

	t.Run("RegenerateWithGrace", func(t *testing.T) {
		for _, body := range []string{`{"grace_period":"169h"}`, `{"grace_period":"-1s"}`, `{"grace_period":"soon"}`, `{"grace":"1h"}`} {
			if r := ts.Do(t, "POST", keyPath+"/regenerate", body, "Authorization", alice); r.Status != http.StatusBadRequest {
				t.Errorf("%s: got %d %s, want 400", body, r.Status, r.Body)
			}
		}
		if got := ts.Validate(t, k); got != http.StatusOK {
			t.Fatalf("refused regenerations changed the secret: got %d", got)
		}
		r := ts.Do(t, "POST", keyPath+"/regenerate", `{"grace_period":"1h"}`, "Authorization", alice)
		apptest.WantStatus(t, r, http.StatusOK)
		next := apptest.CreatedKey{Key: k.Key, Secret: r.JSON(t)["secret"].(string)}
		if ts.Validate(t, k) != http.StatusOK || ts.Validate(t, next) != http.StatusOK {
			t.Errorf("grace period: want both secrets to validate")
		}
		if v := ts.Do(t, "GET", keyPath, "", "Authorization", alice).JSON(t); v["previous_secret_expires_at"] == nil {
			t.Errorf("view: got %v, want previous_secret_expires_at", v)
		}
		// Disabling ends the overlap at once, and enabling does not bring it back.
		apptest.WantStatus(t, ts.Do(t, "POST", keyPath+"/disable", "", "Authorization", alice), http.StatusNoContent)
		apptest.WantStatus(t, ts.Do(t, "POST", keyPath+"/enable", "", "Authorization", alice), http.StatusNoContent)
		if ts.Validate(t, k) != http.StatusUnauthorized || ts.Validate(t, next) != http.StatusOK {
			t.Errorf("after disable: want only the new secret")
		}
		k = next
	})

	t.Run("RevokedIs409", func(t *testing.T) {
		apptest.WantStatus(t, ts.Do(t, "POST", keyPath+"/disable", "", "Authorization", alice), http.StatusNoContent)
		apptest.WantStatus(t, ts.Do(t, "DELETE", keyPath, "", "Authorization", alice), http.StatusNoContent)
		for _, req := range [][2]string{{"PATCH", keyPath}, {"POST", keyPath + "/enable"}} {
			body := ""
			if req[0] == "PATCH" {
				body = `{"name":"x"}`
			}
			if r := ts.Do(t, req[0], req[1], body, "Authorization", alice); r.Status != http.StatusConflict {
				t.Errorf("%s revoked: got %d %s, want 409", req[0], r.Status, r.Body)
			}
		}
	})
}
