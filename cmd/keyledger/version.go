package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// runVersion runs `keyledger version`.
func runVersion(args []string, stdout io.Writer) error {
	if err := parseFlags(newFlagSet("version"), args); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo() // nil without build information
	fmt.Fprint(stdout, versionText(bi))
	return nil
}

// versionText describes the binary from its build information (nil: none):
// the main module's version, the VCS revision it was built from (and
// whether the work tree had changes), the commit time, and the Go version.
// A binary built without VCS information (go run, go test, -buildvcs=false)
// says "(devel)" and "unknown".
func versionText(bi *debug.BuildInfo) string {
	version, module, goVersion := "(devel)", "github.com/keyledger/keyledger", runtime.Version()
	settings := map[string]string{}
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.Main.Path != "" {
			module = bi.Main.Path
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	revision := settings["vcs.revision"]
	if revision == "" {
		revision = "unknown"
	}
	if settings["vcs.modified"] == "true" {
		revision += " (modified)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "keyledger %s\n", version)
	fmt.Fprintf(&b, "module:   %s\n", module)
	fmt.Fprintf(&b, "revision: %s\n", revision)
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "commit:   %s\n", t)
	}
	fmt.Fprintf(&b, "go:       %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
