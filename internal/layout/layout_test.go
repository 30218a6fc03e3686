// Package layout holds tests of the module's shape: which packages other
// programs may import, that the README's layout tree is the code's, and
// that every fuzz target runs in CI and is named in the README.
package layout

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/keyledger/keyledger"

// public are the packages other programs may import: the design card's
// top-level packages, the validation library, the Go client and the
// OpenAPI document. Everything else is under internal/ (or is a command).
var public = []string{
	"api",
	"client",
	"domain",
	"eventstore",
	"handlers",
	"projections",
	"validator",
}

// root is the module's root directory, two levels above this package.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", dir, err)
	}
	return dir
}

// packages lists the module's packages relative to its root, as `go list
// ./...` prints them.
func packages(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "./...")
	cmd.Dir = root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}
	var pkgs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		switch {
		case p == module:
			pkgs = append(pkgs, ".")
		case strings.HasPrefix(p, module+"/"):
			pkgs = append(pkgs, strings.TrimPrefix(p, module+"/"))
		case p != "":
			t.Fatalf("go list printed %q, outside module %s", p, module)
		}
	}
	return pkgs
}

// TestLayout_PublicSurface: outside internal/ and cmd/ there are exactly
// the public packages, so nothing else becomes an API by accident.
func TestLayout_PublicSurface(t *testing.T) {
	var got []string
	for _, p := range packages(t) {
		if p == "internal" || strings.HasPrefix(p, "internal/") || strings.HasPrefix(p, "cmd/") {
			continue
		}
		got = append(got, p)
	}
	slices.Sort(got)
	if !slices.Equal(got, public) {
		t.Errorf("importable packages outside internal/ and cmd/:\n got %v\nwant %v", got, public)
	}
}

// TestLayout_READMETree: the README's layout tree (the fenced block under
// "## Development") names every package directory the module has, and
// every path it names exists.
func TestLayout_READMETree(t *testing.T) {
	dir := root(t)
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Development\n")
	if !ok {
		t.Fatal(`README has no "## Development" section`)
	}
	_, block, ok := strings.Cut(section, "\n```\n")
	if !ok {
		t.Fatal("the Development section has no layout block")
	}
	block, _, _ = strings.Cut(block, "\n```")
	// Each line starts with one or more paths ending in "/", separated by
	// ", ", then the description.
	named := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		fields := strings.Fields(line)
		for _, f := range fields {
			f = strings.TrimSuffix(f, ",")
			if !strings.HasSuffix(f, "/") {
				break
			}
			p := strings.TrimSuffix(f, "/")
			named[p] = true
			if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || !fi.IsDir() {
				t.Errorf("the README's layout names %s/, which is not a directory", p)
			}
		}
	}
	if len(named) < 10 {
		t.Fatalf("found %d paths in the README's layout block, want at least 10", len(named))
	}
	// A package is covered when the tree names it or one of its parents
	// (internal/app/apptest is covered by internal/app/).
	for _, p := range packages(t) {
		covered := false
		for q := p; q != "." && q != ""; q = filepath.Dir(q) {
			if named[q] && (q != "internal" && q != "cmd" || q == p) {
				covered = true
				break
			}
		}
		if !covered {
			t.Errorf("package %s is missing from the README's layout tree", p)
		}
	}
}

// TestLayout_FuzzTargets: every fuzz target runs in CI (a "fuzz <package>
// <target>" line of .ci/run) and is listed in the README's "Hostile
// input" row under its package, and both name only targets that exist.
func TestLayout_FuzzTargets(t *testing.T) {
	dir := root(t)
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)
	have := map[string]bool{} // "package target"
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != dir {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllSubmatch(b, -1) {
			have[filepath.ToSlash(rel)+" "+string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(have) < 30 {
		t.Fatalf("found %d fuzz targets, want at least 30", len(have))
	}

	ci, err := os.ReadFile(filepath.Join(dir, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	inCI := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^fuzz (\S+) (\S+)$`).FindAllSubmatch(ci, -1) {
		inCI[string(m[1])+" "+string(m[2])] = true
	}

	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| **Hostile input.**") {
			row = line
		}
	}
	if row == "" {
		t.Fatal(`the README has no "Hostile input" row`)
	}
	cells := strings.Split(strings.TrimSuffix(strings.TrimSpace(row), "|"), "|")
	inREADME := map[string]bool{}
	for _, group := range strings.Split(cells[len(cells)-1], ";") {
		pkg, names, ok := strings.Cut(strings.TrimSpace(group), " ")
		if !ok || !strings.HasPrefix(pkg, "`") {
			t.Fatalf("README's Hostile input row: %q is not \"`package` targets\"", group)
		}
		for _, name := range strings.Split(names, ",") {
			inREADME[strings.Trim(pkg, "`")+" "+strings.TrimSpace(name)] = true
		}
	}

	for _, where := range []struct {
		name   string
		listed map[string]bool
	}{{".ci/run", inCI}, {"the README's Hostile input row", inREADME}} {
		for target := range have {
			if !where.listed[target] {
				t.Errorf("fuzz target %s is missing from %s", target, where.name)
			}
		}
		for target := range where.listed {
			if !have[target] {
				t.Errorf("%s names fuzz target %s, which does not exist", where.name, target)
			}
		}
	}
}
