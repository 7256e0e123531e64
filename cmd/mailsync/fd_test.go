package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/dovecottest"
)

// TestShortOfDescriptorsStaysReachable runs the real binary under a
// descriptor limit of 160 with 150 accounts of one folder each: it warns
// at start, opens no more IMAP connections than the limit less its
// reserve (96), lets the other accounts wait for a descriptor instead of
// failing in a loop, and the control socket and /readyz keep answering.
func TestShortOfDescriptorsStaysReachable(t *testing.T) {
	const accounts, limit = 150, 160
	bin := buildBinary(t)
	srv := dovecottest.Start(t, dovecottest.WithConfig("mail_max_userip_connections = 1000\ndefault_process_limit = 1000\ndefault_client_limit = 4000"))
	dir := t.TempDir()
	pw := filepath.Join(dir, "imap.password")
	if err := os.WriteFile(pw, []byte(dovecottest.DefaultPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var b strings.Builder
	fmt.Fprintf(&b, "state: %s/state.db\nsink: {type: jsonl, jsonl: {path: %s/messages.jsonl}}\nadmin: {listen: %q}\n", dir, dir, admin)
	b.WriteString("sync: {retry_min: 50ms, retry_max: 500ms, shutdown_grace: 5s}\naccounts:\n")
	for i := range accounts {
		fmt.Fprintf(&b, "  - {id: a%03d, host: 127.0.0.1, port: %d, tls: none, username: %s, password_file: %s, folders: [inbox]}\n",
			i, srv.Port(), dovecottest.DefaultUser, pw)
	}
	cfgPath := filepath.Join(dir, "mailsync.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "run.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" run -c "$1"`, limit), bin, cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	budget := limit - reservedFDs
	var st control.Status
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, errOut, code := runCLI(t, ctx, "status", "-c", cfgPath, "--json")
		cancel()
		idle, waiting := 0, 0
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, out)
			}
			for _, a := range st.Accounts {
				switch {
				case len(a.Folders) == 1 && a.Folders[0].State == "idle":
					idle++
				case a.State == "waiting for dial slot":
					waiting++
				}
			}
		} else if !strings.Contains(errOut, "no daemon answers") {
			t.Fatalf("status: exit %d: %s", code, errOut)
		}
		if idle == budget && waiting == accounts-budget {
			break
		}
		if idle > budget {
			t.Fatalf("%d accounts idle, more than the %d connections the limit allows", idle, budget)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %d accounts idle, %d waiting for a descriptor; want %d and %d (status exit %d: %s)\n%s",
				idle, waiting, budget, accounts-budget, code, errOut, logTail(logPath))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code, _ := get(t, "http://"+admin+"/readyz"); code == 0 {
		t.Errorf("/readyz did not answer")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("run after SIGTERM: %v\n%s", err, logTail(logPath))
	}
	full, _ := os.ReadFile(logPath)
	log := string(full)
	if !strings.Contains(log, "more IMAP connections than the descriptor limit allows") {
		t.Errorf("no warning about the descriptor limit at start\n%s", logTail(logPath))
	}
	if strings.Contains(log, "too many open files") {
		t.Errorf("the daemon ran out of descriptors\n%s", logTail(logPath))
	}

	// check says the same under the same limit, and passes under a
	// sufficient one (warnings do not fail it).
	for _, tc := range []struct {
		limit int
		want  string
	}{
		{limit, fmt.Sprintf("WARN  descriptors: the accounts may open %d IMAP connections, more than the %d this limit leaves", accounts, budget)},
		{accounts + reservedFDs, fmt.Sprintf("PASS  descriptors: room for %d IMAP connections within RLIMIT_NOFILE %d", accounts, accounts+reservedFDs)},
	} {
		out, err := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" check -c "$1" -a a000`, tc.limit), bin, cfgPath).CombinedOutput()
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("check under ulimit -n %d: %v, want %q in\n%s", tc.limit, err, tc.want, out)
		}
	}
}

// logTail is the last 80 lines of the log file at path.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	return tail(string(b), 80)
}
