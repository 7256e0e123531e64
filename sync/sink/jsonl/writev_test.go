package jsonl_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
)

// TestPreparedBodiesWrittenInPlace: a group mixing bodies Prepare encoded
// (written from where Prepare left them), bodies encoded at delivery,
// bodiless messages, a key that cannot be encoded and keys repeated within
// and across concurrent deliveries gives the file exactly one line per new
// key, each the line AppendMessage makes, at the offset of its receipt.
func TestPreparedBodiesWrittenInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	s, err := jsonl.Open(jsonl.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	batch := func(w int) []*sink.Message {
		var ms []*sink.Message
		for i := range 40 {
			key := fmt.Sprintf("k%02d", i) // the same keys in every batch
			m := &sink.Message{Key: key, Event: sink.EventMessage, Subject: "s" + key}
			switch i % 4 {
			case 0, 1:
				m.Body = []byte(strings.Repeat("line \"q\"\r\n", 50*(i+1)) + key)
			case 2:
				m.Body = []byte("not prepared\r\n" + key)
			}
			ms = append(ms, m)
		}
		ms = append(ms, &sink.Message{Key: ""}, ms[3]) // refused; repeated
		var prep []*sink.Message
		for i, m := range ms {
			if (i+w)%4 < 2 {
				prep = append(prep, m)
			}
		}
		s.Prepare(prep)
		return ms
	}
	var wg stdsync.WaitGroup
	results := make([][]sink.Result, 4)
	batches := make([][]*sink.Message, 4)
	for w := range batches {
		batches[w] = batch(w)
	}
	for w := range batches {
		wg.Add(1)
		go func() { defer wg.Done(); results[w] = s.Deliver(context.Background(), batches[w]) }()
	}
	wg.Wait()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bytes.Count(b, []byte("\n")), 40; got != want {
		t.Fatalf("file holds %d lines, want %d (one per key)", got, want)
	}
	for w, rs := range results {
		for i, r := range rs {
			m := batches[w][i]
			if m.Key == "" {
				if !sink.IsPermanent(r.Err) {
					t.Errorf("empty key: %v, want a permanent error", r.Err)
				}
				continue
			}
			if r.Err != nil {
				t.Fatalf("delivery %d/%d: %v", w, i, r.Err)
			}
			off, err := strconv.Atoi(strings.TrimPrefix(r.Receipt.Activity, "jsonl:"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := jsonl.AppendMessage(nil, &sink.Message{Key: m.Key, Event: m.Event, Subject: m.Subject, Body: m.Body})
			if err != nil {
				t.Fatal(err)
			}
			if got := b[off : off+bytes.IndexByte(b[off:], '\n')]; !bytes.Equal(got, want) {
				t.Errorf("line of %s at %d is %.80q..., want %.80q...", m.Key, off, got, want)
			}
		}
	}
}
