package dovecottest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// makeRoot creates the instance directory. It is not t.TempDir: Dovecot's
// unix sockets live below it and socket paths are limited to 108 bytes, which
// long test names would exceed. Under root it must be traversable by the
// unprivileged mail user.
func makeRoot(id identity) (string, error) {
	base := tempBase()
	sweepOnce.Do(func() { sweepStale(base) })
	dir, err := os.MkdirTemp(base, rootPrefix)
	if err != nil {
		return "", fmt.Errorf("create temp dir: %w", err)
	}
	if id.root {
		if err := os.Chmod(dir, 0o711); err != nil {
			return "", fmt.Errorf("chmod temp dir: %w", err)
		}
	}
	return dir, nil
}

// rootPrefix names instance directories, so sweepStale knows its own.
const rootPrefix = "dovecottest-"

// TempDirEnv overrides where instance directories are created.
const TempDirEnv = "DOVECOTTEST_TMPDIR"

// tempBase prefers /dev/shm: on the project's VMs creating a file on the
// ext4 root costs ~0.7 ms against ~10 µs on tmpfs, which decides whether
// SeedMaildir of 20,000 messages takes seconds or minutes.
func tempBase() string {
	if d := os.Getenv(TempDirEnv); d != "" {
		return d
	}
	const shm = "/dev/shm"
	if st, err := os.Stat(shm); err == nil && st.IsDir() && syscall.Access(shm, 0o3) == nil { // W_OK|X_OK
		return shm
	}
	if base := os.TempDir(); len(base) <= 40 {
		return base
	}
	return "/tmp"
}

var sweepOnce sync.Once

// staleAge is far beyond any test timeout, so a directory this old belongs
// to a test binary that died without running its cleanups.
const staleAge = 3 * time.Hour

// sweepStale removes instance directories left by killed test binaries;
// on tmpfs they would otherwise hold memory until reboot.
func sweepStale(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), rootPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleAge {
			_ = os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}
