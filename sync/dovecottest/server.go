// Package dovecottest starts throwaway Dovecot 2.3 IMAP servers for
// integration tests.
//
// Each Server is a separate `dovecot -F` master with its own temp directory
// (config, base_dir, state_dir, log, users, Maildirs) and its own ports on
// 127.0.0.1, so test packages can run instances in parallel. Nothing from
// /etc/dovecot is read and the system service is never touched. Start fails
// the test (it never skips) when Dovecot is not installed: `bash .ci/test`
// installs it.
//
// Instance directories go to /dev/shm when it is writable (file creation on
// the VMs' ext4 is ~70x slower), else to the temp dir; DOVECOTTEST_TMPDIR
// overrides both and must stay short, as Dovecot's unix socket paths below it
// are limited to 108 bytes.
//
// Helpers that take a testing.TB call Fatalf on error, so call them from the
// test's own goroutine.
package dovecottest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
)

// Server is one running Dovecot instance owned by a test. Its methods are
// safe for concurrent use, but those taking a testing.TB must run on the
// test's goroutine.
type Server struct {
	// CACertPEM is the PEM certificate of the CA that signed the server
	// certificate; nil without WithTLS.
	CACertPEM []byte
	// CAFile is the path of a file holding CACertPEM; empty without WithTLS.
	CAFile string

	dir        string
	confPath   string
	logPath    string
	stderrPath string
	dovecot    string
	doveadm    string
	id         identity
	opts       *options
	uids       map[string]int // WithUserUIDs: user -> uid

	mu      sync.Mutex
	port    int
	tlsPort int
	// lmtpPort is 0 without WithLMTP.
	lmtpPort int
	proc     *process // nil while stopped
}

// Start writes a fresh configuration, starts Dovecot and waits until it
// serves a greeting. The instance is stopped and its files removed in
// t.Cleanup; if the test failed, the last 50 log lines are logged first.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := defaultOptions()
	for _, opt := range opts {
		opt(o)
	}
	if o.tls && o.noStartTLS {
		t.Fatalf("dovecottest: WithTLS and WithoutStartTLS together are not supported: Dovecot 2.3 offers STARTTLS whenever TLS is on")
	}
	dovecot, doveadm := findBinary("/usr/sbin/dovecot", "dovecot"), findBinary("/usr/bin/doveadm", "doveadm")
	if dovecot == "" || doveadm == "" {
		t.Fatalf("dovecottest: dovecot or doveadm not found (looked in /usr/sbin, /usr/bin and $PATH); run `bash .ci/test`, which installs Debian's dovecot-imapd")
	}
	id, err := currentIdentity()
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	dir, err := makeRoot(id)
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	s := &Server{
		dir: dir, confPath: filepath.Join(dir, "dovecot.conf"),
		logPath: filepath.Join(dir, "dovecot.log"), stderrPath: filepath.Join(dir, "dovecot.stderr"),
		dovecot: dovecot, doveadm: doveadm, id: id, opts: o,
	}
	t.Cleanup(func() { s.cleanup(t) })
	if err := s.prepare(); err != nil {
		t.Fatalf("dovecottest: %v", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err = s.pickPorts(); err != nil {
			break
		}
		if err = s.writeConfig(); err != nil {
			break
		}
		err = s.launch()
		if err == nil || !errors.Is(err, errAddrInUse) || attempt == 2 {
			break
		}
	}
	if err != nil {
		t.Fatalf("dovecottest: start: %v", err)
	}
	return s
}

// findBinary prefers the Debian path: a normal user's PATH often lacks /usr/sbin.
func findBinary(path, name string) string {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return path
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// prepare writes everything that does not depend on the ports.
func (s *Server) prepare() error {
	if s.opts.userUIDs > 0 {
		if !s.id.root {
			return errors.New("WithUserUIDs needs root (the mail files are chowned to each user's uid)")
		}
		names := make([]string, 0, len(s.opts.users))
		for u := range s.opts.users {
			names = append(names, u)
		}
		sort.Strings(names)
		s.uids = make(map[string]int, len(names))
		for i, u := range names {
			s.uids[u] = s.opts.userUIDs + i
		}
	}
	passwd, err := renderPasswd(s.dir, s.opts.users, s.uids, s.id.mailGID)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "users"), passwd, 0o600); err != nil {
		return fmt.Errorf("write users: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "global-acl"), []byte(globalACL), 0o644); err != nil {
		return fmt.Errorf("write global-acl: %w", err)
	}
	if s.opts.tls {
		if s.CACertPEM, err = writeTLSFiles(s.dir); err != nil {
			return err
		}
		s.CAFile = filepath.Join(s.dir, "ca.pem")
	}
	for u := range s.opts.users {
		if err := s.mkdirMail(homeDir(s.dir, u)); err != nil {
			return err
		}
	}
	return nil
}

// pickPorts asks the kernel for free ports. Dovecot binds them a few
// milliseconds later; launch reports errAddrInUse if someone was faster.
func (s *Server) pickPorts() error {
	n := 1
	for _, on := range []bool{s.opts.tls, s.opts.lmtp} {
		if on {
			n++
		}
	}
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("find free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	s.port, s.tlsPort, s.lmtpPort = ports[0], 0, 0
	rest := ports[1:]
	if s.opts.tls {
		s.tlsPort, rest = rest[0], rest[1:]
	}
	if s.opts.lmtp {
		s.lmtpPort = rest[0]
	}
	return nil
}

func (s *Server) writeConfig() error {
	conf, err := renderConfig(s.dir, s.id, s.opts, s.port, s.tlsPort, s.lmtpPort)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.confPath, conf, 0o644); err != nil {
		return fmt.Errorf("write dovecot.conf: %w", err)
	}
	return nil
}

func (s *Server) cleanup(t testing.TB) {
	if t.Failed() {
		t.Logf("dovecottest: last 50 log lines of %s:\n%s", s.Addr(), s.LogTail(50))
	}
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		if err := stopProcess(p); err != nil {
			t.Errorf("dovecottest: stop: %v", err)
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Errorf("dovecottest: remove %s: %v", s.dir, err)
	}
}

// Stop stops Dovecot, keeping its data for a later Restart. Stopping a
// stopped server does nothing.
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
		t.Fatalf("dovecottest: stop: %v", err)
	}
}

// Restart stops Dovecot (if running) and starts it again on the same ports
// with the same data, returning once it greets again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		p := s.proc
		s.proc = nil
		if err := stopProcess(p); err != nil {
			t.Fatalf("dovecottest: restart: %v", err)
		}
	}
	if err := s.launch(); err != nil {
		t.Fatalf("dovecottest: restart on port %d: %v", s.port, err)
	}
}

// Addr returns the plain (STARTTLS-capable with WithTLS) address "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.Port())) }

// TLSAddr returns the implicit-TLS address, or "" without WithTLS.
func (s *Server) TLSAddr() string {
	if p := s.TLSPort(); p != 0 {
		return net.JoinHostPort(s.Host(), strconv.Itoa(p))
	}
	return ""
}

// Host returns the IP the server listens on, "127.0.0.1".
func (s *Server) Host() string { return "127.0.0.1" }

// Port returns the plain IMAP port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// TLSPort returns the implicit-TLS port, or 0 without WithTLS.
func (s *Server) TLSPort() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsPort
}

// Pid returns the pid of the Dovecot master, or 0 while stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Dir returns the instance's temp directory (config, log, homes).
func (s *Server) Dir() string { return s.dir }

// ConfigPath returns the path of the generated dovecot.conf.
func (s *Server) ConfigPath() string { return s.confPath }
