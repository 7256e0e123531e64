package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
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
		{"unknown sink type", "sink: {type: nosuchcrm}\n", "", 2, `sink.type: unknown sink type "nosuchcrm"`},
		{"missing password file", "", "", 2, "accounts[alice].password_file: "},
		{"missing token key", "tokens: {key_file: missing.key}\n", "", 2, "tokens.key_file: "},
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
			if strings.HasPrefix(tt.extra, "tokens:") {
				cfg += `  - {id: bob, host: 127.0.0.1, port: 1, tls: none, username: bob, auth: oauth2, start: all, matcher: {capture: all},
     oauth2: {provider: generic, client_id: cid, token_url: "http://127.0.0.1:1/token", device_url: "http://127.0.0.1:1/device"}}
`
			}
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

// TestCheckSaysWhatRunWillDo: a first config that captures matched mail
// with no directory warns (check and run's log), start: now says it leaves
// existing mail alone and how to backfill, and a password file others may
// read warns (issue 14, items 4 and 10).
func TestCheckSaysWhatRunWillDo(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "imap.password")
	os.WriteFile(pw, []byte("pw\n"), 0o644)
	path := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(path, []byte(`state: state.db
sink: {type: jsonl, jsonl: {path: out.jsonl}}
accounts:
  - {id: sales, host: 127.0.0.1, port: 1, tls: none, username: u, password_file: `+pw+`}
`), 0o600)
	out, _, _ := runCLI(t, context.Background(), "check", "-c", path)
	for _, w := range []string{
		"WARN  sales: accounts[sales].password_file: " + pw + " is readable by other users (mode 0644); chmod 600 it",
		"WARN  matcher: accounts[sales].matcher.capture: matched, but there is no directory to match against (no matcher.directory_file, and sink jsonl looks no records up)",
		"NOTE  sales: accounts[sales].start: now: mail already in inbox, sent is left alone; only mail arriving from now on is synced. Import older mail with: mailsync backfill --account sales --folder inbox --since 90d",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("check output lacks %q:\n%s", w, out)
		}
	}
	// With a directory file the warning goes.
	os.WriteFile(filepath.Join(dir, "dir.csv"), []byte("kind,id,email\ncontact,P-1,a@b.example\n"), 0o600)
	cfg, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("matcher: {directory_file: dir.csv}\n"), cfg...), 0o600)
	out, _, _ = runCLI(t, context.Background(), "check", "-c", path)
	if strings.Contains(out, "no directory to match against") {
		t.Errorf("warns of no directory while directory_file is set:\n%s", out)
	}
}

// TestRunSaysWhatItDoes: the daemon logs the same warnings at start, and
// the start: now note once, for an account that never synced.
func TestRunSaysWhatItDoes(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "imap.password")
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	path := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(path, []byte(`state: state.db
sink: {type: jsonl, jsonl: {path: out.jsonl}}
accounts:
  - {id: sales, host: 127.0.0.1, port: 1, tls: none, username: u, password_file: `+pw+`}
`), 0o600)
	var errOut syncBuffer
	c := exec.Command(bin, "run", "-c", path)
	c.Stderr = &errOut
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Wait()
	defer c.Process.Signal(os.Interrupt)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(errOut.String(), "only mail arriving from now on") {
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range []string{"level=WARN msg=\"accounts[sales].matcher.capture: matched, but there is no directory", "accounts[sales].start: now: mail already in inbox, sent is left alone"} {
		if strings.Count(errOut.String(), w) != 1 {
			t.Errorf("run's log has %q %d times, want once:\n%s", w, strings.Count(errOut.String(), w), errOut.String())
		}
	}
}

// TestSkippedMetricHasReason: what status explains, the metrics label: a
// first run with no directory skips everything as no_match and says so in
// mailsync_messages_skipped_total{reason="no_match"} (issue 14, item 4).
func TestSkippedMetricHasReason(t *testing.T) {
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	g := mailgen.New(7, mailgen.Options{})
	var msgs [][]byte
	for i := 0; i < 5; i++ {
		msgs = append(msgs, g.Generate(mailgen.Spec{Direction: mailgen.Inbound}).Raw)
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte(dovecottest.DefaultPassword), 0o600)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	path := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`state: state.db
sink: {type: jsonl, jsonl: {path: out.jsonl}}
admin: {listen: %q}
matcher: {own_domains: [acme.example]}
accounts:
  - {id: sales, host: 127.0.0.1, port: %d, tls: none, username: %s, password_file: pw, folders: [inbox], start: all}
`, addr, srv.Port(), dovecottest.DefaultUser)), 0o600)
	c := exec.Command(bin, "run", "-c", path)
	var errOut syncBuffer
	c.Stderr = &errOut
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Wait()
	defer c.Process.Signal(os.Interrupt)
	re := regexp.MustCompile(`(?m)^mailsync_messages_(skipped|excluded)_total\{account="sales",reason="([a-z_]+)"\} (\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	total := 0
	var body string
	for time.Now().Before(deadline) && total < 5 {
		time.Sleep(100 * time.Millisecond)
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body, total = string(b), 0
		for _, m := range re.FindAllStringSubmatch(body, -1) {
			n, _ := strconv.Atoi(m[3])
			total += n
		}
	}
	if total != 5 || !strings.Contains(body, `mailsync_messages_skipped_total{account="sales",reason="no_match"}`) {
		t.Fatalf("skipped/excluded by reason add up to %d of 5, or no no_match series:\n%s\nlog:\n%s", total, re.FindAllString(body, -1), errOut.String())
	}
}
