package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/worker"
)

// TestExitCodesAndMessages: one exit-code rule (0 ok, 1 failure, 2 usage
// or config) for every command, and each message said once in the
// admin's terms (issue 14, items 8 and 9).
func TestExitCodesAndMessages(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	badSink := filepath.Join(dir, "sink.yaml")
	os.WriteFile(badSink, []byte("state: s.db\nsink: {type: nosuchcrm}\naccounts:\n  - {id: a, host: h, username: u, password_env: HOME}\n"), 0o600)
	sock := serveFake(t, &fakeDaemon{})
	tests := []struct {
		name string
		args []string
		code int
		want string // the whole of stderr when it ends in \n, else a part
	}{
		{"version flag", []string{"--version"}, 0, ""},
		{"unknown flag", []string{"status", "--nope"}, 2, "unknown flag: --nope"},
		{"missing required flag", []string{"pause", "--socket", sock}, 2, `required flag(s) "account" not set`},
		{"bad --since", []string{"backfill", "-a", "x", "-f", "y", "--since", "yesterday"}, 2, `--since: "yesterday" is not a date`},
		{"extra argument", []string{"status", "extra"}, 2, "unknown command"},
		{"empty config, one problem a line", []string{"run", "-c", empty}, 2,
			"mailsync: config " + empty + ": 2 problems:\n  state: state file path is empty\n  accounts: no accounts configured\n"},
		{"unknown sink type is a config error", []string{"run", "-c", badSink}, 2, `sink.type: unknown sink type "nosuchcrm"`},
		{"unknown account said once", []string{"pause", "-a", "nobody", "--socket", sock}, 1, "mailsync: pause: unknown account \"nobody\"\n"},
		{"a client command with a bad config", []string{"status", "--socket", filepath.Join(dir, "none.sock"), "-c", empty}, 2, "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, context.Background(), tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if strings.HasSuffix(tt.want, "\n") && errOut != tt.want {
				t.Errorf("stderr %q, want %q", errOut, tt.want)
			} else if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q lacks %q", errOut, tt.want)
			}
		})
	}
	out, _, _ := runCLI(t, context.Background(), "--help")
	if !strings.Contains(out, "Exit status: 0 when") || !strings.Contains(out, "$MAILSYNC_CONFIG") {
		t.Errorf("--help does not document the exit codes and MAILSYNC_CONFIG:\n%s", out)
	}
	if out, _, _ := runCLI(t, context.Background(), "--version"); out != "mailsync "+Version+"\n" {
		t.Errorf("--version = %q", out)
	}
}

// TestMapErrSaysOnce: the daemon's refusals keep the worker's words and
// still match the control package's kinds.
func TestMapErrSaysOnce(t *testing.T) {
	tests := []struct {
		err  error
		kind error
		want string
	}{
		{fmt.Errorf("%w: nosuch", worker.ErrUnknownAccount), control.ErrUnknownAccount, "unknown account: nosuch"},
		{fmt.Errorf("%w: sales/INBOX uid 9", worker.ErrNoDeadLetter), control.ErrUnknownMessage, "no such dead letter: sales/INBOX uid 9"},
	}
	for _, tt := range tests {
		got := mapErr(tt.err)
		if got.Error() != tt.want || !errors.Is(got, tt.kind) {
			t.Errorf("mapErr(%v) = %q (is kind: %v), want %q", tt.err, got, errors.Is(got, tt.kind), tt.want)
		}
	}
}

// TestConfigFromEnvironment: MAILSYNC_CONFIG is every command's default.
func TestConfigFromEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "from-env.yaml")
	t.Setenv("MAILSYNC_CONFIG", path)
	out, _, code := runCLI(t, context.Background(), "check")
	if code != 2 || !strings.Contains(out, path) {
		t.Errorf("check did not read $MAILSYNC_CONFIG (%s):\n%s", path, out)
	}
}
