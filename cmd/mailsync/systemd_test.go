package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"
)

// notifySocket listens where $NOTIFY_SOCKET points for the test, as
// systemd does, and returns a function that reads the next datagram.
func notifySocket(t *testing.T) (next func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notify message: %v", err)
		}
		return string(buf[:n])
	}
}

// syncBuffer is a bytes.Buffer safe for a logger shared with goroutines.
type syncBuffer struct {
	mu stdsync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

func TestNotifierMessages(t *testing.T) {
	next := notifySocket(t)
	log, logs := testLogger()
	n := newNotifier(log)

	n.ready("syncing 2 accounts")
	if got, want := next(), "READY=1\nSTATUS=syncing 2 accounts"; got != want {
		t.Errorf("ready sent %q, want %q", got, want)
	}
	n.reloading()
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || strings.HasSuffix(got, "\n") {
		t.Errorf("reloading sent %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	// A multi-line status must not inject a second assignment.
	n.ready("reload refused: bad\nREADY=0")
	if got, want := next(), "READY=1\nSTATUS=reload refused: bad READY=0"; got != want {
		t.Errorf("ready with newline sent %q, want %q", got, want)
	}
	n.stopping("stopping: finishing deliveries")
	if got, want := next(), "STOPPING=1\nSTATUS=stopping: finishing deliveries"; got != want {
		t.Errorf("stopping sent %q, want %q", got, want)
	}
	if strings.Contains(logs.String(), "failed") {
		t.Errorf("unexpected log: %s", logs)
	}
}

func TestNotifierWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	log, logs := testLogger()
	n := newNotifier(log)
	n.ready("x")
	n.stopping("y")
	if logs.String() != "" {
		t.Errorf("notify without systemd logged: %s", logs)
	}
	t.Setenv("WATCHDOG_USEC", "")
	stop := n.startWatchdog(context.Background(), func() (bool, string) { return true, "" })
	stop()
}

func TestNotifierReportsSendFailure(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone.sock"))
	log, logs := testLogger()
	newNotifier(log).ready("x")
	if !strings.Contains(logs.String(), "systemd notify failed") {
		t.Errorf("a failed notify was not logged: %q", logs)
	}
}

// TestWatchdogLoopWithholdsPingsWhileUnhealthy drives the loop tick by
// tick: an unbuffered tick channel means each send returns only once the
// previous tick has been handled.
func TestWatchdogLoopWithholdsPingsWhileUnhealthy(t *testing.T) {
	next := notifySocket(t)
	log, logs := testLogger()
	n := newNotifier(log)
	// Each health check takes its answer from the test, so the test
	// knows exactly which tick saw which state.
	answers := make(chan bool)
	health := func() (bool, string) { return <-answers, "supervisor stuck" }
	tick := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.watchdogLoop(ctx, tick, health) }()
	step := func(ok bool) { tick <- time.Now(); answers <- ok }

	step(true)
	if got := next(); got != "WATCHDOG=1" {
		t.Fatalf("healthy tick sent %q, want WATCHDOG=1", got)
	}
	step(false)
	step(false)
	step(true)
	// Ticks are handled in order, so a ping from either unhealthy tick
	// would arrive before the recovered tick's ping and the marker.
	if got := next(); got != "WATCHDOG=1" {
		t.Fatalf("recovered tick sent %q, want WATCHDOG=1", got)
	}
	n.status("marker")
	if got := next(); got != "STATUS=marker" {
		t.Fatalf("after recovery got %q, want only one ping then the marker", got)
	}
	cancel()
	<-done
	if got := strings.Count(logs.String(), "unhealthy"); got != 1 {
		t.Errorf("unhealthy logged %d times, want once:\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "reason=\"supervisor stuck\"") || !strings.Contains(logs.String(), "healthy again") {
		t.Errorf("logs lack the reason or the recovery:\n%s", logs)
	}
}

func TestWatchdogFromEnvironment(t *testing.T) {
	next := notifySocket(t)
	log, _ := testLogger()
	n := newNotifier(log)

	// A watchdog meant for another process (WATCHDOG_PID) is not ours.
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()+1))
	stop := n.startWatchdog(context.Background(), func() (bool, string) { return true, "" })
	time.Sleep(100 * time.Millisecond) // five intervals
	stop()
	n.status("marker")
	if got := next(); got != "STATUS=marker" {
		t.Fatalf("watchdog for another pid sent %q", got)
	}

	t.Setenv("WATCHDOG_USEC", "100000") // 100ms: pings every 50ms
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	stop = n.startWatchdog(context.Background(), func() (bool, string) { return true, "" })
	defer stop()
	for range 3 {
		if got := next(); got != "WATCHDOG=1" {
			t.Fatalf("watchdog sent %q, want WATCHDOG=1", got)
		}
	}
}
