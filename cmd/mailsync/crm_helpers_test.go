package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
)

// Helpers of the CRM tests through the binary (Pipedrive, Salesforce).

// crmMail is a plain message from one sender to the mailbox owner.
func crmMail(i int, from string) []byte {
	return fmt.Appendf(nil, "Message-ID: <crm-%04d@mail.example>\r\nDate: Mon, %d Mar 2025 09:%02d:00 +0000\r\n"+
		"From: %s\r\nTo: Alice <alice@acme.example>\r\nSubject: Quote %d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Hello <b>Alice</b>, about quote %d.\r\n", i, 3+i%3, i%60, from, i, i)
}

// runDaemon starts the binary; stop it with SIGTERM or SIGKILL.
func runDaemon(t *testing.T, bin, cfg, logPath string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", cfg)
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		logf.Close()
	})
	return cmd
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stopDaemon(t *testing.T, cmd *exec.Cmd, logPath string) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("daemon exited with %v\n%s", err, b)
	}
}

// seedCRMMail puts 80 messages in alice's INBOX: 40 from a person
// (ada@contoso.example), 20 from a colleague only the domain knows, 20
// from a stranger (not logged under capture: matched). It returns how
// many the CRM should log.
func seedCRMMail(t *testing.T, srv *dovecottest.Server) int {
	t.Helper()
	var msgs [][]byte
	for i := range 80 {
		from := "Ada Liu <ada@contoso.example>"
		switch {
		case i%4 == 1:
			from = "Bob <bob@contoso.example>"
		case i%4 == 3:
			from = "Stranger <x@nowhere.example>"
		}
		msgs = append(msgs, crmMail(i, from))
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	return 60
}

// crmConfig writes the test config with sink (a YAML flow mapping),
// capture: matched, small batches and a 1 s unlink poll.
func crmConfig(t *testing.T, dir string, srv *dovecottest.Server, sink string) string {
	t.Helper()
	cfg := writeConfig(t, dir, srv, "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(b), "sink: {type: jsonl, jsonl: {path: messages.jsonl}}", "sink: "+sink, 1)
	conf = strings.Replace(conf, "matcher: {capture: all}", "matcher: {capture: matched}", 1)
	conf = strings.Replace(conf, "batch_size: 32", "batch_size: 8, poll_interval: 1s", 1)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// keywordCount is how many of alice's INBOX messages carry kw.
func keywordCount(t *testing.T, srv *dovecottest.Server, kw string) int {
	t.Helper()
	n := 0
	for _, fl := range srv.Flags(t, dovecottest.DefaultUser, "INBOX") {
		for _, f := range fl {
			if string(f) == kw {
				n++
			}
		}
	}
	return n
}

// dumpLogsIfFailed logs the daemon's log files of a failed test.
func dumpLogsIfFailed(t *testing.T, dir string, names ...string) {
	if !t.Failed() {
		return
	}
	for _, f := range names {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		t.Logf("%s:\n%s", f, b)
	}
}
