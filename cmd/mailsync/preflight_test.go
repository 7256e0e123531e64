package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckFailsWhereRunRefuses drives the built binary: for each config
// that run refuses, check fails too, with the same key-named message and
// the same exit code (issue 14, item 5).
func TestCheckFailsWhereRunRefuses(t *testing.T) {
	bin := buildBinary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name  string
		extra string // YAML added to the base config; %d is the directory
		state string // the state key, if not the default
		code  int
		want  string
	}{
		{"missing directory file", "matcher: {directory_file: missing.csv}\n", "", 2, "matcher.directory_file: "},
		{"state directory not writable", "", "file/sub/state.db", 1, "/file/sub/state.db: not a directory"},
		{"admin.listen taken", "admin: {listen: \"" + taken.Addr().String() + "\"}\n", "", 1, "admin.listen: " + taken.Addr().String() + " is already in use"},
		{"missing token file", "admin: {token_file: missing.token}\n", "", 2, "admin.token_file: "},
		{"unknown sink type", "sink: {type: salesforce}\n", "", 2, `sink.type: unknown sink type "salesforce"`},
		{"missing password file", "", "", 2, "accounts[alice].password_file: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o600)
			pw := filepath.Join(dir, "imap.password")
			if tt.name != "missing password file" {
				os.WriteFile(pw, []byte("pw\n"), 0o600)
			}
			state := tt.state
			if state == "" {
				state = "state.db"
			}
			sinkYAML := "sink: {type: jsonl, jsonl: {path: out.jsonl}}\n"
			if strings.HasPrefix(tt.extra, "sink:") {
				sinkYAML = ""
			}
			cfg := "state: " + state + "\n" + sinkYAML + tt.extra + `accounts:
  - {id: alice, host: 127.0.0.1, port: 1, tls: none, username: alice, password_file: ` + pw + `, start: all, matcher: {capture: all}}
`
			path := filepath.Join(dir, "mailsync.yaml")
			os.WriteFile(path, []byte(cfg), 0o600)

			for _, cmd := range []string{"run", "check"} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				var out strings.Builder
				c := exec.CommandContext(ctx, bin, cmd, "--config", path)
				c.Stdout, c.Stderr = &out, &out
				err := c.Run()
				cancel()
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("%s: %v, want it to fail\n%s", cmd, err, out.String())
				}
				if got := ee.ExitCode(); got != tt.code {
					t.Errorf("%s: exit %d, want %d\n%s", cmd, got, tt.code, out.String())
				}
				if !strings.Contains(out.String(), tt.want) {
					t.Errorf("%s: output lacks %q:\n%s", cmd, tt.want, out.String())
				}
				if cmd == "check" && !strings.Contains(out.String(), "FAIL  ") {
					t.Errorf("check: no FAIL line:\n%s", out.String())
				}
			}
		})
	}
}
