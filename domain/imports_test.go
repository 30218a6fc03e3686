package domain_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports are standard packages the domain must not use: it has no
// transport and does not log; callers do both.
var forbiddenImports = map[string]bool{
	"net/http": true,
	"log":      true,
	"log/slog": true,
}

// clockFuncs read the wall clock. The domain takes the time as an argument.
var clockFuncs = map[string]bool{"Now": true, "Since": true, "Until": true}

// checkDomainSource reports what in one Go file breaks the domain's rules:
// imports outside the standard library, forbidden standard imports, and
// reads of the clock.
func checkDomainSource(filename string, src any) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var problems []string
	// The local names under which the file imports package time.
	timeNames := map[string]bool{}
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, err
		}
		first, _, _ := strings.Cut(path, "/")
		switch {
		case strings.Contains(first, "."):
			problems = append(problems, fmt.Sprintf("%s: imports %q, outside the standard library", fset.Position(imp.Pos()), path))
		case forbiddenImports[path] || strings.HasPrefix(path, "net/http/"):
			problems = append(problems, fmt.Sprintf("%s: imports %q", fset.Position(imp.Pos()), path))
		}
		if path == "time" {
			name := "time"
			if imp.Name != nil {
				name = imp.Name.Name
			}
			if name == "." {
				problems = append(problems, fmt.Sprintf("%s: dot-imports time, which hides clock reads", fset.Position(imp.Pos())))
			}
			timeNames[name] = true
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok || !clockFuncs[sel.Sel.Name] {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && timeNames[x.Name] {
			problems = append(problems, fmt.Sprintf("%s: uses %s.%s; take the time as an argument", fset.Position(sel.Pos()), x.Name, sel.Sel.Name))
		}
		return true
	})
	return problems, nil
}

// TestDomainImports keeps the domain pure: standard library only, no HTTP,
// no logging, no clock.
func TestDomainImports(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		problems, err := checkDomainSource(name, src)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, p := range problems {
			t.Error(p)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("got no domain source files, want some: is the test running in the domain directory?")
	}
}

func TestCheckDomainSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		src          string
		wantProblems int
	}{
		{"OK", `package domain
import ("fmt"; "time"; "crypto/sha256")
var _ = fmt.Sprint
var _ = sha256.Sum256
func f(now time.Time) time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(now.Sub(now)) }
type clock struct{}
func (clock) Now() int { return 0 }
var _ = clock{}.Now()`, 0},
		{"NetHTTP", `package domain
import "net/http"
var _ = http.StatusOK`, 1},
		{"NetHTTPTest", `package domain
import "net/http/httptest"
var _ = httptest.NewRecorder`, 1},
		{"Log", `package domain
import "log"
func f() { log.Print("x") }`, 1},
		{"Slog", `package domain
import "log/slog"
func f() { slog.Info("x") }`, 1},
		{"ThirdParty", `package domain
import "github.com/nats-io/nats.go"
var _ = nats.Connect`, 1},
		{"GolangOrgX", `package domain
import _ "golang.org/x/crypto/argon2"`, 1},
		{"TimeNow", `package domain
import "time"
func f() time.Time { return time.Now() }`, 1},
		{"TimeNowValue", `package domain
import "time"
var clock = time.Now`, 1},
		{"TimeNowRenamed", `package domain
import t "time"
func f() t.Time { return t.Now().UTC() }`, 1},
		{"TimeSince", `package domain
import "time"
func f(t time.Time) time.Duration { return time.Since(t) }`, 1},
		{"TimeDotImport", `package domain
import . "time"
func f() Time { return Now() }`, 1},
		{"Several", `package domain
import ("log"; "net/http"; "time")
func f() { log.Print(http.StatusOK, time.Now(), time.Until(time.Now())) }`, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			problems, err := checkDomainSource(tc.name+".go", tc.src)
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if len(problems) != tc.wantProblems {
				t.Errorf("got %d problems %q, want %d", len(problems), problems, tc.wantProblems)
			}
		})
	}

	if _, err := checkDomainSource("broken.go", "package domain\nfunc {"); err == nil {
		t.Errorf("unparsable source: got nil error, want one")
	}
}
