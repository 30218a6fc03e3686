//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package app

import "os"

// tryLock does not lock where flock is missing: the data directory is
// then not protected against a second serve.
func tryLock(*os.File) error { return nil }
