package jsonl_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

// TestOpenReadsOnlyTheTail: a reopened sink indexes its file from the key
// file without reading the lines (ScannedBytes 0) and still dedupes every
// key. A key file that is missing, torn, corrupt in the middle or left
// over from a file cut by hand costs a longer scan, never a duplicate or a
// lost key.
func TestOpenReadsOnlyTheTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	kpath := path + ".keys"
	var ms []*sink.Message
	for b := range 10 {
		ms = append(ms, sinktest.Messages(fmt.Sprintf("tail%d", b), 20, 3000)...)
	}
	s := open(t, path)
	for b := range 10 {
		deliverAll(t, s, ms[b*20:(b+1)*20])
	}
	s.Close()
	st, _ := os.Stat(path)
	size := st.Size()

	check := func(name string, wantScanned func(int64) bool, wantLen int) {
		t.Helper()
		s := open(t, path)
		defer s.Close()
		if got := s.Stats().ScannedBytes; !wantScanned(got) {
			t.Errorf("%s: Open scanned %d of %d bytes", name, got, size)
		}
		if got := s.Len(); got != wantLen {
			t.Errorf("%s: Len() = %d, want %d", name, got, wantLen)
		}
		deliverAll(t, s, ms) // everything again: nothing new may be written
		for k, n := range fileKeys(t, path) {
			if n != 1 {
				t.Fatalf("%s: key %s is in the file %d times", name, k, n)
			}
		}
		if got := len(fileKeys(t, path)); got != len(ms) {
			t.Fatalf("%s: file holds %d keys, want %d", name, got, len(ms))
		}
	}
	check("reopen", func(n int64) bool { return n == 0 }, 200)

	// Garbage after the last entry (a crash while appending to it).
	appendFile(t, kpath, "123 45 \"torn")
	check("torn key file", func(n int64) bool { return n == 0 }, 200)

	// An entry in the middle damaged: the scan starts there.
	b, _ := os.ReadFile(kpath)
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(kpath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	check("corrupt entry", func(n int64) bool { return n > 0 && n < size }, 200)

	// No key file: a full scan, and the key file is written again.
	if err := os.Remove(kpath); err != nil {
		t.Fatal(err)
	}
	check("no key file", func(n int64) bool { return n == size }, 200)
	check("rebuilt key file", func(n int64) bool { return n == 0 }, 200)

	// The JSONL file cut by hand to its first half: the key file speaks of
	// lines that are gone, so it is not trusted; the lost half is written
	// again and the rest deduped.
	half := 0
	keysOff := map[string]int64{}
	if err := jsonl.ReadFile(path, func(off int64, m *sink.Message) error { keysOff[m.Key] = off; return nil }); err != nil {
		t.Fatal(err)
	}
	cut := keysOff[ms[100].Key]
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	half = 100
	s = open(t, path)
	if got := s.Len(); got != half {
		t.Errorf("after the cut: Len() = %d, want %d", got, half)
	}
	s.Close()
	check("after the cut and redelivery", func(int64) bool { return true }, half)
}
