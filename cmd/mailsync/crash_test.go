package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
)

// buildBinary compiles the real mailsync binary once per test run.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mailsync")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeConfig writes a config for one Dovecot user syncing INBOX into a
// JSONL sink, capturing every message.
func writeConfig(t *testing.T, dir string, srv *dovecottest.Server, extra string) string {
	t.Helper()
	pw := filepath.Join(dir, "imap.password")
	if err := os.WriteFile(pw, []byte(dovecottest.DefaultPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`state: state.db
sink: {type: jsonl, jsonl: {path: messages.jsonl}}
log: {level: info}
sync: {retry_min: 50ms, retry_max: 500ms, batch_size: 32, shutdown_grace: 5s}
matcher:
  own_domains: [acme.example]
  keep: {internal: true, bulk: true, auto_replies: true, bounces: true}
accounts:
  - id: alice
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password_file: %s
    start: all
    folders: [inbox]
    matcher: {capture: all}
%s`, srv.Port(), dovecottest.DefaultUser, pw, extra)
	path := filepath.Join(dir, "mailsync.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// countLines counts complete lines in the JSONL file (a torn last line,
// which a kill can leave, is not counted).
func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// TestKill9DuringCatchUp kills the real binary with SIGKILL at random
// moments during a 5,000-message catch-up, ten times, then runs it cleanly:
// the sink must hold exactly the source set with no duplicate key.
func TestKill9DuringCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and syncs 5,000 messages; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	const total = 5000
	g := mailgen.New(42, mailgen.Options{AvgSize: 6000})
	want := map[string]bool{}
	msgs := make([][]byte, total)
	for i := range msgs {
		m := g.Generate(mailgen.Spec{})
		msgs[i] = m.Raw
		want[m.ID] = true
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)

	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, srv, "")
	jsonlPath := filepath.Join(dir, "messages.jsonl")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("kill schedule seed %d", seed)

	for i := range 10 {
		before := countLines(jsonlPath)
		cmd := exec.Command(bin, "run", "--config", cfgPath)
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("run-%d.log", i)))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a random point of the remaining work, spread so that all
		// ten kills land before the catch-up ends (or after a bounded wait).
		remaining := total - before
		target := before + 1 + rng.IntN(max(1, remaining/(10-i)))
		deadline := time.Now().Add(10 * time.Second)
		for countLines(jsonlPath) < target && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
		t.Logf("run %d killed with %d lines in the sink", i, countLines(jsonlPath))
	}

	// A clean run finishes the job and stops gracefully on SIGTERM.
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "final.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(120 * time.Second)
	for countLines(jsonlPath) < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the last commit land
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "final.log"))
		t.Fatalf("clean run exited with %v\n%s", err, b)
	}
	logf.Close()

	keys, ids := map[string]int{}, map[string]int{}
	f, err := os.Open(jsonlPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l struct {
			Key       string `json:"key"`
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("invalid JSONL line: %v", err)
		}
		keys[l.Key]++
		ids[l.MessageID]++
	}
	dups := 0
	for k, n := range keys {
		if n > 1 {
			dups++
			t.Errorf("key %s delivered %d times", k, n)
		}
	}
	missing := 0
	for id := range want {
		if ids[id] == 0 {
			missing++
		}
	}
	if got := len(keys); got != total || missing != 0 || dups != 0 {
		t.Fatalf("sink holds %d keys for %d messages: %d missing, %d duplicated", got, total, missing, dups)
	}

	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Fatalf("state file inconsistent after 10 kills: %v", err)
	}
	var cur store.FolderState
	_ = st.View(func(tx *store.Tx) error { cur, err = tx.Folder("alice", "INBOX"); return err })
	if cur.LastUID != total {
		t.Fatalf("cursor = %d, want %d", cur.LastUID, total)
	}
}

// readKeys counts the JSONL file's lines per key.
func readKeys(t *testing.T, path string, keys map[string]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("invalid JSONL line: %v", err)
		}
		keys[l.Key]++
	}
}
