package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/control"
)

// TestDaemonCommands runs each command that only forwards to the daemon
// and checks what the daemon received and what the operator reads.
func TestDaemonCommands(t *testing.T) {
	d := &fakeDaemon{}
	sock := serveFake(t, d)
	tests := []struct {
		args     []string
		wantCall string
		wantOut  string
	}{
		{[]string{"pause", "--account", "sales"}, "pause sales", "resume with: mailsync resume --account sales"},
		{[]string{"resume", "-a", "sales"}, "resume sales", "resumed sales"},
		{[]string{"resync", "--account", "sales", "--folder", "Archive/2024"}, "resync sales Archive/2024", "resync of sales/Archive/2024 started"},
		{[]string{"reload"}, "reload", "added      ops\n  removed    -\n  restarted  sales"},
		{[]string{"deadletter", "list"}, `deadletters ""`, "sink refused: 422 unknown contact"},
		{[]string{"deadletter", "list", "--account", "sales"}, `deadletters "sales"`, "1 dead letter;"},
		{[]string{"deadletter", "retry", "--account", "sales", "--folder", "INBOX", "--uid", "12"}, "retry sales INBOX 12", "queued sales/INBOX uid 12"},
		{[]string{"deadletter", "drop", "--account", "sales", "--folder", "INBOX", "--uid", "12"}, "drop sales INBOX 12", "dropped sales/INBOX uid 12"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, context.Background(), append(tt.args, "--socket", sock)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			if calls := d.called(); !slices.Contains(calls, tt.wantCall) {
				t.Errorf("daemon calls %q, want %q among them", calls, tt.wantCall)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("output %q lacks %q", out, tt.wantOut)
			}
		})
	}
}

func TestDaemonCommandErrors(t *testing.T) {
	d := &fakeDaemon{}
	sock := serveFake(t, d)
	absent := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"unknown account", []string{"pause", "--account", "nobody", "--socket", sock}, 1, `mailsync: pause: unknown account "nobody"`},
		{"missing flag", []string{"pause", "--socket", sock}, 2, `required flag(s) "account" not set`},
		{"uid zero", []string{"deadletter", "drop", "-a", "sales", "-f", "INBOX", "--uid", "0", "--socket", sock}, 2, "--uid must be a positive number"},
		{"no daemon", []string{"resume", "--account", "sales", "--socket", absent}, 1, "no daemon answers on " + absent + "; start it with `mailsync run`"},
		{"bad config", []string{"reload", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, 2, "config:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, context.Background(), tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d containing %q", code, errOut, tt.code, tt.wantErr)
			}
		})
	}
}

// TestReloadRefused: a refusal is said once, in the daemon's words; any
// other failure says that the reload failed.
func TestReloadRefused(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&kindError{kind: control.ErrInvalidRequest, err: errString("reload refused, the running configuration stays: config: bad")},
			"mailsync: reload refused, the running configuration stays: config: bad\n"},
		{errString("state file: disk full"), "mailsync: reload failed: state file: disk full\n"},
	}
	for _, tt := range tests {
		sock := serveFake(t, &fakeDaemon{reloadErr: tt.err})
		_, errOut, code := runCLI(t, context.Background(), "reload", "--socket", sock)
		if code != 1 || errOut != tt.want {
			t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, tt.want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
