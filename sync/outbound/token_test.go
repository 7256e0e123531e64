package outbound

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
)

// logBuf collects log output safely across goroutines.
type logBuf struct {
	mu stdsync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTokenFileRotationAndProblems(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	var logs logBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	write := func(s string) {
		t.Helper()
		// A new file (rename over the old one), as an admin's tooling
		// would: a new inode, so even an equal size and mtime is seen.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	var tf *tokenFile
	check := func(tok string, wantOK bool, wantErr bool) {
		t.Helper()
		ok, err := tf.check(tok)
		if ok != wantOK || (err != nil) != wantErr {
			t.Fatalf("check(%q) = %v, %v; want %v, error %v", tok, ok, err, wantOK, wantErr)
		}
		if err != nil && !errors.Is(err, errNoToken) {
			t.Fatalf("check error %v does not wrap errNoToken", err)
		}
	}

	write("first-token\n")
	tf = newTokenFile(path, log)
	check("first-token", true, false)
	check("first-token\n", false, false)
	check("", false, false)
	check("first", false, false)

	write("second-token")
	check("first-token", false, false)
	check("second-token", true, false)

	write("  \n")
	check("second-token", false, true)
	check("second-token", false, true)
	if n := strings.Count(logs.String(), "is empty"); n != 1 {
		t.Errorf("the empty token file was logged %d times, want once:\n%s", n, logs.String())
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	check("second-token", false, true)

	write("third-token")
	check("third-token", true, false)
	if !strings.Contains(logs.String(), "send API token loaded") {
		t.Errorf("recovery was not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "token\"") || strings.Contains(logs.String(), "third-token") {
		t.Errorf("a token value reached the log:\n%s", logs.String())
	}

	write("fourth-token")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	check("fourth-token", true, false)
	if !strings.Contains(logs.String(), "readable by other users") {
		t.Errorf("a world-readable token file was not warned about:\n%s", logs.String())
	}
}

func TestTokenFileUnset(t *testing.T) {
	tf := newTokenFile("", slog.New(slog.DiscardHandler))
	if ok, err := tf.check("anything"); ok || !errors.Is(err, errNoToken) {
		t.Fatalf("check() = %v, %v; want refused with errNoToken", ok, err)
	}
}
