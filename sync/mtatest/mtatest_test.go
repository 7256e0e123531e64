package mtatest_test

import (
	"fmt"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mtatest"
)

// waitMessages waits until user's INBOX holds n messages.
func waitMessages(t *testing.T, dc *dovecottest.Server, user string, n uint32, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got uint32
	for time.Now().Before(deadline) {
		if got = *dc.Status(t, user, "INBOX").NumMessages; got == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("INBOX of %s holds %d messages after %v, want %d", user, got, within, n)
}

func send(t *testing.T, addr, id string) {
	t.Helper()
	msg := fmt.Sprintf("From: alice@acme.example\r\nTo: bob@acme.example\r\nSubject: test %s\r\nMessage-ID: <%s>\r\n\r\nhello\r\n", id, id)
	if err := smtp.SendMail(addr, nil, "alice@acme.example", []string{"bob@acme.example"}, []byte(msg)); err != nil {
		t.Fatalf("SendMail to postfix: %v", err)
	}
}

// TestDeliversIntoDovecot: a message submitted to Postfix reaches the
// recipient's INBOX over LMTP; while Dovecot is down it waits in the queue
// and is delivered once Dovecot is back, once.
func TestDeliversIntoDovecot(t *testing.T) {
	dc := dovecottest.Start(t, dovecottest.WithLMTP(),
		dovecottest.WithUsers(map[string]string{"alice": "a-pass", "bob": "b-pass"}))
	mta := mtatest.Start(t, mtatest.Options{LMTP: dc.LMTPAddr()})

	send(t, mta.Addr(), "one@acme.example")
	waitMessages(t, dc, "bob", 1, 15*time.Second)
	if n := *dc.Status(t, "alice", "INBOX").NumMessages; n != 0 {
		t.Errorf("alice's INBOX holds %d messages, want 0", n)
	}

	dc.Stop(t)
	send(t, mta.Addr(), "two@acme.example")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(mta.Log(), "status=deferred") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if q := mta.Queued(t); q != 1 {
		t.Fatalf("queue holds %d messages while Dovecot is down, want 1\n%s", q, mta.LogTail(20))
	}
	dc.Restart(t)
	waitMessages(t, dc, "bob", 2, 15*time.Second)
	time.Sleep(1500 * time.Millisecond) // a second delivery would come within a retry
	if n := *dc.Status(t, "bob", "INBOX").NumMessages; n != 2 {
		t.Fatalf("INBOX holds %d messages, want 2", n)
	}

	// Stop and Restart keep the port and the queue.
	port := mta.Port()
	mta.Stop(t)
	if mta.Pid() != 0 {
		t.Fatalf("Pid after Stop = %d", mta.Pid())
	}
	if err := smtp.SendMail(mta.Addr(), nil, "a@b.example", []string{"c@d.example"}, []byte("x")); err == nil {
		t.Fatalf("SendMail succeeded while Postfix is stopped")
	}
	mta.Restart(t)
	if mta.Port() != port {
		t.Fatalf("port after restart = %d, want %d", mta.Port(), port)
	}
	send(t, mta.Addr(), "three@acme.example")
	waitMessages(t, dc, "bob", 3, 15*time.Second)
	flags := dc.Flags(t, "bob", "INBOX")
	for uid, f := range flags {
		for _, fl := range f {
			if fl == imap.FlagSeen {
				t.Errorf("delivered uid %d is \\Seen", uid)
			}
		}
	}
}
