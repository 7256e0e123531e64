package dovecottest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bounds on waiting for the master; generous because CI machines run the
// race detector on two cores, tight enough that a hang fails the test.
const (
	readyTimeout = 20 * time.Second
	termTimeout  = 5 * time.Second
	drainTimeout = 3 * time.Second
)

// errAddrInUse means another process took a port between our probe and
// Dovecot's bind; Start retries with new ports.
var errAddrInUse = errors.New("port already in use")

// process is one run of the Dovecot master.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result; read only after done is closed
}

// launch starts the master and waits for a greeting. Called with s.mu held.
func (s *Server) launch() error {
	// A master.pid left by a SIGKILLed run could name a live, unrelated pid,
	// and Dovecot would then refuse to start.
	_ = os.Remove(filepath.Join(s.dir, "run", "master.pid"))
	errLog, err := os.OpenFile(s.stderrPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open stderr log: %w", err)
	}
	cmd := exec.Command(s.dovecot, "-F", "-c", s.confPath)
	cmd.Dir = s.dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = errLog, errLog
	// Own process group, so a master that ignores SIGTERM can be killed
	// together with the children it forked.
	// Pdeathsig: if the test binary dies (e.g. go test's timeout panic skips
	// every Cleanup) the master is told to shut down rather than outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the forking OS thread exits, not the
		// process. Keep that thread locked and blocked in Wait for exactly
		// as long as the master lives.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			errLog.Close()
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		errLog.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("run %s: %w", s.dovecot, err)
	}
	if err := s.waitReady(p); err != nil {
		_ = stopProcess(p)
		return err
	}
	s.proc = p
	return nil
}

// childEnv is a minimal environment: Dovecot must not see NOTIFY_SOCKET or
// LISTEN_FDS meant for whatever runs the tests.
func childEnv() []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if tz, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+tz)
	}
	return env
}

// waitReady polls the plain port until a "* OK" greeting arrives, the master
// exits, or readyTimeout passes. The master binds every listener before it
// forks login processes, so the TLS port is ready when the plain one is.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(readyTimeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			if strings.Contains(s.LogTail(20), "Address already in use") {
				return fmt.Errorf("dovecot exited: %v: %w", p.err, errAddrInUse)
			}
			return fmt.Errorf("dovecot exited during startup: %v", p.err)
		default:
		}
		if last = greet(addr); last == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("no greeting on %s within %v: %v", addr, readyTimeout, last)
}

func greet(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	_, _ = conn.Write([]byte("g LOGOUT\r\n"))
	return nil
}

// stopProcess ends one master run: SIGTERM, a bounded wait, then SIGKILL of
// the process group we created. It also waits (bounded) for the children to
// go, since a lingering imap-login still holds the listening socket.
func stopProcess(p *process) error {
	pid := p.cmd.Process.Pid
	// SIGTERM the whole group, not just the master: the master alone polls
	// its children for up to seconds before it exits, while every Dovecot
	// process shuts down cleanly on its own SIGTERM within milliseconds.
	// The signal is repeated because a child forked just as it was sent
	// misses it, and the master then waits for that child.
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	termDeadline := time.After(termTimeout)
wait:
	for {
		select {
		case <-p.done:
			break wait
		case <-tick.C:
			_ = syscall.Kill(-pid, syscall.SIGTERM)
		case <-termDeadline:
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			select {
			case <-p.done:
				break wait
			case <-time.After(termTimeout):
				return fmt.Errorf("dovecot pid %d survived SIGKILL for %v", pid, termTimeout)
			}
		}
	}
	// While any member is alive the kernel does not hand out pid as a new
	// group id, so signalling -pid here only reaches our own children.
	killed := false
	for deadline := time.Now().Add(drainTimeout); syscall.Kill(-pid, 0) == nil; {
		if time.Now().After(deadline) {
			if killed {
				// Orphaned zombies nobody reaps hold no ports; give up quietly.
				return nil
			}
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			killed = true
			deadline = time.Now().Add(drainTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
