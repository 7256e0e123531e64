package dovecottest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// testMessage returns a valid CRLF message of about size bytes whose Subject
// is "msg <i>".
func testMessage(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: msg %d\r\n", i)
	fmt.Fprintf(&b, "Message-ID: <%d@dovecottest.example>\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\n", i)
	line := strings.Repeat("x", 76) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

func subjectOf(t *testing.T, c *imapclient.Client, uid imap.UID) string {
	t.Helper()
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("fetch envelope of uid %d: %v", uid, err)
	}
	if len(msgs) != 1 || msgs[0].Envelope == nil {
		t.Fatalf("fetch envelope of uid %d: got %d messages", uid, len(msgs))
	}
	return msgs[0].Envelope.Subject
}

// assertCleanLog fails if Dovecot logged errors: permission and setup
// mistakes in the generated config show up there first.
func assertCleanLog(t *testing.T, s *Server) {
	t.Helper()
	for _, line := range strings.Split(s.LogTail(1000), "\n") {
		if strings.Contains(line, "Error:") || strings.Contains(line, "Fatal:") || strings.Contains(line, "Panic:") {
			t.Errorf("dovecot logged: %s", line)
		}
	}
}

func TestStartLoginAppendFetch(t *testing.T) {
	s := Start(t)
	if s.Pid() == 0 || s.Port() == 0 || s.TLSPort() != 0 || s.Addr() != fmt.Sprintf("127.0.0.1:%d", s.Port()) {
		t.Fatalf("Pid()=%d Port()=%d TLSPort()=%d Addr()=%q", s.Pid(), s.Port(), s.TLSPort(), s.Addr())
	}
	raw := testMessage(1, 500)
	uid := s.Append(t, DefaultUser, "INBOX", raw, imap.FlagFlagged)

	c := s.Dial(t, DefaultUser)
	if !c.Caps().Has(imap.CapCondStore) || !c.Caps().Has(imap.CapIdle) {
		t.Errorf("capabilities %v lack CONDSTORE or IDLE", c.Caps())
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if len(msgs) != 1 || !bytes.Equal(msgs[0].FindBodySection(section), raw) {
		t.Fatalf("fetched body differs from appended one (%d messages)", len(msgs))
	}
	flags := s.Flags(t, DefaultUser, "INBOX")
	if got := flags[uid]; !slices.Contains(got, imap.FlagFlagged) || slices.Contains(got, imap.FlagSeen) {
		t.Errorf("Flags()[%d] = %v, want \\Flagged without \\Seen", uid, got)
	}
	assertCleanLog(t, s)
}

func TestFoldersAndSpecialUse(t *testing.T) {
	s := Start(t, WithUsers(map[string]string{"bob": "b0b", "carol": "c4rol"}))
	s.CreateFolder(t, "bob", "CRM/Log")
	s.CreateFolder(t, "bob", "CRM/Log") // existing is fine
	s.Append(t, "bob", "Archive", testMessage(1, 200))
	s.Append(t, "bob", "Projects/2024", testMessage(2, 200)) // created on TRYCREATE

	c := s.Dial(t, "bob")
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	got := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		got[l.Mailbox] = l.Attrs
		if l.Delim != '/' {
			t.Errorf("%s has delimiter %q, want '/'", l.Mailbox, l.Delim)
		}
	}
	for name, attr := range map[string]imap.MailboxAttr{
		"Sent": imap.MailboxAttrSent, "Archive": imap.MailboxAttrArchive, "Drafts": imap.MailboxAttrDrafts,
		"Trash": imap.MailboxAttrTrash, "Junk": imap.MailboxAttrJunk, "CRM/Log": "", "Projects/2024": "", "INBOX": "",
	} {
		attrs, ok := got[name]
		if !ok {
			t.Errorf("LIST lacks %q (got %v)", name, got)
		} else if attr != "" && !slices.Contains(attrs, attr) {
			t.Errorf("%s has attributes %v, want %s", name, attrs, attr)
		}
	}
	if n := s.Status(t, "carol", "INBOX").NumMessages; n == nil || *n != 0 {
		t.Errorf("carol's INBOX has %v messages, want 0", n)
	}
	assertCleanLog(t, s)
}

func TestWrongPasswordRejected(t *testing.T) {
	s := Start(t)
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.Login(DefaultUser, "wrong").Wait(); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if strings.Contains(s.LogTail(100), DefaultPassword) {
		t.Error("log contains the password")
	}
}

func TestParallelInstances(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Port() == b.Port() || a.Dir() == b.Dir() {
		t.Fatalf("instances share port %d or dir %s", a.Port(), a.Dir())
	}
	a.Append(t, DefaultUser, "INBOX", testMessage(1, 100))
	if n := *b.Status(t, DefaultUser, "INBOX").NumMessages; n != 0 {
		t.Errorf("second instance sees %d messages, want 0", n)
	}
	if n := *a.Status(t, DefaultUser, "INBOX").NumMessages; n != 1 {
		t.Errorf("first instance has %d messages, want 1", n)
	}
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			s := Start(t)
			s.Append(t, DefaultUser, "INBOX", testMessage(i, 100))
			if n := *s.Status(t, DefaultUser, "INBOX").NumMessages; n != 1 {
				t.Errorf("instance %d has %d messages, want 1", i, n)
			}
		})
	}
}

func TestRestartKeepsPortAndData(t *testing.T) {
	s := Start(t)
	port, pid := s.Port(), s.Pid()
	uid := s.Append(t, DefaultUser, "Sent", testMessage(7, 300))
	c := s.Dial(t, DefaultUser)

	s.Restart(t)
	if s.Port() != port {
		t.Fatalf("port changed from %d to %d", port, s.Port())
	}
	if s.Pid() == pid || s.Pid() == 0 {
		t.Fatalf("pid after restart = %d, before %d", s.Pid(), pid)
	}
	select {
	case <-c.Closed():
	case <-time.After(10 * time.Second):
		t.Error("client connected before the restart is still open")
	}
	if got := s.Flags(t, DefaultUser, "Sent"); len(got) != 1 || got[uid] == nil {
		t.Errorf("after restart Sent holds %v, want uid %d", got, uid)
	}

	s.Stop(t)
	if s.Pid() != 0 {
		t.Errorf("Pid() after Stop = %d", s.Pid())
	}
	s.Stop(t) // idempotent
	s.Restart(t)
	if n := *s.Status(t, DefaultUser, "Sent").NumMessages; n != 1 {
		t.Errorf("after stop+restart Sent has %d messages, want 1", n)
	}
}

func TestSeedMaildir(t *testing.T) {
	s := Start(t)
	const n = 2000
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testMessage(i, 1000)
	}
	s.SeedMaildir(t, DefaultUser, "CRM/Log", msgs)
	st := s.Status(t, DefaultUser, "CRM/Log")
	if st.NumMessages == nil || *st.NumMessages != n || st.NumUnseen == nil || *st.NumUnseen != n {
		t.Fatalf("STATUS = messages %v unseen %v, want %d each", st.NumMessages, st.NumUnseen, n)
	}
	// A second batch lands after the first, in order, on an existing folder,
	// and a session that asked before sees it too (no stale cached STATUS).
	c := s.Dial(t, DefaultUser)
	s.SeedMaildir(t, DefaultUser, "CRM/Log", [][]byte{testMessage(n, 500)})
	if got, err := c.Status("CRM/Log", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *got.NumMessages != n+1 {
		t.Fatalf("STATUS on a long-lived session after the second batch: %v, %v; want %d messages", got, err, n+1)
	}
	s.SeedMaildir(t, DefaultUser, "INBOX", [][]byte{testMessage(0, 500)})

	sel, err := c.Select("CRM/Log", nil).Wait()
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	if sel.NumMessages != n+1 {
		t.Fatalf("EXISTS = %d, want %d", sel.NumMessages, n+1)
	}
	for _, uid := range []imap.UID{1, 2, n, n + 1} {
		if got, want := subjectOf(t, c, uid), fmt.Sprintf("msg %d", uid-1); got != want {
			t.Errorf("uid %d has subject %q, want %q", uid, got, want)
		}
	}
	section := &imap.FetchItemBodySection{Peek: true}
	got, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{RFC822Size: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(got) != 1 {
		t.Fatalf("fetch uid 1: %v (%d messages)", err, len(got))
	}
	if !bytes.Equal(got[0].FindBodySection(section), msgs[0]) || got[0].RFC822Size != int64(len(msgs[0])) {
		t.Errorf("uid 1 differs from the seeded message (size %d, want %d)", got[0].RFC822Size, len(msgs[0]))
	}
	if n := *s.Status(t, DefaultUser, "INBOX").NumMessages; n != 1 {
		t.Errorf("INBOX has %d messages, want 1", n)
	}
	assertCleanLog(t, s)
}

func TestSeedMaildirRejectsUnsupportedNames(t *testing.T) {
	s := Start(t)
	for _, name := range []string{"Entwürfe", "A&B", "x/../y", "a//b", "cur"} {
		if _, err := s.maildirPath(DefaultUser, name); err == nil {
			t.Errorf("maildirPath(%q) succeeded, want an error", name)
		}
	}
	if _, err := s.maildirPath("nobody-here", "INBOX"); err == nil {
		t.Error("maildirPath for an unknown user succeeded")
	}
}

func TestBumpUIDValidity(t *testing.T) {
	s := Start(t)
	uid := s.Append(t, DefaultUser, "Archive", testMessage(1, 300))
	s.Append(t, DefaultUser, "Archive", testMessage(2, 300))
	before := s.Status(t, DefaultUser, "Archive").UIDValidity

	next := s.BumpUIDValidity(t, DefaultUser, "Archive")
	if next == before {
		t.Fatalf("UIDVALIDITY unchanged at %d", before)
	}
	c := s.Dial(t, DefaultUser)
	sel, err := c.Select("Archive", nil).Wait()
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	if sel.UIDValidity != next || sel.NumMessages != 2 {
		t.Errorf("SELECT: UIDVALIDITY %d messages %d, want %d and 2", sel.UIDValidity, sel.NumMessages, next)
	}
	if got := subjectOf(t, c, uid); got != "msg 1" {
		t.Errorf("uid %d subject %q after bump, want %q", uid, got, "msg 1")
	}
}

func TestStartTLS(t *testing.T) {
	plainCaps := func(t *testing.T, s *Server) imap.CapSet {
		t.Helper()
		c, err := imapclient.DialInsecure(s.Addr(), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		caps, err := c.Capability().Wait()
		if err != nil {
			t.Fatalf("capability: %v", err)
		}
		return caps
	}

	t.Run("WithTLS", func(t *testing.T) {
		t.Parallel()
		s := Start(t, WithTLS())
		if !plainCaps(t, s).Has(imap.CapStartTLS) {
			t.Fatal("STARTTLS not advertised")
		}
		if s.TLSPort() == 0 || len(s.CACertPEM) == 0 || s.CAFile == "" {
			t.Fatalf("TLSPort %d, CA %d bytes, CAFile %q", s.TLSPort(), len(s.CACertPEM), s.CAFile)
		}
		opts := &imapclient.Options{TLSConfig: s.TLSConfig()}
		for name, dial := range map[string]func() (*imapclient.Client, error){
			"starttls": func() (*imapclient.Client, error) { return imapclient.DialStartTLS(s.Addr(), opts) },
			"implicit": func() (*imapclient.Client, error) { return imapclient.DialTLS(s.TLSAddr(), opts) },
		} {
			c, err := dial()
			if err != nil {
				t.Fatalf("%s: dial: %v", name, err)
			}
			if err := c.Login(DefaultUser, DefaultPassword).Wait(); err != nil {
				t.Errorf("%s: login: %v", name, err)
			}
			c.Close()
		}
		// A client that does not trust the CA must fail verification.
		if c, err := imapclient.DialTLS(s.TLSAddr(), nil); err == nil {
			c.Close()
			t.Error("TLS dial without the test CA succeeded")
		}
		assertCleanLog(t, s)
	})
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		if plainCaps(t, Start(t)).Has(imap.CapStartTLS) {
			t.Error("STARTTLS advertised without WithTLS")
		}
	})
	t.Run("WithoutStartTLS", func(t *testing.T) {
		t.Parallel()
		s := Start(t, WithoutStartTLS())
		if plainCaps(t, s).Has(imap.CapStartTLS) {
			t.Error("STARTTLS advertised with WithoutStartTLS")
		}
		if _, err := imapclient.DialStartTLS(s.Addr(), nil); err == nil {
			t.Error("STARTTLS accepted with WithoutStartTLS")
		}
	})
}

func TestKeywordsDisabled(t *testing.T) {
	permanent := func(t *testing.T, s *Server) []imap.Flag {
		t.Helper()
		sel, err := s.Dial(t, DefaultUser).Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatalf("select: %v", err)
		}
		return sel.PermanentFlags
	}
	if got := permanent(t, Start(t)); !slices.Contains(got, imap.FlagWildcard) {
		t.Errorf("default PERMANENTFLAGS %v lack \\*", got)
	}
	s := Start(t, WithKeywordsDisabled())
	if got := permanent(t, s); slices.Contains(got, imap.FlagWildcard) || !slices.Contains(got, imap.FlagSeen) {
		t.Errorf("PERMANENTFLAGS %v: want \\Seen and no \\*", got)
	}
	uid := s.Append(t, DefaultUser, "INBOX", testMessage(1, 100))
	c := s.Dial(t, DefaultUser)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{"$Synced", imap.FlagSeen}}
	if err := c.Store(imap.UIDSetNum(uid), store, nil).Close(); err != nil {
		t.Fatalf("store: %v", err)
	}
	if got := s.Flags(t, DefaultUser, "INBOX")[uid]; slices.Contains(got, "$Synced") || !slices.Contains(got, imap.FlagSeen) {
		t.Errorf("flags after STORE = %v, want \\Seen without $Synced", got)
	}
	assertCleanLog(t, s)
}

func TestWithConfig(t *testing.T) {
	s := Start(t, WithConfig("login_greeting = dovecottest says hello"))
	conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	if !strings.Contains(line, "dovecottest says hello") {
		t.Errorf("greeting %q lacks the configured text", line)
	}
}

func TestIdleSeesAppend(t *testing.T) {
	s := Start(t)
	exists := make(chan uint32, 16)
	c := s.DialOptions(t, DefaultUser, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case exists <- *d.NumMessages:
				default:
				}
			}
		},
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	s.Append(t, DefaultUser, "INBOX", testMessage(1, 100))
	select {
	case n := <-exists:
		if n != 1 {
			t.Errorf("EXISTS %d, want 1", n)
		}
	case <-time.After(15 * time.Second):
		t.Error("no EXISTS during IDLE after an APPEND from another connection")
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("close idle: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("idle: %v", err)
	}
}

func TestDoveadmAndLogTail(t *testing.T) {
	s := Start(t)
	s.Append(t, DefaultUser, "INBOX", testMessage(1, 100))
	if got := strings.TrimSpace(s.Doveadm(t, "-f", "flow", "mailbox", "status", "-u", DefaultUser, "messages", "INBOX")); got != "INBOX messages=1" {
		t.Errorf("doveadm mailbox status = %q", got)
	}
	if tail := s.LogTail(5); !strings.Contains(tail, "imap") || strings.Count(tail, "\n") > 5 {
		t.Errorf("LogTail(5) = %q", tail)
	}
}

func TestRejectsBadUsers(t *testing.T) {
	for _, users := range []map[string]string{{"a:b": "x"}, {"a": "x:y"}, {"": "x"}, {"a": "x\ny"}} {
		if _, err := renderPasswd("/tmp/x", users, nil, 0); err == nil {
			t.Errorf("renderPasswd(%q) succeeded", users)
		} else if strings.Contains(err.Error(), "x:y") || strings.Contains(err.Error(), "x\ny") {
			t.Errorf("error reveals the password: %v", err)
		}
	}
}

// TestUserUIDs: with WithUserUIDs each user's Maildir belongs to its own
// uid, and Dovecot serves both users from it (it runs their sessions as
// those uids, so a wrong owner would fail the STATUS).
func TestUserUIDs(t *testing.T) {
	s := Start(t, WithUsers(map[string]string{"u1": "p1", "u2": "p2"}), WithUserUIDs(300000))
	for i, u := range []string{"u1", "u2"} {
		s.SeedMaildir(t, u, "INBOX", [][]byte{testMessage(i, 2000)})
		if got := *s.Status(t, u, "INBOX").NumMessages; got != 1 {
			t.Fatalf("%s: STATUS MESSAGES = %d, want 1", u, got)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(homeDir(s.dir, u), "Maildir", "cur"), &st); err != nil {
			t.Fatal(err)
		}
		if got, want := int(st.Uid), 300000+i; got != want {
			t.Errorf("%s's Maildir is owned by uid %d, want %d", u, got, want)
		}
	}
}
