package jsonl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
)

// TestDiskFullWritesWhatFits: a disk with room for less than one batch
// (the write fails with ENOSPC after some bytes) keeps the whole lines
// that fit and acknowledges exactly those; the rest fail transiently, the
// file holds no torn line, and a retry once there is room writes the rest.
func TestDiskFullWritesWhatFits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	room := int64(2500)
	s.writeFile = func(iov [][]byte) (int64, error) {
		var n int64
		for _, b := range iov {
			if int64(len(b)) > room {
				w, err := s.f.Write(b[:room])
				n, room = n+int64(w), 0
				if err != nil {
					return n, err
				}
				return n, &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
			}
			w, err := s.f.Write(b)
			n, room = n+int64(w), room-int64(w)
			if err != nil {
				return n, err
			}
		}
		return n, nil
	}
	var ms []*sink.Message
	for i := range 10 {
		ms = append(ms, &sink.Message{Key: fmt.Sprintf("msg_%02d", i), Event: sink.EventMessage,
			Subject: strings.Repeat("x", 400)})
	}
	res := s.Deliver(context.Background(), ms)
	acked := 0
	for i, r := range res {
		if r.Err == nil {
			if acked != i {
				t.Fatalf("message %d acknowledged after a failed one: not a prefix", i)
			}
			acked++
		} else if sink.IsPermanent(r.Err) || !strings.Contains(r.Err.Error(), "no space left") {
			t.Fatalf("message %d: %v, want a transient ENOSPC error", i, r.Err)
		}
	}
	if acked == 0 || acked == len(ms) {
		t.Fatalf("%d of %d acknowledged, want the prefix that fits in 2500 bytes", acked, len(ms))
	}
	b, _ := os.ReadFile(path)
	if lines := strings.Count(string(b), "\n"); lines != acked || (len(b) > 0 && b[len(b)-1] != '\n') {
		t.Fatalf("file holds %d lines (%d bytes, torn tail: %v), want %d whole lines", lines, len(b), b[len(b)-1] != '\n', acked)
	}
	room = 1 << 20
	for i, r := range s.Deliver(context.Background(), ms) {
		if r.Err != nil {
			t.Fatalf("retry of message %d: %v", i, r.Err)
		}
	}
	b, _ = os.ReadFile(path)
	if lines := strings.Count(string(b), "\n"); lines != len(ms) {
		t.Fatalf("after the retry the file holds %d lines, want %d (each key once)", lines, len(ms))
	}
}
