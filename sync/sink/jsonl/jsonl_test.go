package jsonl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

func TestContract(t *testing.T) {
	sinktest.RunContract(t, func(t *testing.T) (sink.Sink, sinktest.Inspect) {
		path := filepath.Join(t.TempDir(), "out", "messages.jsonl")
		s, err := jsonl.Open(jsonl.Config{Path: path})
		if err != nil {
			t.Fatalf("Open() error: %v", err)
		}
		return s, func(t *testing.T) map[string]int { return fileKeys(t, path) }
	})
}

// fileKeys reads the file the way a consumer would and counts keys.
func fileKeys(t *testing.T, path string) map[string]int {
	t.Helper()
	keys := map[string]int{}
	err := jsonl.ReadFile(path, func(_ int64, m *sink.Message) error {
		keys[m.Key]++
		return nil
	})
	if err != nil {
		t.Fatalf("ReadFile() error: %v", err)
	}
	return keys
}

// wantValidFile fails unless every line of path is a JSON object ending in
// a newline.
func wantValidFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("file does not end in a newline: ...%q", b[max(0, len(b)-40):])
	}
	for i, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			t.Fatalf("line %d is not valid JSON: %.60q", i+1, line)
		}
	}
}

func open(t *testing.T, path string) *jsonl.Sink {
	t.Helper()
	s, err := jsonl.Open(jsonl.Config{Path: path})
	if err != nil {
		t.Fatalf("Open() error: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// deliverAll delivers ms as one batch and returns their activity ids.
func deliverAll(t *testing.T, s *jsonl.Sink, ms []*sink.Message) []string {
	t.Helper()
	rs := make([]string, len(ms))
	for i, r := range s.Deliver(context.Background(), ms) {
		if r.Err != nil {
			t.Fatalf("DeliverBatch result %d error: %v", i, r.Err)
		}
		rs[i] = r.Receipt.Activity
	}
	return rs
}

func TestReceiptIsLineOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	s := open(t, path)
	ms := sinktest.Messages("off", 5, 1000)
	rs := deliverAll(t, s, ms)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		off, err := strconv.Atoi(strings.TrimPrefix(r, "jsonl:"))
		if err != nil {
			t.Fatalf("receipt %q is not jsonl:<offset>", r)
		}
		m, err := jsonl.Unmarshal(b[off : off+bytes.IndexByte(b[off:], '\n')])
		if err != nil {
			t.Fatalf("line at receipt %q: %v", r, err)
		}
		if m.Key != ms[i].Key || !bytes.Equal(m.Body, ms[i].Body) {
			t.Errorf("line at receipt %q has key %q, want %q with the same body", r, m.Key, ms[i].Key)
		}
	}
}

func TestRestartDedupe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	s := open(t, path)
	ms := sinktest.Messages("restart", 8, 2000)
	first := deliverAll(t, s, ms)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)

	s = open(t, path)
	if got, want := s.Len(), len(ms); got != want {
		t.Fatalf("Len() after reopen = %d, want %d", got, want)
	}
	again := deliverAll(t, s, ms)
	for i := range ms {
		if again[i] != first[i] {
			t.Errorf("receipt of %s after restart = %q, want %q", ms[i].Key, again[i], first[i])
		}
	}
	after, _ := os.Stat(path)
	if before.Size() != after.Size() {
		t.Errorf("file grew from %d to %d bytes on redelivery", before.Size(), after.Size())
	}
	for k, n := range fileKeys(t, path) {
		if n != 1 {
			t.Errorf("key %s is in the file %d times", k, n)
		}
	}
}

func TestCrashRepair(t *testing.T) {
	tests := []struct {
		name string
		tail string // appended after good lines, as a crash would leave it
	}{
		{"unterminated line", `{"key":"torn-000000","event":"message","body":"Subj`},
		{"unterminated key", `{"key":"tor`},
		{"zeros", "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"terminated but cut JSON", `{"key":"torn-000000","event":"mess` + "\n"},
		{"zeros with newline", "\x00\x00\x00\x00\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.jsonl")
			s := open(t, path)
			good := sinktest.Messages("good", 3, 1500)
			deliverAll(t, s, good)
			s.Close()
			st, _ := os.Stat(path)
			appendFile(t, path, tt.tail)

			s = open(t, path)
			wantValidFile(t, path)
			if st2, _ := os.Stat(path); st2.Size() != st.Size() {
				t.Errorf("size after repair = %d, want %d", st2.Size(), st.Size())
			}
			if got, want := s.Len(), 3; got != want {
				t.Errorf("Len() after repair = %d, want %d", got, want)
			}
			// The torn key was never acknowledged, so it is delivered anew.
			next := append(sinktest.Messages("torn", 1, 1500), sinktest.Messages("next", 2, 1500)...)
			rs := deliverAll(t, s, next)
			if want := "jsonl:" + strconv.FormatInt(st.Size(), 10); rs[0] != want {
				t.Errorf("first receipt after repair = %q, want %q", rs[0], want)
			}
			wantValidFile(t, path)
			keys := fileKeys(t, path)
			for _, m := range append(good, next...) {
				if keys[m.Key] != 1 {
					t.Errorf("key %s in file %d times, want 1", m.Key, keys[m.Key])
				}
			}
		})
	}
}

func TestCorruptMiddleLineRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	s := open(t, path)
	deliverAll(t, s, sinktest.Messages("a", 1, 100))
	s.Close()
	appendFile(t, path, "garbage\n")
	s = open(t, path)
	deliverAll(t, s, sinktest.Messages("b", 1, 100)) // the bad line was the last: cut
	s.Close()
	appendFile(t, path, "garbage\n")
	s = open(t, path)
	deliverAll(t, s, sinktest.Messages("c", 1, 100))
	s.Close()
	// Now a bad line would sit between good ones: insert one.
	b, _ := os.ReadFile(path)
	first := bytes.IndexByte(b, '\n') + 1
	bad := append(append(append([]byte{}, b[:first]...), "garbage\n"...), b[first:]...)
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := jsonl.Open(jsonl.Config{Path: path}); err == nil {
		s.Close()
		t.Fatal("Open() of a file with a bad middle line succeeded, want an error")
	} else if !strings.Contains(err.Error(), "byte "+strconv.Itoa(first)) {
		t.Errorf("Open() error = %v, want it to name byte %d", err, first)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	open(t, path)
	if s, err := jsonl.Open(jsonl.Config{Path: path}); err == nil {
		s.Close()
		t.Fatal("second Open() of the same file succeeded, want an error")
	}
}

func TestFileModeAndDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "m.jsonl")
	open(t, path)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("file mode = %v, want %v", got, want)
	}
	dst, _ := os.Stat(dir)
	if got := dst.Mode().Perm(); got&0o077 != 0 {
		t.Errorf("created directory mode = %v, want no group/other bits", got)
	}
}

func TestBodyFidelity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	s := open(t, path)
	ms := []*sink.Message{
		sinktest.Message("utf8", 3000),
		{Key: "latin1", Event: sink.EventMessage, Body: []byte("Subject: Gr\xfc\xdfe\r\n\r\n\x00\xff")},
		{Key: "flags", Event: sink.EventFlags, Flags: []string{`\Seen`}},
	}
	deliverAll(t, s, ms)
	var got []*sink.Message
	if err := jsonl.ReadFile(path, func(_ int64, m *sink.Message) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ms) {
		t.Fatalf("file has %d messages, want %d", len(got), len(ms))
	}
	for i := range ms {
		if !bytes.Equal(got[i].Body, ms[i].Body) || got[i].Event != ms[i].Event {
			t.Errorf("message %s changed on the way through the file", ms[i].Key)
		}
	}
	// A consumer reading with a line scanner sees "key" first on every line.
	f, _ := os.Open(path)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), `{"key":"`) {
			t.Errorf("line %.30q does not start with the key", sc.Text())
		}
	}
}
