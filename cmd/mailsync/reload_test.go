package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/dovecottest"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRunOperatorSurface runs the real daemon in-process against Dovecot
// the way systemd does (NOTIFY_SOCKET, RUNTIME_DIRECTORY) and drives it
// from the CLI: READY, status through the socket link next to the state
// file, /readyz and /metrics, and STOPPING at shutdown.
func TestRunOperatorSurface(t *testing.T) {
	srv := dovecottest.Start(t)
	dir := t.TempDir()
	runtimeDir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(runtimeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	next := notifySocket(t)
	t.Setenv("RUNTIME_DIRECTORY", runtimeDir)
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfgPath := writeConfig(t, dir, srv, fmt.Sprintf("admin: {listen: %q}\n", adminAddr))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.stdout, r.stderr, r.code = runCLIBare(ctx, "run", "-c", cfgPath)
		done <- r
	}()
	if got := next(); got != "READY=1\nSTATUS=syncing" {
		t.Fatalf("first notify = %q, want READY=1", got)
	}
	sock := filepath.Join(runtimeDir, control.SocketName)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %s: %v, mode %v; want 0600", sock, err, fi.Mode())
	}

	// An operator's shell has no RUNTIME_DIRECTORY: the CLI finds the
	// socket through the link next to the state file.
	t.Setenv("RUNTIME_DIRECTORY", "")
	out, errOut, code := runCLI(t, ctx, "status", "-c", cfgPath, "--json")
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %s", code, errOut)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Offline || st.Pid != os.Getpid() || len(st.Accounts) != 1 || st.Accounts[0].Account != "alice" {
		t.Errorf("status = %+v, want the live daemon with account alice", st)
	}

	// /readyz turns 200 once the account runs (it logs in first).
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, "http://"+adminAddr+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never ready: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get(t, "http://"+adminAddr+"/metrics"); code != 200 || !strings.Contains(body, "mailsync_state_file_bytes ") || !strings.Contains(body, "mailsync_") {
		t.Errorf("/metrics = %d, lacks mailsync_ metrics", code)
	}

	// Reload through the socket: an unchanged file keeps the account; a
	// broken one is refused with its reason and the daemon keeps running.
	out, errOut, code = runCLI(t, ctx, "reload", "-c", cfgPath)
	if code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("reload: exit %d, out %q, err %q", code, out, errOut)
	}
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, append(good, []byte("bogus_key: 1\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, ctx, "reload", "-c", cfgPath)
	if code == 0 || !strings.Contains(errOut, "bogus_key") {
		t.Fatalf("reload of a broken file: exit %d, stderr %q; want a refusal naming the key", code, errOut)
	}
	if err := os.WriteFile(cfgPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, code := runCLI(t, ctx, "status", "-c", cfgPath); code != 0 {
		t.Fatalf("status after a refused reload: exit %d", code)
	}

	cancel()
	if got := next(); !strings.HasPrefix(got, "STOPPING=1\n") {
		t.Errorf("at shutdown notify = %q, want STOPPING=1", got)
	}
	select {
	case r := <-done:
		if r.code != 0 {
			t.Errorf("run exited %d: %s", r.code, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	for _, p := range []string{sock, filepath.Join(dir, control.SocketName)} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind after shutdown: %v", p, err)
		}
	}
	if _, err := http.Get("http://" + adminAddr + "/healthz"); err == nil {
		t.Errorf("admin server still answers after shutdown")
	}
}

// runCLIBare is runCLI for a goroutine (no testing.T calls).
func runCLIBare(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	var out, errb syncBuffer
	m := &Main{Stdout: &out, Stderr: &errb}
	code = m.Run(ctx, args)
	return out.String(), errb.String(), code
}

// TestSIGHUPReloads sends the test process SIGHUP while reloadOnSIGHUP
// holds it (so the default action, exit, never applies) and checks the
// reload and the systemd messages around it, for a good and a bad reload.
func TestSIGHUPReloads(t *testing.T) {
	next := notifySocket(t)
	log, logs := testLogger()
	sd := newNotifier(log)
	calls := make(chan struct{}, 2)
	var fail atomic.Bool
	reload := func(context.Context) (*control.ReloadResult, error) {
		calls <- struct{}{}
		if fail.Load() {
			return nil, errors.New("accounts[x].port: must be 1-65535")
		}
		return &control.ReloadResult{Added: []string{"ops"}, Unchanged: []string{"sales"}}, nil
	}
	stop := reloadOnSIGHUP(context.Background(), reload, sd, log)
	defer stop()

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("after SIGHUP notify = %q, want RELOADING=1", got)
	}
	if got, want := next(), "READY=1\nSTATUS=reloaded: 1 added, 0 removed, 0 restarted"; got != want {
		t.Fatalf("after the reload notify = %q, want %q", got, want)
	}
	<-calls

	fail.Store(true)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	next() // RELOADING=1
	// A refused reload still ends the reload for systemd, and the daemon
	// keeps running.
	if got, want := next(), "READY=1\nSTATUS=reload refused: accounts[x].port: must be 1-65535"; got != want {
		t.Fatalf("after a refused reload notify = %q, want %q", got, want)
	}
	<-calls
	if !strings.Contains(logs.String(), "reload refused; the running config stays") {
		t.Errorf("refused reload not logged:\n%s", logs)
	}
}

func TestSIGHUPWithoutReload(t *testing.T) {
	log, logs := testLogger()
	stop := reloadOnSIGHUP(context.Background(), nil, newNotifier(log), log)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "reload is not available") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if !strings.Contains(logs.String(), "reload is not available") {
		t.Errorf("SIGHUP without a reload function was not logged:\n%s", logs)
	}
}
