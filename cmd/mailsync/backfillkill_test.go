package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
)

// TestBackfillSurvivesKill9: a backfill started through the control
// socket is killed with SIGKILL mid-way; after a restart the job resumes
// from its stored position and every message is delivered exactly once.
func TestBackfillSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	const total = 5000
	g := mailgen.New(101, mailgen.Options{AvgSize: 5000})
	msgs := make([][]byte, total)
	for i := range msgs {
		msgs[i] = g.Next()
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "Archive", msgs)
	dir := t.TempDir()
	t.Setenv("RUNTIME_DIRECTORY", "")
	cfgPath := writeConfig(t, dir, srv, "")
	sock := filepath.Join(dir, control.SocketName)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--config", cfgPath)
		logf, _ := os.Create(filepath.Join(dir, "run.log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	client := func() *control.Client {
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := control.Dial(sock)
			if err == nil {
				if _, err = c.Status(context.Background()); err == nil {
					return c
				}
				c.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("control socket never answered: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	job := func(c *control.Client, id string) *control.BackfillJob {
		j, err := c.Backfill(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}

	cmd := start()
	c := client()
	j, err := c.StartBackfill(context.Background(), control.BackfillRequest{Account: "alice", Folder: "Archive", Rate: 4000})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for job(c, j.ID).Done < 1000 {
		if time.Now().After(deadline) {
			t.Fatal("backfill made no progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killedAt := countLines(filepath.Join(dir, "messages.jsonl"))
	if killedAt >= total {
		t.Fatalf("backfill finished (%d lines) before the kill; the test must kill it mid-way", killedAt)
	}
	t.Logf("killed with %d of %d delivered", killedAt, total)

	cmd = start()
	c = client()
	deadline = time.Now().Add(120 * time.Second)
	for job(c, j.ID).State != "done" {
		if time.Now().After(deadline) {
			t.Fatalf("resumed backfill did not finish: %+v", job(c, j.ID))
		}
		time.Sleep(50 * time.Millisecond)
	}
	final := job(c, j.ID)
	c.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exited with %v", err)
	}
	keys := map[string]int{}
	readKeys(t, filepath.Join(dir, "messages.jsonl"), keys)
	if len(keys) != total {
		t.Fatalf("sink holds %d keys, want %d", len(keys), total)
	}
	for k, n := range keys {
		if n != 1 {
			t.Fatalf("key %s delivered %d times", k, n)
		}
	}
	if final.Done != total {
		t.Fatalf("job done %d, want %d", final.Done, total)
	}
}
