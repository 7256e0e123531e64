package worker_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/worker"
)

func TestHeaderOf(t *testing.T) {
	for _, tc := range []struct{ msg, header string }{
		{"A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n\r\n"},
		{"A: 1\nB: 2\n\nbody\n", "A: 1\nB: 2\n\n"},
		{"A: 1\r\n\nbody", "A: 1\r\n\n"},
		{"\r\nbody only\r\n", "\r\n"},
		{"A: 1\r\nB: 2\r\n", "A: 1\r\nB: 2\r\n"},
		{"A: 1", "A: 1"},
		{"", ""},
	} {
		got, _ := worker.HeaderOf([]byte(tc.msg))
		if string(got) != tc.header {
			t.Errorf("HeaderOf(%q) = %q, want %q", tc.msg, got, tc.header)
		}
	}
}

// edgeMessages are the shapes a combined fetch must cut right: each has
// no Message-ID, so its key hashes its header block, and a header cut one
// byte off from BODY[HEADER] would give it a different key from the one a
// header fetch (backfill, an earlier version) gives it.
func edgeMessages() [][]byte {
	var long strings.Builder
	for i := range 1200 { // ~70 KB of header: past the prefix
		fmt.Fprintf(&long, "X-Filler-%d: %s\r\n", i, strings.Repeat("f", 48))
	}
	big := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 3500) // ~224 KB
	return [][]byte{
		[]byte("From: a@b.example\r\nSubject: plain\r\n\r\nhello\r\n"),
		[]byte("From: a@b.example\nSubject: bare LF\n\nhello\nworld\n"),
		[]byte("From: a@b.example\r\nSubject: header only, no blank line\r\n"),
		[]byte("From: a@b.example\r\nSubject: no final newline"),
		[]byte("\r\nbody without any header\r\n"),
		[]byte("From: a@b.example\r\nSubject: long header\r\n" + long.String() + "\r\nshort body\r\n"),
		[]byte("From: a@b.example\r\nSubject: longer than the prefix\r\n\r\n" + big),
		[]byte("From: a@b.example\r\nSubject: longer than max_body_bytes\r\n\r\n" + big + big),
		exactly(64<<10, "From: a@b.example\r\nSubject: exactly the prefix\r\n\r\n"),
	}
}

func exactly(n int, header string) []byte {
	b := []byte(header)
	for len(b) < n-2 {
		b = append(b, 'x')
	}
	return append(b[:n-2], "\r\n"...)
}

// TestHeaderOfMatchesDovecot: on a real Dovecot, the header cut from
// BODY[] is byte for byte the BODY[HEADER] of the same message.
func TestHeaderOfMatchesDovecot(t *testing.T) {
	srv := dovecottest.Start(t)
	msgs := edgeMessages()
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	for uid, want := range serverHeaders(t, srv) {
		body := want.body
		got, _ := worker.HeaderOf(body)
		if !bytes.Equal(got, want.header) {
			t.Errorf("uid %d: header cut from BODY[] is %d bytes (%q...), BODY[HEADER] is %d (%q...)",
				uid, len(got), head(got), len(want.header), head(want.header))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 60)] }

type serverCopy struct{ header, body []byte }

// serverHeaders fetches BODY[HEADER] and BODY[] of every message in INBOX
// with a bare client.
func serverHeaders(t *testing.T, srv *dovecottest.Server) map[imap.UID]serverCopy {
	t.Helper()
	c := srv.Dial(t, dovecottest.DefaultUser)
	defer c.Close()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	hdr := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	full := &imap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(imap.UIDSetNum(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), &imap.FetchOptions{UID: true,
		BodySection: []*imap.FetchItemBodySection{hdr, full}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[imap.UID]serverCopy{}
	for _, b := range bufs {
		out[b.UID] = serverCopy{header: b.FindBodySection(hdr), body: b.FindBodySection(full)}
	}
	if len(out) != len(edgeMessages()) {
		t.Fatalf("server holds %d messages, want %d", len(out), len(edgeMessages()))
	}
	return out
}

// TestCatchUpWholeFetch: a catch-up that fetches messages whole (header
// and body in one FETCH) delivers each under the key its BODY[HEADER]
// gives it, with the body the server holds: whole below the prefix, after
// a body fetch above it, truncated above sync.max_body_bytes, and with the
// header fetched on its own when it is longer than the prefix. Under a
// max_body_bytes below the prefix, the prefix is the truncated body.
func TestCatchUpWholeFetch(t *testing.T) {
	srv := dovecottest.Start(t)
	msgs := edgeMessages()
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	want := serverHeaders(t, srv)
	for _, maxBody := range []int{300 << 10, 32 << 10} {
		t.Run(fmt.Sprintf("max_body_bytes=%d", maxBody), func(t *testing.T) { testCatchUpWholeFetch(t, srv, want, maxBody) })
	}
}

func testCatchUpWholeFetch(t *testing.T, srv *dovecottest.Server, want map[imap.UID]serverCopy, maxBody int) {
	msgs := edgeMessages()
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		extra: fmt.Sprintf("sync: {max_body_bytes: %d, retry_min: 50ms, retry_max: 1s}\n", maxBody)})
	r.start()
	waitFor(t, 60*time.Second, "the catch-up", func() bool { return r.cursor("alice", "INBOX").LastUID == uint32(len(msgs)) })
	r.stop()
	lines := map[string]jsonlLine{}
	readJSONL(t, filepath.Join(r.dir, "messages.jsonl"), func(l jsonlLine) { lines[l.Key] = l })
	if got := len(lines); got != len(msgs) {
		t.Errorf("sink holds %d messages, want %d", got, len(msgs))
	}
	for uid, sc := range want {
		key, _ := store.Identify(sc.header)
		l, ok := lines[key.Key]
		if !ok {
			t.Errorf("uid %d (%q...): no line under the key of its BODY[HEADER]", uid, head(sc.header))
			continue
		}
		body, truncated := sc.body, false
		if len(body) > maxBody {
			body, truncated = body[:maxBody], true
		}
		if l.Body != string(body) || l.Truncated != truncated {
			t.Errorf("uid %d: body is %d bytes (truncated %v), want %d (truncated %v)", uid, len(l.Body), l.Truncated, len(body), truncated)
		}
	}
}
