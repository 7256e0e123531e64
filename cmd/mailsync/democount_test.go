package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestDemoSummaryMatchesSink: the demo's closing count of delivered
// messages is the number of message events in its JSONL file. A copy of a
// message in both demo mailboxes is a provenance event, never a second
// "deliver" line.
func TestDemoSummaryMatchesSink(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out}
	if code := m.Run(ctx, []string{"demo", "--dir", dir, "--every", "300ms"}); code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out.String())
	}
	sum := regexp.MustCompile(`(?m)^(\d+) delivered, `).FindStringSubmatch(out.String())
	if sum == nil {
		t.Fatalf("no summary line:\n%s", out.String())
	}
	delivered, _ := strconv.Atoi(sum[1])
	f, err := os.Open(filepath.Join(dir, "messages.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l struct{ Event string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		events[l.Event]++
	}
	if delivered == 0 || delivered != events["message"] {
		t.Errorf("summary says %d delivered, the JSONL holds %d message events (%v)\n%s", delivered, events["message"], events, out.String())
	}
	var deliverLines int
	for _, l := range bytes.Split(out.Bytes(), []byte("\n")) {
		if bytes.Contains(l, []byte(" deliver ")) {
			deliverLines++
		}
	}
	if deliverLines != delivered {
		t.Errorf("%d deliver lines, summary %d", deliverLines, delivered)
	}
}
