package jsonl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mailsync/mailsync/sync/sink/jsonl"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

const (
	benchMsgSize = 27 << 10 // a typical business mail with a small attachment
	benchBatch   = 256
)

// BenchmarkDeliverBatch measures durable throughput: one op is a batch of
// 256 new 27 KB messages, written and fdatasync'ed.
func BenchmarkDeliverBatch(b *testing.B) {
	s, err := jsonl.Open(jsonl.Config{Path: filepath.Join(b.TempDir(), "m.jsonl")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ms := sinktest.Messages("bench", benchBatch, benchMsgSize)
	var size int64
	for _, m := range ms {
		line, _ := jsonl.Marshal(m)
		size += int64(len(line) + 1)
	}
	b.SetBytes(size)
	ctx := context.Background()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		for j, m := range ms {
			m.Key = fmt.Sprintf("bench-%d-%d", n, j)
		}
		n++
		for _, r := range s.Deliver(ctx, ms) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(n*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDeliverParallel is several folder workers delivering batches of
// 32 at once, which group commit folds into shared syncs.
func BenchmarkDeliverParallel(b *testing.B) {
	s, err := jsonl.Open(jsonl.Config{Path: filepath.Join(b.TempDir(), "m.jsonl")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(32 * benchMsgSize)
	var worker atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		w := worker.Add(1)
		ms := sinktest.Messages("p", 32, benchMsgSize)
		for n := 0; pb.Next(); n++ {
			for j, m := range ms {
				m.Key = fmt.Sprintf("p-%d-%d-%d", w, n, j)
			}
			for _, r := range s.Deliver(context.Background(), ms) {
				if r.Err != nil {
					b.Error(r.Err)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(b.N*32)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMarshal is the encoder alone, per 27 KB message.
func BenchmarkMarshal(b *testing.B) {
	m := sinktest.Message("enc", benchMsgSize)
	buf, _ := jsonl.Marshal(m)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		buf, _ = jsonl.AppendMessage(buf[:0], m)
	}
}

// BenchmarkOpen measures Open of a 20,000-line file of 27 KB messages
// (~560 MB): with its key file (the index comes from it, no line is read)
// and without (the whole file is scanned, as before key files).
//
//	go test -run '^$' -bench Open -benchtime 5x ./sync/sink/jsonl/
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "m.jsonl")
	s, err := jsonl.Open(jsonl.Config{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	ms := sinktest.Messages("open", benchBatch, benchMsgSize)
	for n := range 20000 / benchBatch {
		for j, m := range ms {
			m.Key = fmt.Sprintf("open-%d-%d", n, j)
		}
		for _, r := range s.Deliver(context.Background(), ms) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	s.Close()
	for _, keyFile := range []bool{true, false} {
		b.Run(fmt.Sprintf("keyfile=%v", keyFile), func(b *testing.B) {
			for b.Loop() {
				if !keyFile {
					os.Remove(path + ".keys")
				}
				s, err := jsonl.Open(jsonl.Config{Path: path})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(s.Stats().ScannedBytes)/1e6, "MB-scanned")
				s.Close()
			}
		})
	}
}
