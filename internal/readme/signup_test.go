package readme

import (
	"regexp"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app/apptest"
	"github.com/keyledger/keyledger/internal/mailtest"
)

// TestREADME_SignUp runs the README's "Sign-up" section: mailpit (the
// version the README names, on free ports), serve started with the
// section's command line, then its shell block against both.
func TestREADME_SignUp(t *testing.T) {
	t.Parallel()
	ctx, dir, bin := binaryDir(t)
	blocks := readmeBlocks(t, "Sign-up")["sh"]
	if len(blocks) != 2 {
		t.Fatalf("got %d sh blocks, want 2", len(blocks))
	}
	setup := strings.Split(strings.TrimSpace(blocks[0]), "\n")
	if len(setup) != 2 || !strings.Contains(setup[0], mailtest.Module+"@"+mailtest.Version) || !strings.Contains(setup[1], " serve ") {
		t.Fatalf("the first Sign-up block: got %q, want mailpit %s, then serve", setup, mailtest.Version)
	}
	ms := mailtest.Start(t, mailtest.Options{})
	httpAddr, natsAddr := apptest.FreeAddr(t), apptest.FreeAddr(t)
	line := strings.NewReplacer("go run ./cmd/keyledger", bin, "127.0.0.1:1025", ms.SMTPAddr).Replace(setup[1])
	startProcess(t, dir, "serve", append(strings.Fields(line), "--http-addr", httpAddr, "--nats-listen", natsAddr))
	base := "http://" + httpAddr
	waitReady(t, base)

	script := strings.NewReplacer("http://127.0.0.1:8080", base, "http://127.0.0.1:8025", ms.API).Replace(blocks[1])
	out := runScript(t, ctx, dir, script)
	rest := out
	for _, w := range []string{
		`(?m)^\{"email":"bob@example.com","status":"verification_pending"\}$`,
		`(?m)^403$`, `(?m)^204$`, `(?m)^400$`, `(?m)^200$`,
	} {
		loc := regexp.MustCompile(w).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("output lacks %s after what came before; output:\n%s", w, out)
		}
		rest = rest[loc[1]:]
	}
}
