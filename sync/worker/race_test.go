package worker_test

import (
	"context"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink"
)

// firstBlocksSink holds the first Deliver call after the inner sink wrote
// it, until a second call has been delivered and committed (or a few
// seconds pass): the copy that reached the sink first then commits last,
// the order that lost provenance when two mailboxes got one message at
// once.
type firstBlocksSink struct {
	sink.Sink
	committed func(keys []string) bool // the second call's keys are in the ledger

	mu     stdsync.Mutex
	calls  int
	second chan []string
}

func (s *firstBlocksSink) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	s.mu.Lock()
	s.calls++
	n := s.calls
	s.mu.Unlock()
	res := s.Sink.Deliver(ctx, ms)
	switch n {
	case 1:
		select {
		case keys := <-s.second:
			deadline := time.Now().Add(5 * time.Second)
			for !s.committed(keys) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		case <-time.After(3 * time.Second):
		}
	case 2:
		keys := make([]string, len(ms))
		for i, m := range ms {
			keys[i] = m.Key
		}
		s.second <- keys
	}
	return res
}

// TestSimultaneousCopiesKeepProvenance: every message is in two mailboxes
// and both folder workers hand it to the sink at the same moment, the
// first to reach the sink committing last. Each message must come out as
// one message event for one mailbox and one provenance event naming the
// other, and the ledger must hold both copies.
func TestSimultaneousCopiesKeepProvenance(t *testing.T) {
	const n = 20
	srv := dovecottest.Start(t, dovecottest.WithUsers(map[string]string{
		"sales": dovecottest.DefaultPassword, "support": dovecottest.DefaultPassword}))
	msgs := generate(51, n, "grace")
	srv.SeedMaildir(t, "sales", "INBOX", msgs)
	srv.SeedMaildir(t, "support", "INBOX", msgs)
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"sales": "sales", "support": "support"}, folders: []string{"inbox"}})
	fb := &firstBlocksSink{second: make(chan []string, 1)}
	fb.committed = func(keys []string) bool {
		ok := true
		r.store.View(func(tx *store.Tx) error {
			for _, k := range keys {
				e, found, _ := tx.Ledger(k)
				ok = ok && found && e.Status == store.StatusDelivered
			}
			return nil
		})
		return ok
	}
	r.cfg.Sink.Type = "wrapped"
	var err error
	fb.Sink, err = sink.Open(context.Background(), "jsonl", map[string]any{"path": r.dir + "/messages.jsonl"}, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	r.sink = fb
	r.start()
	waitFor(t, 60*time.Second, "both copies of every message", func() bool {
		ev := events(t, r)
		return len(ev["message"])+len(ev["provenance"]) >= 2*n
	})
	time.Sleep(500 * time.Millisecond) // anything extra would show now
	r.stop()

	ev := events(t, r)
	if got := len(ev["message"]); got != n {
		t.Errorf("%d message events, want %d", got, n)
	}
	if got := len(ev["provenance"]); got != n {
		t.Errorf("%d provenance events, want %d", got, n)
	}
	first := map[string]string{} // message key -> account of its message event
	for _, m := range ev["message"] {
		if len(m.Provenance) != 1 {
			t.Fatalf("message event %s has provenance %+v, want one copy", m.Key, m.Provenance)
		}
		first[m.Key] = m.Provenance[0].Account
	}
	for _, p := range ev["provenance"] {
		if len(p.Provenance) != 1 {
			t.Fatalf("provenance event %s has provenance %+v, want one copy", p.Key, p.Provenance)
		}
		acct := p.Provenance[0].Account
		msgKey := p.Key[:len(p.Key)-len(":provenance:"+acct+"/INBOX")]
		if p.Key != msgKey+":provenance:"+acct+"/INBOX" {
			t.Errorf("provenance event key %s does not name its copy %s/INBOX", p.Key, acct)
		}
		owner, ok := first[msgKey]
		switch {
		case !ok:
			t.Errorf("provenance event %s for a message with no message event", p.Key)
		case owner == acct:
			t.Errorf("provenance event %s names %s, the mailbox of the message event", p.Key, acct)
		}
	}
	r2, err := store.Open(r.cfg.State, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	r2.View(func(tx *store.Tx) error {
		for k := range first {
			e, _, _ := tx.Ledger(k)
			accts := map[string]bool{}
			for _, p := range e.Provenance {
				accts[p.Account] = true
			}
			if len(accts) != 2 {
				t.Errorf("ledger %s provenance %+v, want a copy in each mailbox", k, e.Provenance)
			}
		}
		return nil
	})
}
