package worker_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
)

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
