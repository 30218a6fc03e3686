package readme

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/internal/app/apptest"
)

// TestREADME_WebConsole runs the Web console section's first sh block
// against serve, and checks that its second one, the console's test
// commands, names tests that exist.
func TestREADME_WebConsole(t *testing.T) {
	blocks := readmeBlocks(t, "Web console")["sh"]
	if len(blocks) != 2 {
		t.Fatalf("got %d sh blocks, want two", len(blocks))
	}
	ts := apptest.Start(t, t.TempDir())
	defer ts.Stop(t)
	out := runAgainst(t, ts, blocks[0])
	wantLines(t, out, []string{
		`^303 ` + regexp.QuoteMeta(ts.Base) + `/console/$`,
		`(?i)^cache-control: no-store\s*$`,
		`(?i)^content-security-policy: default-src 'self'; script-src 'self'; style-src 'self';.* frame-ancestors 'none'\s*$`,
		`(?i)^x-frame-options: DENY\s*$`,
	})
	// The test commands: the package exists and -run TestBrowser matches
	// its browser tests.
	if !strings.Contains(blocks[1], "./internal/console") || !strings.Contains(blocks[1], "-run TestBrowser") {
		t.Fatalf("the test commands changed: %s", blocks[1])
	}
	src, err := os.ReadFile(filepath.Join(repoRoot, "internal", "console", "browser_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(regexp.MustCompile(`(?m)^func TestBrowser_`).FindAll(src, -1)); n < 3 {
		t.Errorf("internal/console has %d TestBrowser_ tests, want the walk-throughs", n)
	}
}
