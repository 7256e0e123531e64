package worker_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
)

func generate(seed int64, n int, owner string) [][]byte {
	g := mailgen.New(seed, mailgen.Options{AvgSize: 8000})
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// TestDeliversEveryMessageOnce: 2,000 messages across INBOX and Sent of
// two accounts each reach the sink exactly once, and the daemon never
// changes \Seen on the server.
func TestDeliversEveryMessageOnce(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithUsers(map[string]string{
		"sales": dovecottest.DefaultPassword, "support": dovecottest.DefaultPassword}))
	seeds := map[string]int64{"sales/INBOX": 1, "sales/Sent": 2, "support/INBOX": 3, "support/Sent": 4}
	for where, seed := range seeds {
		user, folder, _ := cut(where)
		srv.SeedMaildir(t, user, folder, generate(seed, 500, user))
	}
	before := map[string]map[imap.UID][]imap.Flag{}
	for where := range seeds {
		user, folder, _ := cut(where)
		before[where] = srv.Flags(t, user, folder)
		if got := len(before[where]); got != 500 {
			t.Fatalf("%s holds %d messages, want 500", where, got)
		}
	}

	r := newRig(t, srv, rigOptions{accounts: map[string]string{"sales": "sales", "support": "support"}})
	r.start()
	waitFor(t, 120*time.Second, "2,000 deliveries", func() bool { return len(r.jsonlKeys()) >= 2000 })
	for _, acct := range []string{"sales", "support"} {
		for _, folder := range []string{"INBOX", "Sent"} {
			waitFor(t, 10*time.Second, "cursor "+acct+"/"+folder, func() bool { return r.cursor(acct, folder).LastUID == 500 })
		}
	}
	r.stop()

	keys := r.jsonlKeys()
	if got, want := len(keys), 2000; got != want {
		t.Fatalf("sink holds %d distinct keys, want %d", got, want)
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("key %s delivered %d times, want 1", k, n)
		}
	}
	for where := range seeds {
		user, folder, _ := cut(where)
		after := srv.Flags(t, user, folder)
		// The only change the daemon may make is the logged keyword.
		for uid, fl := range after {
			after[uid] = slices.DeleteFunc(slices.Clone(fl), func(f imap.Flag) bool { return f == "$CRMLogged" })
			if len(after[uid]) == len(fl) {
				t.Fatalf("%s uid %d lacks $CRMLogged after delivery", where, uid)
			}
		}
		if !maps.EqualFunc(before[where], after, slices.Equal) {
			t.Errorf("%s: flags changed by the daemon beyond $CRMLogged (it must only PEEK)", where)
		}
		for uid, fl := range after {
			if slices.Contains(fl, imap.FlagSeen) {
				t.Fatalf("%s uid %d is \\Seen after sync", where, uid)
			}
		}
	}
}

// TestIdleDeliversNewMail: a message appended while the daemon idles
// reaches the sink, and so does one appended after Dovecot restarted under
// the daemon's IDLE connection.
func TestIdleDeliversNewMailAndSurvivesServerRestart(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(7, 20, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	waitFor(t, 30*time.Second, "catch-up", func() bool { return len(r.jsonlKeys()) == 20 })
	waitFor(t, 10*time.Second, "IDLE", func() bool { return r.sup.Status()[0].Folders[0].State == "idle" })

	g := mailgen.New(99, mailgen.Options{AvgSize: 4000})
	srv.Append(t, dovecottest.DefaultUser, "INBOX", g.Next())
	waitFor(t, 15*time.Second, "IDLE delivery", func() bool { return len(r.jsonlKeys()) == 21 })

	srv.Restart(t)
	srv.Append(t, dovecottest.DefaultUser, "INBOX", g.Next())
	// The daemon notices the dropped connection, re-dials with backoff
	// and catches up.
	waitFor(t, 30*time.Second, "delivery after server restart", func() bool { return len(r.jsonlKeys()) == 22 })
	for k, n := range r.jsonlKeys() {
		if n != 1 {
			t.Errorf("key %s delivered %d times", k, n)
		}
	}
}

// TestUIDValidityChangeRedeliversNothing: after the server renumbers a
// folder, the daemon re-scans it and recognises every message it already
// delivered.
func TestUIDValidityChangeRedeliversNothing(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(11, 50, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	waitFor(t, 30*time.Second, "catch-up", func() bool { return len(r.jsonlKeys()) == 50 })
	old := r.cursor("alice", "INBOX").UIDValidity
	r.stop()

	newValidity := srv.BumpUIDValidity(t, dovecottest.DefaultUser, "INBOX")
	if newValidity == old {
		t.Fatalf("UIDVALIDITY unchanged (%d)", old)
	}
	r.start()
	waitFor(t, 30*time.Second, "re-scan", func() bool {
		st := r.cursor("alice", "INBOX")
		return st.UIDValidity == newValidity && st.LastUID >= 50
	})
	r.stop()
	keys := r.jsonlKeys()
	if got := len(keys); got != 50 {
		t.Fatalf("sink holds %d keys, want 50", got)
	}
	lines := 0
	for _, n := range keys {
		lines += n
	}
	if lines != 50 {
		t.Fatalf("sink holds %d lines after the UIDVALIDITY change, want 50 (0 re-deliveries)", lines)
	}
}

// TestMalformedMailFlows: broken MIME, missing or duplicate Message-ID,
// 8-bit garbage, unknown charsets and the rest are each delivered with what
// parses (or parked with a reason), and the messages after them still flow.
func TestMalformedMailFlows(t *testing.T) {
	srv := dovecottest.Start(t)
	var msgs [][]byte
	samples := mailgen.Malformed()
	for _, s := range samples {
		msgs = append(msgs, s.Raw)
	}
	msgs = append(msgs, generate(5, 10, "alice")...)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	total := len(msgs)
	waitFor(t, 60*time.Second, "every message handled", func() bool {
		return r.cursor("alice", "INBOX").LastUID == uint32(total)
	})
	var parked int
	if err := r.store.View(func(tx *store.Tx) error {
		var err error
		parked, err = tx.DeadLetterCount("alice", "INBOX")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r.stop()
	delivered := r.jsonlKeys()
	if got := len(delivered) + parked; got != total {
		t.Fatalf("delivered %d + parked %d = %d, want every one of the %d messages accounted for", len(delivered), parked, got, total)
	}
	var withErrors int
	readJSONL(t, r.dir+"/messages.jsonl", func(l jsonlLine) {
		if len(l.ParseErrors) > 0 {
			withErrors++
		}
	})
	if withErrors == 0 {
		t.Errorf("no delivered message reports parse errors; the malformed samples should")
	}
	t.Logf("%d samples: %d delivered (%d with parse errors), %d parked", total, len(delivered), withErrors, parked)
}

func cut(where string) (string, string, bool) {
	for i := range where {
		if where[i] == '/' {
			return where[:i], where[i+1:], true
		}
	}
	return where, "", false
}

// TestOversizedMessageIsCutNotDropped: a message over sync.max_body_bytes
// is delivered with its first max_body_bytes and marked truncated; the
// messages around it flow as usual.
func TestOversizedMessageIsCutNotDropped(t *testing.T) {
	srv := dovecottest.Start(t)
	big := []byte("From: Big Sender <big@contoso.example>\r\nTo: alice@acme.example\r\nSubject: the big one\r\n" +
		"Message-ID: <big-1@contoso.example>\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\n\r\n" +
		strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 3000))
	const limit = 16384
	g := mailgen.New(121, mailgen.Options{AvgSize: 8000})
	size := map[string]int{"big-1@contoso.example": len(big)}
	var msgs [][]byte
	for i := range 4 {
		m := g.Generate(mailgen.Spec{})
		size[m.ID] = len(m.Raw)
		msgs = append(msgs, m.Raw)
		if i == 1 {
			msgs = append(msgs, big)
		}
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		extra: fmt.Sprintf("sync: {retry_min: 50ms, retry_max: 1s, max_body_bytes: %d}\n", limit)})
	r.start()
	waitFor(t, 30*time.Second, "5 deliveries", func() bool { return len(r.jsonlKeys()) == 5 })
	r.stop()
	var found bool
	readJSONL(t, r.dir+"/messages.jsonl", func(l jsonlLine) {
		over := size[l.MessageID] > limit
		found = found || l.MessageID == "big-1@contoso.example"
		switch {
		case over && (!l.Truncated || len(l.Body) != limit):
			t.Errorf("%s (%d bytes): truncated %v, body %d bytes; want the first %d bytes, marked truncated",
				l.MessageID, size[l.MessageID], l.Truncated, len(l.Body), limit)
		case !over && (l.Truncated || len(l.Body) != size[l.MessageID]):
			t.Errorf("%s (%d bytes): truncated %v, body %d bytes; want it whole", l.MessageID, size[l.MessageID], l.Truncated, len(l.Body))
		}
	})
	if !found {
		t.Fatal("the oversized message was not delivered")
	}
}
