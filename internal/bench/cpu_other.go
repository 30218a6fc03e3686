//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package bench

import "time"

// processCPU returns false: the process's CPU time is not read here.
func processCPU() (time.Duration, bool) { return 0, false }
