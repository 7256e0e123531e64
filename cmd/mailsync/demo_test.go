package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// runDemoFor runs `mailsync demo --dir dir` until it has printed n live
// deliveries, then stops it as Ctrl-C would and returns the summary's
// delivered count.
func runDemoFor(t *testing.T, dir string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	m := &Main{Stdout: &out, Stderr: &errOut}
	done := make(chan int, 1)
	go func() { done <- m.Run(ctx, []string{"demo", "--dir", dir, "--every", "100ms"}) }()
	live := regexp.MustCompile(`(?m)new mail arrives`)
	deadline := time.Now().Add(30 * time.Second)
	for len(live.FindAllString(out.String(), -1)) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let the last live mail be delivered
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	sum := regexp.MustCompile(`(?m)^(\d+) delivered`).FindStringSubmatch(out.String())
	if sum == nil {
		t.Fatalf("no summary line:\n%s", out.String())
	}
	n, _ := strconv.Atoi(sum[1])
	return n
}

// TestDemoDirCreatedAndReused: --dir may name a directory that does not
// exist yet, and a second run in it delivers its mail and says so
// (issue 14, item 7).
func TestDemoDirCreatedAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	first := runDemoFor(t, dir)
	if first == 0 {
		t.Fatal("first run: 0 delivered")
	}
	jsonl := filepath.Join(dir, "messages.jsonl")
	before := countLines(jsonl)
	second := runDemoFor(t, dir)
	after := countLines(jsonl)
	if second == 0 {
		t.Fatal("second run in the same --dir: 0 delivered")
	}
	// What the summary calls delivered reached the sink as new lines.
	if got := after - before; got < second {
		t.Errorf("second run says %d delivered, the JSONL file grew by %d lines", second, got)
	}
}
