// Package mtatest starts a private Postfix for integration tests: a real
// MTA on 127.0.0.1 that accepts mail from loopback without authentication
// and hands every message, whatever its domain, to an LMTP server (a
// Dovecot started by dovecottest with WithLMTP).
//
// Each Server is its own Postfix master (/usr/lib/postfix/sbin/master -c
// DIR, in the foreground, our child) with its own config_directory,
// queue_directory, data_directory and log file in a temp directory; nothing
// from /etc/postfix is read and the system's Postfix is never touched.
// Postfix's master must run as root (its daemons drop to mail_owner, the
// Debian package's "postfix" user). Start fails the test (it never skips)
// when Postfix is missing or the test does not run as root: `bash .ci/test`
// installs Debian's postfix package and runs as root in CI.
//
// Deferred mail is retried every second, so a test that stops the LMTP
// server and starts it again sees the queued mail delivered within seconds.
package mtatest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths of Debian's postfix package.
const (
	masterPath = "/usr/lib/postfix/sbin/master"
	daemonDir  = "/usr/lib/postfix/sbin"
	mailOwner  = "postfix"
	setgidGrp  = "postdrop"
)

// Bounds on waiting for the master: generous for a loaded CI machine, tight
// enough that a hang fails the test.
const (
	readyTimeout = 20 * time.Second
	termTimeout  = 5 * time.Second
)

// Options configure a Server.
type Options struct {
	// LMTP is the host:port every message is delivered to (dovecottest's
	// Server.LMTPAddr); required.
	LMTP string
}

// Server is one running Postfix owned by a test. Its methods that take a
// testing.TB must run on the test's goroutine.
type Server struct {
	dir  string
	opts Options

	mu   sync.Mutex
	port int
	proc *process // nil while stopped
}

// Start writes a fresh Postfix instance and starts it; it is stopped and
// its files removed in t.Cleanup (the last 50 log lines are logged first
// if the test failed).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.LMTP == "" {
		t.Fatalf("mtatest: Options.LMTP is required (dovecottest.WithLMTP and Server.LMTPAddr)")
	}
	if _, err := os.Stat(masterPath); err != nil {
		t.Fatalf("mtatest: %s not found: run `bash .ci/test`, which installs Debian's postfix package", masterPath)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("mtatest: Postfix's master must run as root (CI runs the tests as root)")
	}
	owner, err := user.Lookup(mailOwner)
	if err != nil {
		t.Fatalf("mtatest: user %s (created by Debian's postfix package): %v", mailOwner, err)
	}
	grp, err := user.LookupGroup(setgidGrp)
	if err != nil {
		t.Fatalf("mtatest: group %s (created by Debian's postfix package): %v", setgidGrp, err)
	}
	dir, err := os.MkdirTemp(tempBase(), "mtatest-")
	if err != nil {
		t.Fatalf("mtatest: %v", err)
	}
	s := &Server{dir: dir, opts: opts}
	t.Cleanup(func() { s.cleanup(t) })
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(grp.Gid)
	if err := s.prepare(uid, gid); err != nil {
		t.Fatalf("mtatest: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err = s.pickPort(); err == nil {
			err = s.launch()
		}
		if err == nil || !errors.Is(err, errAddrInUse) || attempt == 2 {
			break
		}
	}
	if err != nil {
		t.Fatalf("mtatest: start: %v\n%s", err, s.LogTail(30))
	}
	return s
}

// tempBase prefers /dev/shm, as dovecottest does: queue files are created
// and fsynced per message.
func tempBase() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() && syscall.Access("/dev/shm", 0o3) == nil {
		return "/dev/shm"
	}
	return os.TempDir()
}

// queueDirs are the queue_directory's subdirectories and their modes, as
// Debian's post-install creates them; public and maildrop belong to the
// setgid group.
var queueDirs = []struct {
	name    string
	mode    os.FileMode
	postdrp bool
}{
	{"active", 0o700, false}, {"bounce", 0o700, false}, {"corrupt", 0o700, false},
	{"defer", 0o700, false}, {"deferred", 0o700, false}, {"flush", 0o700, false},
	{"hold", 0o700, false}, {"incoming", 0o700, false}, {"private", 0o700, false},
	{"saved", 0o700, false}, {"trace", 0o700, false},
	{"maildrop", 0o730 | os.ModeSticky, true}, {"public", 0o710 | os.ModeSetgid, true},
}

func (s *Server) prepare(uid, gid int) error {
	// The daemons run as mail_owner and must reach their queue.
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"etc", "queue", "queue/pid", "data"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chown(filepath.Join(s.dir, "data"), uid, -1); err != nil {
		return err
	}
	for _, q := range queueDirs {
		p := filepath.Join(s.dir, "queue", q.name)
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		g := 0
		if q.postdrp {
			g = gid
		}
		if err := os.Chown(p, uid, g); err != nil {
			return err
		}
		if err := os.Chmod(p, q.mode); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(s.dir, "etc", "master.cf"), []byte(masterCF), 0o644)
}

// masterCF runs no service chrooted (the lmtp client would need a copy of
// /etc in the queue) and only what loopback delivery needs; writeConfig
// puts the port on the smtpd line.
const masterCF = `# Written by mailsync's mtatest harness.
smtpd     inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// mainCF is main.cf for the instance at dir. Everything
// goes to the LMTP server: no local delivery, no DNS.
func mainCF(dir, lmtp string) string {
	return fmt.Sprintf(`# Written by mailsync's mtatest harness; nothing from /etc/postfix is read.
compatibility_level = 3.6
config_directory = %[1]s/etc
queue_directory = %[1]s/queue
data_directory = %[1]s/data
daemon_directory = %[3]s
command_directory = /usr/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mtatest.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
default_transport = lmtp:inet:%[2]s
relay_transport = lmtp:inet:%[2]s
alias_maps =
alias_database =
local_recipient_maps =
biff = no
# Retry deferred mail every second, so tests that stop the LMTP server see
# the queue drain as soon as it is back.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
`, dir, lmtp, daemonDir)
}

func (s *Server) pickPort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("find free port: %w", err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	return s.writeConfig()
}

// writeConfig writes main.cf and the master.cf whose smtpd line listens on
// s.port.
func (s *Server) writeConfig() error {
	etc := filepath.Join(s.dir, "etc")
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(mainCF(s.dir, s.opts.LMTP)), 0o644); err != nil {
		return err
	}
	cf := strings.Replace(masterCF, "smtpd     inet", "127.0.0.1:"+strconv.Itoa(s.port)+" inet", 1)
	return os.WriteFile(filepath.Join(etc, "master.cf"), []byte(cf), 0o644)
}

func (s *Server) cleanup(t testing.TB) {
	if t.Failed() {
		t.Logf("mtatest: last 50 log lines of %s:\n%s", s.Addr(), s.LogTail(50))
	}
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		if err := stopProcess(p); err != nil {
			t.Errorf("mtatest: stop: %v", err)
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Errorf("mtatest: remove %s: %v", s.dir, err)
	}
}

// Stop stops Postfix, keeping its queue for Restart: mail it accepted is
// delivered after the restart. Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	p := s.proc
	s.proc = nil
	if err := stopProcess(p); err != nil {
		t.Fatalf("mtatest: stop: %v", err)
	}
}

// Restart starts a stopped Postfix again on the same port with the same
// queue (and restarts a running one).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		p := s.proc
		s.proc = nil
		if err := stopProcess(p); err != nil {
			t.Fatalf("mtatest: restart: %v", err)
		}
	}
	if err := s.launch(); err != nil {
		t.Fatalf("mtatest: restart on port %d: %v\n%s", s.port, err, s.LogTail(30))
	}
}

// Host is the address Postfix listens on, "127.0.0.1".
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the SMTP port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.Port())) }

// Pid is the master's pid, 0 while stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Dir is the instance's temp directory.
func (s *Server) Dir() string { return s.dir }

// Log returns Postfix's whole log (maillog_file).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "maillog"))
	out, _ := os.ReadFile(filepath.Join(s.dir, "master.out"))
	return string(b) + string(out)
}

// LogTail returns the last n lines of the log.
func (s *Server) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(s.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Queued returns how many messages wait in the queue (active, incoming,
// deferred, hold), counted from the queue files.
func (s *Server) Queued(t testing.TB) int {
	t.Helper()
	n := 0
	for _, q := range []string{"active", "incoming", "deferred", "hold"} {
		err := filepath.WalkDir(filepath.Join(s.dir, "queue", q), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return err
		})
		if err != nil {
			t.Fatalf("mtatest: count queue %s: %v", q, err)
		}
	}
	return n
}
