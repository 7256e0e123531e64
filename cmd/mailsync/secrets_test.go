package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
)

// TestSecretsNeverShown runs the real binary with debug logs and the IMAP
// wire trace on, one account with a good password and one with a wrong
// one, asks for status, and searches every log line, the status output and
// every error for either password: 0 hits.
func TestSecretsNeverShown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	bin := buildBinary(t)
	const good, wrong = "Corr3ct-Horse-Battery", "Wr0ng-Staple-Secret"
	srv := dovecottest.Start(t, dovecottest.WithUsers(map[string]string{"alice": good, "bob": "bobs-real-pass"}))
	srv.Append(t, "alice", "INBOX", []byte("From: a@b.example\r\nSubject: hi\r\nMessage-ID: <s1@b.example>\r\n\r\nbody\r\n"))
	dir := t.TempDir()
	t.Setenv("RUNTIME_DIRECTORY", "")
	t.Setenv("MAILSYNC_TEST_ALICE_PW", good)
	os.WriteFile(filepath.Join(dir, "bob.pw"), []byte(wrong), 0o600)
	cfg := strings.Join([]string{
		"state: state.db",
		"sink: {type: jsonl, jsonl: {path: messages.jsonl}}",
		"log: {level: debug, trace_imap: true}",
		"matcher: {keep: {internal: true, bulk: true, auto_replies: true, bounces: true}}",
		"accounts:",
		"  - {id: alice, host: 127.0.0.1, port: " + strconv.Itoa(srv.Port()) + ", tls: none, username: alice, password_env: MAILSYNC_TEST_ALICE_PW, start: all, folders: [inbox], matcher: {capture: all}}",
		"  - {id: bob, host: 127.0.0.1, port: " + strconv.Itoa(srv.Port()) + ", tls: none, username: bob, password_file: bob.pw, start: all, folders: [inbox]}",
	}, "\n") + "\n"
	cfgPath := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)

	logPath := filepath.Join(dir, "run.log")
	logf, _ := os.Create(logPath)
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for countLines(filepath.Join(dir, "messages.jsonl")) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var outputs []string
	for _, args := range [][]string{{"status", "-c", cfgPath}, {"status", "-c", cfgPath, "--json"}, {"check", "-c", cfgPath}} {
		out, errOut, _ := runCLI(t, context.Background(), args...)
		outputs = append(outputs, out, errOut)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	logf.Close()
	logs, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logs), "wire=") {
		t.Fatalf("the wire trace did not run; the test would prove nothing:\n%.2000s", logs)
	}
	all := string(logs) + strings.Join(outputs, "\n")
	if !strings.Contains(all, "bob") || !strings.Contains(strings.ToLower(all), "auth") {
		t.Fatalf("the wrong password's failure is not reported anywhere")
	}
	for _, secret := range []string{good, wrong} {
		if strings.Contains(all, secret) {
			t.Errorf("a password appears in logs or output")
		}
	}
}
