package demo

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"log/slog"
	"net"
	"net/mail"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t *testing.T, logs *syncBuffer) *Server {
	t.Helper()
	opts := Options{}
	if logs != nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func login(t *testing.T, s *Server, user string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr(), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(user, s.Password(user)).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// fetchAll returns every message of mailbox, parsed.
func fetchAll(t *testing.T, c *imapclient.Client, mailbox string) []*mail.Message {
	t.Helper()
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("select %s: %v", mailbox, err)
	}
	var all imap.SeqSet
	all.AddRange(1, 0) // 1:*
	bufs, err := c.Fetch(all, &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("fetch %s: %v", mailbox, err)
	}
	var msgs []*mail.Message
	for _, b := range bufs {
		m, err := mail.ReadMessage(bytes.NewReader(b.BodySection[0].Bytes))
		if err != nil {
			t.Fatalf("parse %s #%d: %v", mailbox, b.SeqNum, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func TestSeededMailboxes(t *testing.T) {
	logs := &syncBuffer{}
	s := start(t, logs)
	if got, want := strings.Join(s.Users(), ","), "sales@acme.example,support@acme.example"; got != want {
		t.Fatalf("Users() = %s, want %s", got, want)
	}
	ids := map[string][]string{} // Message-ID -> "user/mailbox" holding it
	var parents, inbound, bulk, auto int
	for _, user := range s.Users() {
		c := login(t, s, user, nil)
		list, err := c.List("", "*", nil).Collect()
		if err != nil || len(list) != 2 {
			t.Fatalf("LIST for %s = %d mailboxes, %v; want INBOX and Sent", user, len(list), err)
		}
		for mailbox, want := range map[string]int{Inbox: 40, Sent: 15} {
			msgs := fetchAll(t, c, mailbox)
			if len(msgs) != want {
				t.Fatalf("%s %s holds %d messages, want %d", user, mailbox, len(msgs), want)
			}
			for _, m := range msgs {
				id := m.Header.Get("Message-ID")
				ids[id] = append(ids[id], user+"/"+mailbox)
				if m.Header.Get("In-Reply-To") != "" {
					parents++
				}
				if mailbox == Inbox {
					inbound++
				}
				if m.Header.Get("List-Id") != "" {
					bulk++
				}
				if m.Header.Get("Auto-Submitted") != "" {
					auto++
				}
			}
		}
	}
	shared := 0
	for _, where := range ids {
		if len(where) > 1 {
			shared++
		}
	}
	t.Logf("%d distinct messages, %d in several mailboxes, %d replies, %d newsletters, %d auto-replies", len(ids), shared, parents, bulk, auto)
	if shared == 0 {
		t.Fatal("no message is in more than one mailbox; cross-mailbox de-duplication has nothing to show")
	}
	if parents < 20 || bulk+auto < 2 {
		t.Fatalf("replies = %d, newsletters+auto-replies = %d; want at least 20 and 2", parents, bulk+auto)
	}
	// Wrong credentials are refused.
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	err = c.Login("sales@acme.example", "wrong").Wait()
	var imapErr *imap.Error
	if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("login with a wrong password: %v, want AUTHENTICATIONFAILED", err)
	}
	// Passwords are per run, distinct, and never logged.
	pw1, pw2 := s.Password("sales@acme.example"), s.Password("support@acme.example")
	if len(pw1) < 20 || pw1 == pw2 || s.Password("nobody@acme.example") != "" {
		t.Fatal("passwords must be long, distinct per user, and empty for unknown users")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if out := logs.String(); strings.Contains(out, pw1) || strings.Contains(out, pw2) || !strings.Contains(out, "listening") {
		t.Fatalf("logs leak a password or miss the listening line:\n%s", out)
	}
}

func TestThreadsSpanFolders(t *testing.T) {
	s := start(t, nil)
	c := login(t, s, "sales@acme.example", nil)
	inbox := map[string]bool{}
	for _, m := range fetchAll(t, c, Inbox) {
		inbox[m.Header.Get("Message-ID")] = true
	}
	spanning := 0
	for _, m := range fetchAll(t, c, Sent) {
		if inbox[m.Header.Get("In-Reply-To")] {
			spanning++
		}
	}
	if spanning == 0 {
		t.Fatal("no Sent message replies to an INBOX message")
	}
}

func TestDirectory(t *testing.T) {
	s := start(t, nil)
	rows, err := csv.NewReader(bytes.NewReader(s.Directory())).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("directory: %d rows, %v", len(rows), err)
	}
	if got := strings.Join(rows[0], ","); got != "email,kind,id,name,company,domain,deals" {
		t.Fatalf("directory header = %q", got)
	}
}

func TestAppendLiveReachesIdleClient(t *testing.T) {
	s := start(t, nil)
	exists := make(chan string, 16)
	for _, user := range s.Users() {
		opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil && *d.NumMessages > 40 {
					select {
					case exists <- user:
					default:
					}
				}
			},
		}}
		c := login(t, s, user, opts)
		if _, err := c.Select(Inbox, nil).Wait(); err != nil {
			t.Fatalf("select: %v", err)
		}
		idle, err := c.Idle()
		if err != nil {
			t.Fatalf("idle: %v", err)
		}
		t.Cleanup(func() { _ = idle.Close() })
	}
	appended := make(chan string, 16)
	s.AppendLive(t.Context(), 20*time.Millisecond, func(user, subject string) {
		if subject == "" {
			t.Errorf("live message for %s has no subject", user)
		}
		select {
		case appended <- user:
		default:
		}
	})
	var user string
	select {
	case user = <-exists:
	case <-time.After(10 * time.Second):
		t.Fatal("no EXISTS reached an IDLE client within 10s of live appends")
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case u := <-appended:
			if u == user {
				return
			}
		case <-deadline:
			t.Fatalf("IDLE client of %s saw new mail, but onAppend never reported %s", user, user)
		}
	}
}

func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	addr := s.Addr()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := c.Login("support@acme.example", s.Password("support@acme.example")).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	s.AppendLive(context.Background(), time.Hour, nil)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s.AppendLive(context.Background(), time.Millisecond, nil) // after Close: no-op
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("dial succeeded after Close")
	}
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("client connection still open 5s after Close")
	}
	_ = c.Close()
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 100 {
			t.Fatalf("%d goroutines after Close, %d before Start", runtime.NumGoroutine(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestContextEndsServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer s.Close()
	cancel()
	for i := 0; ; i++ {
		conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if i == 100 {
			t.Fatal("server still accepts connections 2s after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := Start(ctx, Options{}); err == nil {
		t.Fatal("Start with a cancelled context succeeded")
	}
}
