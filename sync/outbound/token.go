package outbound

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	stdsync "sync"
	"syscall"
	"time"
)

// tokenFile holds the API bearer token, re-read when the file changes so
// an admin can rotate it without a restart.
type tokenFile struct {
	path string
	log  *slog.Logger

	mu       stdsync.Mutex
	stamp    fileStamp
	sum      [sha256.Size]byte // of the token; the token itself is not kept
	err      error             // why there is no usable token
	loggedAs string            // the last problem logged, to log each once
}

// fileStamp tells a changed file from an unchanged one without reading it.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func newTokenFile(path string, log *slog.Logger) *tokenFile {
	t := &tokenFile{path: path, log: log}
	t.mu.Lock()
	t.refresh()
	t.mu.Unlock()
	return t
}

// errNoToken marks a configuration problem: no request can be accepted.
var errNoToken = errors.New("send API token unavailable")

// check reports whether presented is the token. It returns errNoToken
// (wrapped with the reason) when there is no usable token.
func (t *tokenFile) check(presented string) (bool, error) {
	t.mu.Lock()
	t.refresh()
	sum, err := t.sum, t.err
	t.mu.Unlock()
	if err != nil {
		return false, err
	}
	// Comparing hashes keeps the comparison constant-time even in the
	// token's length.
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], sum[:]) == 1, nil
}

// refresh re-reads the file when its stamp changed. Called with mu held.
func (t *tokenFile) refresh() {
	if t.path == "" {
		t.fail(fmt.Errorf("%w: admin.token_file is not set", errNoToken))
		return
	}
	fi, err := os.Stat(t.path)
	if err != nil {
		t.stamp = fileStamp{}
		t.fail(fmt.Errorf("%w: %w", errNoToken, err))
		return
	}
	stamp := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		stamp.ino = st.Ino
	}
	if stamp == t.stamp && t.stamp != (fileStamp{}) {
		return
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		t.fail(fmt.Errorf("%w: %w", errNoToken, err))
		return
	}
	tok := bytes.TrimSpace(b)
	if len(tok) == 0 {
		t.stamp = stamp
		t.fail(fmt.Errorf("%w: token file %s is empty", errNoToken, t.path))
		return
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.log.Warn("send API token file is readable by other users; chmod 600 it", "path", t.path, "mode", fi.Mode().Perm().String())
	}
	t.stamp, t.sum, t.err = stamp, sha256.Sum256(tok), nil
	if t.loggedAs != "" {
		t.log.Info("send API token loaded", "path", t.path)
	}
	t.loggedAs = ""
}

// fail records why there is no token and logs each distinct reason once.
func (t *tokenFile) fail(err error) {
	t.err = err
	if msg := err.Error(); msg != t.loggedAs {
		t.loggedAs = msg
		t.log.Error("send API refuses every request", "err", err)
	}
}
