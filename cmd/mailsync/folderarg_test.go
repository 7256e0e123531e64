package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
)

// TestCLIFolderRoles: against the real binary, `backfill --folder inbox`,
// `backfill --folder INBOX` and `resync --folder inbox` all mean the INBOX
// the daemon syncs as "inbox": they succeed, send nothing for mail already
// logged, and no phantom folder appears in `status`.
func TestCLIFolderRoles(t *testing.T) {
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	g := mailgen.New(91, mailgen.Options{AvgSize: 3000})
	var msgs [][]byte
	for range 6 {
		msgs = append(msgs, g.Generate(mailgen.Spec{}).Raw)
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, srv, "")
	jsonlPath := filepath.Join(dir, "messages.jsonl")
	daemon := exec.Command(bin, "run", "--config", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "run.log"))
	defer logf.Close()
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		_ = daemon.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "run.log"))
			t.Logf("daemon log:\n%s", b)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for countLines(jsonlPath) < len(msgs) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages delivered", countLines(jsonlPath), len(msgs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--config", cfgPath)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mailsync %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for _, f := range []string{"inbox", "INBOX"} {
		if out := cli("backfill", "-a", "alice", "-f", f); !strings.Contains(out, " done: 6 messages") {
			t.Errorf("backfill --folder %s:\n%s", f, out)
		}
	}
	cli("resync", "-a", "alice", "-f", "inbox")
	time.Sleep(2 * time.Second) // the re-scan, which must send nothing
	var st struct {
		Accounts []struct {
			Folders []struct {
				Folder string `json:"folder"`
			} `json:"folders"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(cli("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, a := range st.Accounts {
		for _, f := range a.Folders {
			folders = append(folders, f.Folder)
		}
	}
	if len(folders) != 1 || folders[0] != "INBOX" {
		t.Errorf("status folders %q, want [INBOX]", folders)
	}
	f, err := os.Open(jsonlPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		n++
		var l struct{ Event string }
		if json.Unmarshal(sc.Bytes(), &l); l.Event != "message" {
			t.Errorf("unexpected %s event: %s", l.Event, sc.Bytes()[:min(200, len(sc.Bytes()))])
		}
	}
	if n != len(msgs) {
		t.Errorf("%d lines in the sink, want %d", n, len(msgs))
	}
}
