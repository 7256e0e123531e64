package store

import (
	"bytes"
	"os"
	"strconv"
)

// The pid sidecar exists only to name the lock holder in another process's
// ErrInUse message: bbolt's flock cannot tell who holds it. It is advisory;
// a stale one (after a crash) is overwritten by the next owner.

func pidPath(path string) string { return path + ".pid" }

func writePID(path string) error {
	return os.WriteFile(pidPath(path), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
}

// readPID returns the pid recorded in the sidecar, or 0.
func readPID(path string) int {
	b, err := os.ReadFile(pidPath(path))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// removePID removes the sidecar only if it still names this process.
func removePID(path string) {
	if readPID(path) == os.Getpid() {
		_ = os.Remove(pidPath(path))
	}
}
