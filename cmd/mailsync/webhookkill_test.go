package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// webhookRig is a Dovecot INBOX synced by the real binary into a webhook
// receiver.
type webhookRig struct {
	t       *testing.T
	bin     string
	dir     string
	cfgPath string
	recv    *sinktest.Receiver
}

func newWebhookRig(t *testing.T, n int) *webhookRig {
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf("From: Grace <grace@contoso.example>\r\nTo: alice@acme.example\r\nSubject: order %d\r\n"+
			"Date: Mon, 02 Nov 2026 09:00:00 +0000\r\nMessage-ID: <order-%d@contoso.example>\r\n\r\nbody %d\r\n", i, i, i))
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	dir := t.TempDir()
	recv := sinktest.NewReceiver(t, webhookSecret)
	secretFile := filepath.Join(dir, "webhook.secret")
	pw := filepath.Join(dir, "imap.password")
	if err := os.WriteFile(secretFile, []byte(webhookSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, []byte(dovecottest.DefaultPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`state: state.db
sink: {type: webhook, webhook: {url: %q, secret_file: %q, concurrency: 4}}
log: {level: info}
sync: {retry_min: 50ms, retry_max: 300ms, shutdown_grace: 5s}
matcher:
  own_domains: [acme.example]
accounts:
  - {id: alice, host: 127.0.0.1, port: %d, tls: none, username: %s, password_file: %s, start: all, folders: [inbox], matcher: {capture: all}}
`, recv.URL(), secretFile, srv.Port(), dovecottest.DefaultUser, pw)
	cfgPath := filepath.Join(dir, "mailsync.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return &webhookRig{t: t, bin: bin, dir: dir, cfgPath: cfgPath, recv: recv}
}

func (w *webhookRig) run(name string) *exec.Cmd {
	cmd := exec.Command(w.bin, "run", "--config", w.cfgPath)
	logf, _ := os.Create(filepath.Join(w.dir, name+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	return cmd
}

// outbox is the sum of the folders' outbox entries as `status --json`
// reports them (from the daemon, or the state file when none runs).
func (w *webhookRig) outbox() int {
	w.t.Helper()
	out, err := exec.Command(w.bin, "status", "--json", "--config", w.cfgPath).Output()
	if err != nil {
		w.t.Fatalf("status: %v\n%s", err, out)
	}
	var st struct {
		Accounts []struct {
			Folders []struct {
				Outbox int `json:"outbox"`
			} `json:"folders"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		w.t.Fatalf("status --json: %v\n%s", err, out)
	}
	n := 0
	for _, a := range st.Accounts {
		for _, f := range a.Folders {
			n += f.Outbox
		}
	}
	return n
}

func accepted(recv *sinktest.Receiver) int {
	n := 0
	for _, q := range recv.Requests() {
		if q.Status == http.StatusOK {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestKill9DuringWebhookCatchUpResendsLittle: killing the binary during a
// webhook catch-up re-sends at most what was in flight (the group being
// delivered and the one being committed, 2 x 50 messages), not a whole
// 1,000-message batch.
func TestKill9DuringWebhookCatchUpResendsLittle(t *testing.T) {
	const n, kills = 3000, 5
	w := newWebhookRig(t, n)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("kill schedule seed %d", seed)
	for i := range kills {
		before := len(w.recv.Keys())
		cmd := w.run(fmt.Sprintf("run-%d", i))
		target := before + 100 + rng.IntN(400)
		waitUntil(t, 30*time.Second, "progress before the kill", func() bool { return len(w.recv.Keys()) >= target })
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	cmd := w.run("final")
	waitUntil(t, 60*time.Second, "every message", func() bool { return len(w.recv.Keys()) == n })
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	resent := accepted(w.recv) - n
	t.Logf("%d accepted POSTs for %d messages after %d kills: %d re-sent", accepted(w.recv), n, kills, resent)
	if bound := kills * 2 * 50; resent > bound {
		t.Errorf("%d POSTs re-sent after %d kills, want at most %d (what was in flight)", resent, kills, bound)
	}
}

// TestStaleOutboxAfterKill9: the receiver fails, the daemon is killed
// with entries in the outbox, the receiver recovers, the daemon restarts:
// every message arrives and status shows no pending entry, also after a
// clean restart.
func TestStaleOutboxAfterKill9(t *testing.T) {
	const n = 50
	w := newWebhookRig(t, n)
	w.recv.Script(sinktest.Step{Status: http.StatusInternalServerError, Times: 6})
	cmd := w.run("failing")
	waitUntil(t, 30*time.Second, "outbox entries while the receiver fails", func() bool {
		return len(w.recv.Requests()) >= 3 && w.outbox() > 0
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	cmd = w.run("healthy")
	waitUntil(t, 30*time.Second, "every message", func() bool { return len(w.recv.Keys()) == n })
	waitUntil(t, 10*time.Second, "an empty outbox", func() bool { return w.outbox() == 0 })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	if got := w.outbox(); got != 0 {
		t.Errorf("after a clean stop status shows %d pending, want 0", got)
	}
	cmd = w.run("again")
	time.Sleep(time.Second)
	if got := w.outbox(); got != 0 {
		t.Errorf("after a restart status shows %d pending, want 0", got)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}
