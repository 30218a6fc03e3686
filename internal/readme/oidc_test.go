package readme

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/natstest"
	"github.com/keyledger/keyledger/internal/oidc/oidctest"
)

// TestREADME_OpenIDConnect runs the README's "OpenID Connect" section:
// its files, the example provider (the version the README names, built
// once) and serve with the section's command lines on free ports, then its
// shell block, which logs in through the provider with curl.
func TestREADME_OpenIDConnect(t *testing.T) {
	t.Parallel()
	ctx, dir, bin := binaryDir(t)
	blocks := readmeBlocks(t, "OpenID Connect")["sh"]
	if len(blocks) != 2 {
		t.Fatalf("got %d sh blocks, want 2", len(blocks))
	}
	setup := strings.Split(strings.TrimSpace(blocks[0]), "\n")
	goRunProvider := "go run " + oidctest.Module
	if len(setup) != 4 || !strings.Contains(setup[2], goRunProvider) || !strings.Contains(setup[3], " serve ") {
		t.Fatalf("the first OpenID Connect block: got %q, want two files, %s, then serve", setup, goRunProvider)
	}
	runScript(t, ctx, dir, setup[0]+"\n"+setup[1]+"\n")
	providerAddr, httpAddr, natsAddr := apptest.FreeAddr(t), apptest.FreeAddr(t), apptest.FreeAddr(t)
	_, providerPort, _ := strings.Cut(providerAddr, ":")
	issuer := "http://localhost:" + providerPort + "/"
	ports := strings.NewReplacer("9998", providerPort, "127.0.0.1:8080", httpAddr)
	provider := strings.NewReplacer(goRunProvider, oidctest.Binary(t)).Replace(ports.Replace(strings.TrimSuffix(setup[2], " &")))
	startProcess(t, dir, "provider", []string{"sh", "-c", "exec env " + provider})
	natstest.Eventually(t, time.Minute, func() bool {
		resp, err := http.Get(issuer + ".well-known/openid-configuration")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "provider serving")
	serve := strings.NewReplacer("go run ./cmd/keyledger", bin).Replace(ports.Replace(setup[3]))
	startProcess(t, dir, "serve", append(strings.Fields(serve), "--http-addr", httpAddr, "--nats-listen", natsAddr,
		"--metrics-addr", "off"))
	base := "http://" + httpAddr
	waitReady(t, base)

	u, _ := url.Parse(issuer)
	script := strings.NewReplacer("http://127.0.0.1:8080", base, "http://localhost:9998", "http://"+u.Host).Replace(blocks[1])
	out := runScript(t, ctx, dir, script)
	rest := out
	for _, w := range []string{
		`(?m)^\{"token":"[A-Za-z0-9_.-]+","expires_at":"[^"]+","user_id":"usr_[0-9A-Z]{26}"\}$`,
		`(?m)^401$`, `(?m)^401$`,
	} {
		loc := regexp.MustCompile(w).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("output lacks %s after what came before; output:\n%s", w, out)
		}
		rest = rest[loc[1]:]
	}
}
