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
	"github.com/mailsync/mailsync/sync/mailgen"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

// TestSIGTERMDuringSlowWebhookBatch: SIGTERM while a slow CRM is taking a
// batch: the daemon lets the batch finish within the grace period (or
// leaves it behind the cursor), exits 0, and a restart delivers the rest:
// every message accepted, none lost.
func TestSIGTERMDuringSlowWebhookBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	const n = 12
	g := mailgen.New(81, mailgen.Options{AvgSize: 3000})
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = g.Next()
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	recv := sinktest.NewReceiver(t, secret)
	recv.SetDelay(1500 * time.Millisecond) // 12 messages, 2 at a time: longer than the 5s grace
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook.secret")
	os.WriteFile(secretFile, []byte(secret), 0o600)
	cfgPath := writeConfig(t, dir, srv, "")
	cfg, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(replaceSink(string(cfg), fmt.Sprintf("sink: {type: webhook, webhook: {url: %q, secret_file: %q, concurrency: 2}}", recv.URL(), secretFile))), 0o600)

	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config", cfgPath)
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("run-%d.log", time.Now().UnixNano())))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := run()
	recv.WaitFor(t, 1, 30*time.Second)
	stopAt := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exited with %v after SIGTERM, want 0", err)
	}
	if took := time.Since(stopAt); took > 10*time.Second {
		t.Fatalf("graceful stop took %s, beyond the 5s grace", took)
	}
	accepted := len(recv.Keys())
	t.Logf("stopped after %d of %d accepted", accepted, n)
	if accepted == n {
		t.Fatal("the whole folder went through before the stop; the test must stop mid-batch")
	}

	recv.SetDelay(0)
	cmd = run()
	recv.WaitFor(t, n, 60*time.Second)
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("second run exited with %v", err)
	}
	keys := recv.Keys()
	if len(keys) != n {
		t.Fatalf("receiver accepted %d distinct messages, want %d", len(keys), n)
	}
	for k, c := range keys {
		if c != 1 {
			t.Errorf("key %s accepted %d times", k, c)
		}
	}
}

func replaceSink(cfg, sink string) string {
	lines := strings.Split(cfg, "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "sink:") {
			lines[i] = sink
		}
	}
	return strings.Join(lines, "\n")
}
