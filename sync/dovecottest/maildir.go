package dovecottest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// seedBase and seedSeq make maildir file names unique and ordered across all
// SeedMaildir calls in the process. Dovecot sorts newly found files by the
// time and microsecond fields of their names before assigning UIDs, so
// deriving both from one counter makes UIDs follow seeding order.
var (
	seedBase = time.Now().Unix()
	seedSeq  atomic.Int64
)

// SeedMaildir bulk-loads msgs into folder by writing files straight into the
// user's Maildir (tmp/ then rename into cur/, unseen, not \Recent), which is
// orders of magnitude faster than APPEND. Dovecot assigns UIDs in slice order
// at the next access. The folder is created over IMAP first if missing, so
// Dovecot's mailbox list knows it. Folder names must be printable ASCII
// without '&' (Dovecot stores others in modified UTF-7); use Append for those.
func (s *Server) SeedMaildir(t testing.TB, user, folder string, msgs [][]byte) {
	t.Helper()
	dir, err := s.maildirPath(user, folder)
	if err != nil {
		t.Fatalf("dovecottest: seed %s/%q: %v", user, folder, err)
	}
	// Make Dovecot create (and index) the mailbox, INBOX included.
	err = s.session(user, func(c *imapclient.Client) error {
		if !strings.EqualFold(folder, "INBOX") {
			if err := createIfMissing(c, folder); err != nil {
				return fmt.Errorf("create: %w", err)
			}
		}
		_, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
		return err
	})
	if err != nil {
		t.Fatalf("dovecottest: seed %s/%q: %v", user, folder, err)
	}
	for _, sub := range []string{"tmp", "cur", "new"} {
		if err := s.mkdirMail(filepath.Join(dir, sub)); err != nil {
			t.Fatalf("dovecottest: seed %s/%q: %v", user, folder, err)
		}
	}
	if err := s.writeMessages(dir, msgs); err != nil {
		t.Fatalf("dovecottest: seed %s/%q: %v", user, folder, err)
	}
}

// DeliverMaildir writes msgs into an existing folder's Maildir, as a local
// delivery agent would, without an IMAP session: sessions that IDLE on the
// folder hear of them through Dovecot's inotify watch. Unlike SeedMaildir
// it is safe to call from any goroutine (it reports errors instead of
// failing the test), so a test can deliver to many users at once.
func (s *Server) DeliverMaildir(user, folder string, msgs [][]byte) error {
	dir, err := s.maildirPath(user, folder)
	if err != nil {
		return fmt.Errorf("dovecottest: deliver to %s/%q: %w", user, folder, err)
	}
	if err := s.writeMessages(dir, msgs); err != nil {
		return fmt.Errorf("dovecottest: deliver to %s/%q: %w", user, folder, err)
	}
	return nil
}

// writeMessages writes msgs with one worker per CPU; the first error wins.
func (s *Server) writeMessages(dir string, msgs [][]byte) error {
	first := seedSeq.Add(int64(len(msgs))) - int64(len(msgs))
	workers := min(runtime.GOMAXPROCS(0), max(len(msgs), 1))
	var (
		wg      stdsync.WaitGroup
		next    atomic.Int64
		errOnce stdsync.Once
		werr    error
	)
	pid := os.Getpid()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(msgs)) {
					return
				}
				seq := first + i
				if err := s.writeMessage(dir, maildirName(seq, pid, msgs[i]), msgs[i]); err != nil {
					errOnce.Do(func() { werr = err })
					next.Store(int64(len(msgs))) // stop the other workers
					return
				}
			}
		}()
	}
	wg.Wait()
	return werr
}

// maildirName builds "<sec>.M<usec>P<pid>Q<seq>.dovecottest,S=<size>,W=<vsize>".
// S= and W= spare Dovecot a stat and a full read per message; W= is the size
// with bare LF counted as CRLF, as IMAP serves it.
func maildirName(seq int64, pid int, raw []byte) string {
	sec, usec := seedBase+seq/1_000_000, seq%1_000_000
	vsize := len(raw) + bytes.Count(raw, []byte("\n")) - bytes.Count(raw, []byte("\r\n"))
	return fmt.Sprintf("%d.M%dP%dQ%d.dovecottest,S=%d,W=%d", sec, usec, pid, seq, len(raw), vsize)
}

// writeMessage follows the Maildir delivery protocol (write in tmp/, rename
// into place) so a concurrently syncing Dovecot never sees a partial file.
func (s *Server) writeMessage(dir, name string, raw []byte) error {
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create message: %w", err)
	}
	_, werr := f.Write(raw)
	if werr == nil && s.id.root {
		werr = f.Chown(s.owner(dir), s.id.mailGID)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write message: %w", werr)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "cur", name+":2,")); err != nil {
		return fmt.Errorf("move message into cur: %w", err)
	}
	return nil
}

// maildirPath maps a folder name to its directory under LAYOUT=fs: INBOX is
// the Maildir root, "CRM/Log" is <root>/CRM/Log.
func (s *Server) maildirPath(user, folder string) (string, error) {
	if _, ok := s.opts.users[user]; !ok {
		return "", fmt.Errorf("unknown user %q", user)
	}
	root := filepath.Join(homeDir(s.dir, user), "Maildir")
	if strings.EqualFold(folder, "INBOX") {
		return root, nil
	}
	for _, r := range folder {
		if r < 0x20 || r > 0x7e || r == '&' {
			return "", errors.New("folder name must be printable ASCII without '&'")
		}
	}
	for _, part := range strings.Split(folder, "/") {
		switch part {
		case "", ".", "..", "cur", "new", "tmp":
			return "", fmt.Errorf("folder name component %q not supported", part)
		}
	}
	return filepath.Join(root, filepath.FromSlash(folder)), nil
}

// mkdirMail creates path and its missing parents, giving each created
// directory to the mail user so Dovecot can write there.
func (s *Server) mkdirMail(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if err := s.mkdirMail(filepath.Dir(path)); err != nil {
		return err
	}
	// Directories above the homes only need to be traversable by the mail user.
	owned := strings.HasPrefix(path, filepath.Join(s.dir, "home")+string(filepath.Separator))
	mode := os.FileMode(0o711)
	if owned {
		mode = 0o700
	}
	if err := os.Mkdir(path, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	if s.id.root && owned {
		if err := os.Chown(path, s.owner(path), s.id.mailGID); err != nil {
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	return nil
}

// owner returns the uid that owns path, a path below a user's home: the
// user's own with WithUserUIDs, else the mail uid.
func (s *Server) owner(path string) int {
	rel, err := filepath.Rel(filepath.Join(s.dir, "home"), path)
	if err == nil && s.uids != nil {
		if uid, ok := s.uids[strings.SplitN(rel, string(filepath.Separator), 2)[0]]; ok {
			return uid
		}
	}
	return s.id.mailUID
}

// BumpUIDValidity gives folder a new, larger UIDVALIDITY while keeping its
// messages (their UIDs are kept too), as seen by the next SELECT or STATUS,
// and returns the new value. Sessions that have the folder selected are
// disconnected by Dovecot. It uses `doveadm mailbox update --uid-validity`.
func (s *Server) BumpUIDValidity(t testing.TB, user, folder string) uint32 {
	t.Helper()
	old := s.Status(t, user, folder).UIDValidity
	next := old + 1
	if next == 0 { // wrapped; 0 is not a valid UIDVALIDITY (RFC 3501 §2.3.1.1)
		next = 1
	}
	if _, err := s.runDoveadm("mailbox", "update", "-u", user, "--uid-validity", strconv.FormatUint(uint64(next), 10), folder); err != nil {
		t.Fatalf("dovecottest: bump uidvalidity of %s/%q: %v", user, folder, err)
	}
	if got := s.Status(t, user, folder).UIDValidity; got != next {
		t.Fatalf("dovecottest: bump uidvalidity of %s/%q: UIDVALIDITY is %d after update, want %d", user, folder, got, next)
	}
	return next
}
