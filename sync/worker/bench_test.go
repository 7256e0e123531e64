package worker_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
)

// BenchmarkCatchUp measures a durable catch-up of 20,000 realistic messages
// (~27 KB average) from Dovecot on loopback into the JSONL sink (fsync per
// batch, bbolt commit per batch). Run it with:
//
//	go test -run '^$' -bench CatchUp -benchtime 3x ./sync/worker/
//
// It also reports a bare go-imap ENVELOPE fetch of the same folder as the
// ceiling a client library reaches here.
func BenchmarkCatchUp(b *testing.B) {
	const total = 20000
	srv := dovecottest.Start(b)
	g := mailgen.New(2026, mailgen.Options{})
	msgs := make([][]byte, total)
	var bytes int64
	for i := range msgs {
		msgs[i] = g.Next()
		bytes += int64(len(msgs[i]))
	}
	srv.SeedMaildir(b, dovecottest.DefaultUser, "INBOX", msgs)
	bare := bareEnvelopeFetch(b, srv, total) // also warms Dovecot's index
	b.ReportMetric(float64(total)/bare.Seconds(), "bare-envelope-msgs/s")

	for _, kw := range []string{"off", "$CRMLogged"} {
		b.Run("keyword="+kw, func(b *testing.B) { catchUp(b, srv, kw, total, bytes) })
	}
}

func catchUp(b *testing.B, srv *dovecottest.Server, keyword string, total int, bytes int64) {
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		r := newRig(b, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
			extra: fmt.Sprintf("sync: {logged_keyword: %q, retry_min: 50ms, retry_max: 1s}\n", keyword)})
		b.StartTimer()
		start := time.Now()
		r.start()
		waitForFast(b, 10*time.Minute, func() bool { return r.cursor("alice", "INBOX").LastUID == uint32(total) })
		elapsed += time.Since(start)
		b.StopTimer()
		r.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(total*b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(bytes*int64(b.N))/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(bytes)/float64(total), "avg-bytes")
}

func bareEnvelopeFetch(b *testing.B, srv *dovecottest.Server, total int) time.Duration {
	c := srv.Dial(b, dovecottest.DefaultUser)
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	var set imap.UIDSet
	set.AddRange(1, imap.UID(total))
	start := time.Now()
	bufs, err := c.Fetch(set, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil || len(bufs) != total {
		b.Fatalf("bare fetch: %d messages, %v", len(bufs), err)
	}
	return time.Since(start)
}

func waitForFast(t testing.TB, timeout time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkLiveLatency appends 200 messages one at a time on one
// connection and measures APPEND → message committed by mailsync, beside a
// bare IDLE client's own APPEND → EXISTS on the same server in the same run
// (Dovecot batches change notifications, which dominates both).
//
//	go test -run '^$' -bench LiveLatency -benchtime 1x ./sync/worker/
func BenchmarkLiveLatency(b *testing.B) {
	const n = 200
	srv := dovecottest.Start(b)
	r := newRig(b, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	waitForFast(b, 30*time.Second, func() bool {
		s := r.sup.Status()
		return len(s) == 1 && len(s[0].Folders) == 1 && s[0].Folders[0].State == "idle"
	})

	// A bare IDLE client on its own connection, noting when EXISTS arrives.
	var existsAt atomic.Int64
	wake := make(chan struct{}, 1)
	bare := srv.DialOptions(b, dovecottest.DefaultUser, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					existsAt.Store(time.Now().UnixNano())
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			},
		},
	})
	if _, err := bare.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	idle, err := bare.Idle()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { idle.Close(); idle.Wait() }()

	appender := srv.Dial(b, dovecottest.DefaultUser)
	g := mailgen.New(7, mailgen.Options{AvgSize: 4000})
	var ours, theirs []time.Duration
	b.ResetTimer()
	for range b.N {
		ours, theirs = ours[:0], theirs[:0]
		for range n {
			raw := g.Next()
			for len(wake) > 0 {
				<-wake
			}
			drain(r.events)
			start := time.Now()
			cmd := appender.Append("INBOX", int64(len(raw)), nil)
			cmd.Write(raw)
			cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			select {
			case <-wake:
				theirs = append(theirs, time.Duration(existsAt.Load()-start.UnixNano()))
			case <-time.After(10 * time.Second):
				b.Fatal("bare client saw no EXISTS")
			}
			select {
			case <-r.events:
				ours = append(ours, time.Since(start))
			case <-time.After(10 * time.Second):
				b.Fatal("mailsync delivered nothing")
			}
		}
	}
	b.StopTimer()
	p := func(ds []time.Duration, q float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(float64(len(s))*q))]
	}
	b.ReportMetric(float64(p(theirs, 0.5).Milliseconds()), "bare-p50-ms")
	b.ReportMetric(float64(p(theirs, 0.99).Milliseconds()), "bare-p99-ms")
	b.ReportMetric(float64(p(ours, 0.5).Milliseconds()), "mailsync-p50-ms")
	b.ReportMetric(float64(p(ours, 0.99).Milliseconds()), "mailsync-p99-ms")
	b.ReportMetric(float64((p(ours, 0.99) - p(theirs, 0.99)).Milliseconds()), "added-p99-ms")
	fmt.Fprintf(benchOut{b}, "latency over %d appends: bare p50 %s p99 %s; mailsync p50 %s p99 %s\n",
		n, p(theirs, .5), p(theirs, .99), p(ours, .5), p(ours, .99))
}

func drain[T any](ch chan T) {
	for len(ch) > 0 {
		<-ch
	}
}

type benchOut struct{ b *testing.B }

func (o benchOut) Write(p []byte) (int, error) { o.b.Log(string(p)); return len(p), nil }
