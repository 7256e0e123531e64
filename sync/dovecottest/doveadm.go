package dovecottest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// doveadmTimeout bounds one doveadm run.
const doveadmTimeout = time.Minute

// Doveadm runs `doveadm -c <instance config> args...` and returns its
// standard output; it fails the test (with stderr) if doveadm fails.
// Mail commands take the user with "-u", e.g.
// s.Doveadm(t, "mailbox", "status", "-u", "alice", "messages", "INBOX").
func (s *Server) Doveadm(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.runDoveadm(args...)
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	return out
}

func (s *Server) runDoveadm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), doveadmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.doveadm, append([]string{"-c", s.confPath}, args...)...)
	cmd.Dir = s.dir
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("doveadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// LogTail returns the last n lines of the instance's Dovecot log, followed by
// anything the master wrote to stderr (errors before logging was set up).
// Authentication is not logged verbosely, so passwords never appear.
func (s *Server) LogTail(n int) string {
	out := tailLines(s.logPath, n)
	if errs := tailLines(s.stderrPath, n); errs != "" {
		out += "--- dovecot stderr ---\n" + errs
	}
	return out
}

// tailLines returns the last n lines of a file, or "" if it cannot be read.
// Test logs are small, so reading the whole file is fine.
func tailLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 || n <= 0 {
		return ""
	}
	lines := strings.SplitAfter(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "") + "\n"
}
