package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink"
)

// downSink fails every message while down is set.
type downSink struct {
	sink.Sink
	down atomic.Bool
}

func (s *downSink) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	if s.down.Load() {
		res := make([]sink.Result, len(ms))
		for i := range res {
			res[i].Err = errors.New("webhook: crm.example answered 500 Internal Server Error")
		}
		return res
	}
	return s.Sink.Deliver(ctx, ms)
}

// TestSinkStallShowsInStatus: while the sink fails, the folder's status
// carries the sink's error, and once that lasts beyond
// sync.stall_threshold the folder is reported stalled (what /readyz
// answers 503 on); when the sink is back, everything arrives and the
// stall clears.
func TestSinkStallShowsInStatus(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(111, 20, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		extra: "sync: {retry_min: 100ms, retry_max: 300ms, stall_threshold: 1s, shutdown_grace: 5s}\n"})
	inner, err := sink.Open(context.Background(), "jsonl", map[string]any{"path": r.dir + "/messages.jsonl"}, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ds := &downSink{Sink: inner}
	ds.down.Store(true)
	r.cfg.Sink.Type = "wrapped"
	r.sink = ds
	r.start()
	waitFor(t, 10*time.Second, "the folder reported stalled on the sink", func() bool {
		f := r.sup.Status()[0].Folders
		return len(f) == 1 && f[0].Stalled != ""
	})
	f := r.sup.Status()[0].Folders[0]
	if !strings.Contains(f.LastError, "500 Internal Server Error") || !strings.Contains(f.Stalled, "500") || f.ConsecutiveErrors == 0 {
		t.Errorf("status while the sink fails: last_error %q, stalled %q, consecutive_errors %d", f.LastError, f.Stalled, f.ConsecutiveErrors)
	}
	ds.down.Store(false)
	waitFor(t, 10*time.Second, "delivery after the sink is back", func() bool { return len(r.jsonlKeys()) == 20 })
	waitFor(t, 5*time.Second, "the stall cleared", func() bool { return r.sup.Status()[0].Folders[0].Stalled == "" })
}
