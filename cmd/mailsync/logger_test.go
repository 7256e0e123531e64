package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/config"
)

// TestJSONLogsWriteDurationsAsText: a duration in a JSON log line reads
// "873ms", not 873000000 nanoseconds.
func TestJSONLogsWriteDurationsAsText(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	newLogger(config.Log{Level: "info", Format: "json"}, f).Warn("retrying", "retry_in", 873*time.Millisecond)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, `"retry_in":"873ms"`) {
		t.Fatalf("log line %s lacks \"retry_in\":\"873ms\"", got)
	}
}
