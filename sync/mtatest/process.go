package mtatest

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

// process is one run of the Postfix master.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result; read only after done is closed
}

// errAddrInUse: another process took the port between probe and bind.
var errAddrInUse = errors.New("port already in use")

// launch starts the master in the foreground and waits for a 220 greeting.
// Called with s.mu held.
func (s *Server) launch() error {
	_ = os.Remove(filepath.Join(s.dir, "queue", "pid", "master.pid"))
	out, err := os.OpenFile(filepath.Join(s.dir, "master.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(masterPath, "-c", filepath.Join(s.dir, "etc"))
	cmd.Dir = filepath.Join(s.dir, "queue")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = out, out
	// No Setpgid: the master calls setsid itself (it fails on a group
	// leader), which makes it the leader of a group of its daemons.
	// Pdeathsig stops it if the test binary dies without its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig follows the forking thread: keep it locked and in Wait
		// for as long as the master lives.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			out.Close()
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("run %s: %w", masterPath, err)
	}
	if err := s.waitReady(p); err != nil {
		_ = stopProcess(p)
		return err
	}
	s.proc = p
	return nil
}

func (s *Server) waitReady(p *process) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			if strings.Contains(s.LogTail(20), "Address already in use") {
				return fmt.Errorf("postfix exited: %v: %w", p.err, errAddrInUse)
			}
			return fmt.Errorf("postfix master exited during startup: %v", p.err)
		default:
		}
		if last = greet(addr); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no greeting on %s within %v: %v", addr, readyTimeout, last)
}

func greet(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(line, "220 ") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	_, _ = c.Write([]byte("QUIT\r\n"))
	return nil
}

// stopProcess sends SIGTERM to the master (which stops its daemons), waits
// bounded, then SIGKILLs the process group it leads.
func stopProcess(p *process) error {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(termTimeout):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(termTimeout):
			return fmt.Errorf("postfix master pid %d survived SIGKILL", pid)
		}
	}
	// Daemons finishing a delivery exit on their own; kill stragglers so
	// none keeps the port.
	for deadline := time.Now().Add(termTimeout); syscall.Kill(-pid, 0) == nil; {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
