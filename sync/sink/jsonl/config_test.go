package jsonl_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
)

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     jsonl.Config
		wantErr  string
	}{
		{"path only", map[string]any{"path": "/x/m.jsonl"}, jsonl.Config{Path: "/x/m.jsonl"}, ""},
		{"octal string", map[string]any{"path": "p", "file_mode": "0640"}, jsonl.Config{Path: "p", FileMode: 0o640}, ""},
		{"0o string", map[string]any{"path": "p", "file_mode": "0o600"}, jsonl.Config{Path: "p", FileMode: 0o600}, ""},
		{"number", map[string]any{"path": "p", "file_mode": 0o644}, jsonl.Config{Path: "p", FileMode: 0o644}, ""},
		{"unknown key", map[string]any{"path": "p", "foo": 1}, jsonl.Config{}, "sink.jsonl.foo: unknown key"},
		{"no path", map[string]any{}, jsonl.Config{}, "sink.jsonl.path: is required"},
		{"bad mode", map[string]any{"path": "p", "file_mode": "rw-"}, jsonl.Config{}, "sink.jsonl.file_mode:"},
		{"decimal 600", map[string]any{"path": "p", "file_mode": 600}, jsonl.Config{}, "sink.jsonl.file_mode:"},
		{"path not a string", map[string]any{"path": []int{1}}, jsonl.Config{}, "sink.jsonl.path:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jsonl.ParseSettings(tt.settings)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSettings() error = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSettings() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("ParseSettings() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	s, err := sink.Open(context.Background(), "jsonl", map[string]any{"path": path, "file_mode": "0640"}, sink.Deps{})
	if err != nil {
		t.Fatalf("sink.Open(jsonl) error: %v", err)
	}
	defer s.Close()
	if _, ok := s.(*jsonl.Sink); !ok {
		t.Fatalf("sink.Open(jsonl) = %T, want *jsonl.Sink", s)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got&0o600 != 0o600 || got&0o007 != 0 {
		t.Errorf("mode = %v, want 0640 less the umask", got)
	}
	if _, err := sink.Open(context.Background(), "jsonl", map[string]any{"pth": path}, sink.Deps{}); err == nil || !strings.Contains(err.Error(), "sink.jsonl.pth") {
		t.Errorf("sink.New with a typo error = %v, want it to name sink.jsonl.pth", err)
	}
}
