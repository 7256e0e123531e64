package worker_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink"
)

// flakySink fails 30% of its messages transiently and, like a webhook
// client after a 5xx, gives up on the rest of that call; the message with
// key bad always fails.
type flakySink struct {
	sink.Sink
	mu  stdsync.Mutex
	rng *rand.Rand
	bad string
}

func (s *flakySink) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	res := make([]sink.Result, len(ms))
	var ok []int
	var stop error
	s.mu.Lock()
	for i, m := range ms {
		switch {
		case stop != nil:
			res[i].Err = stop
		case m.Key == s.bad || s.rng.Float64() < 0.3:
			res[i].Err = errors.New("500 Internal Server Error")
			stop = errors.New("not sent after an earlier failure in the batch")
		default:
			ok = append(ok, i)
		}
	}
	s.mu.Unlock()
	if len(ok) > 0 {
		sub := make([]*sink.Message, len(ok))
		for j, i := range ok {
			sub[j] = ms[i]
		}
		for j, r := range s.Sink.Deliver(ctx, sub) {
			res[ok[j]] = r
		}
	}
	return res
}

// TestPartlyFailingSink: with 30% of deliveries failing (and the rest of
// such a call dropped), every message still arrives quickly, because a
// retry sends each message on its own and progress resets the backoff;
// one message that always fails is parked with its reason after
// sync.park_after, and the cursor passes it.
func TestPartlyFailingSink(t *testing.T) {
	const n = 300
	srv := dovecottest.Start(t)
	msgs := generate(101, n, "alice")
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		extra: "sync: {retry_min: 200ms, retry_max: 3s, park_after: 2s, shutdown_grace: 5s}\n"})
	inner, err := sink.Open(context.Background(), "jsonl", map[string]any{"path": r.dir + "/messages.jsonl"}, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	bad := keyOf(t, msgs[n/2])
	r.cfg.Sink.Type = "wrapped"
	r.sink = &flakySink{Sink: inner, rng: rand.New(rand.NewPCG(7, 7)), bad: bad}
	start := time.Now()
	r.start()
	waitFor(t, 40*time.Second, "the cursor at the end", func() bool { return r.cursor("alice", "INBOX").LastUID == n })
	took := time.Since(start)
	dls, err := r.sup.DeadLetters("alice")
	if err != nil {
		t.Fatal(err)
	}
	status := r.sup.Status()
	r.stop()
	t.Logf("%d messages through a 30%%-failing sink in %s", n, took.Round(time.Millisecond))
	if took > 25*time.Second {
		t.Errorf("took %s, want well under 25s", took)
	}
	keys := r.jsonlKeys()
	if got := len(keys); got != n-1 {
		t.Errorf("sink holds %d keys, want %d", got, n-1)
	}
	if keys[bad] != 0 {
		t.Errorf("the always-failing message reached the sink")
	}
	if len(dls) != 1 || dls[0].Key != bad || !strings.Contains(dls[0].Reason, "sink kept failing") {
		t.Fatalf("dead letters %+v, want the always-failing message parked with the reason", dls)
	}
	if f := status[0].Folders[0]; f.Stalled != "" {
		t.Errorf("folder still stalled: %q", f.Stalled)
	}
}

// keyOf is a raw message's idempotency key, as the pipeline derives it.
func keyOf(t *testing.T, raw []byte) string {
	t.Helper()
	i := strings.Index(string(raw), "\r\n\r\n")
	if i < 0 {
		t.Fatal("message without a header/body separator")
	}
	id, _ := store.Identify(raw[:i+4])
	return id.Key
}
