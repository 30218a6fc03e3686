package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// lockFile is the file in a data directory that serve holds locked for
// as long as it runs.
const lockFile = "LOCK"

// errLocked is what tryLock returns when another holds the lock.
var errLocked = errors.New("locked")

// lockDataDir creates dir if needed and takes an exclusive lock on
// dir/LOCK for as long as the returned file stays open: a second serve on
// the same directory (the same embedded NATS store, the same keys) fails
// at once instead of corrupting the first one's state. The lock is the
// operating system's (flock), so it dies with the process, even killed;
// the file only carries the holder's pid for the message.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("data directory %s is in use by another keyledger serve (pid %s)", dir, holder(path))
		}
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	return f, nil
}

// holder returns the pid written in a lock file, or "unknown".
func holder(path string) string {
	b, err := os.ReadFile(path)
	if pid, perr := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && perr == nil && pid > 0 {
		return strconv.Itoa(pid)
	}
	return "unknown"
}
