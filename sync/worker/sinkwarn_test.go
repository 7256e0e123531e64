package worker

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestSinkWarnerRateLimit: one warning per new kind of error (numbers
// aside), and one at least every 30 s while the same error goes on.
func TestSinkWarnerRateLimit(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var w sinkWarner
	warn := func(msg string) { w.warn(log, errors.New(msg), 1, time.Second, 1) }
	warn("webhook: answered 500 after 2s")
	warn("webhook: answered 500 after 3s") // same kind
	if got := strings.Count(buf.String(), "sink unavailable"); got != 1 {
		t.Fatalf("%d warnings for one kind of error, want 1", got)
	}
	warn("webhook: answered 503 after 2s")
	warn("jsonl: write: no space left on device")
	if got := strings.Count(buf.String(), "sink unavailable"); got != 3 {
		t.Fatalf("%d warnings after two new kinds of error, want 3", got)
	}
	w.at = w.at.Add(-sinkWarnEvery)
	warn("jsonl: write: no space left on device")
	if got := strings.Count(buf.String(), "sink unavailable"); got != 4 {
		t.Fatalf("%d warnings after 30 s of the same error, want 4", got)
	}
}
