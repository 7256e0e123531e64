package worker_test

import (
	"fmt"
	"io"
	"net"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
)

// slowProxy forwards to addr after holding each new connection for delay,
// counting how many are held at once: with a dial limit, no more than the
// limit can be in their dial (and so in that window) together.
type slowProxy struct {
	ln         net.Listener
	mu         stdsync.Mutex
	held, peak int
	wg         stdsync.WaitGroup
	conns      []net.Conn
	accepted   []time.Time
}

func startSlowProxy(t *testing.T, addr string, delay time.Duration) *slowProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{ln: ln}
	t.Cleanup(p.close)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c, addr, delay) }()
		}
	}()
	return p
}

func (p *slowProxy) serve(c net.Conn, addr string, delay time.Duration) {
	p.mu.Lock()
	p.held++
	p.peak = max(p.peak, p.held)
	p.conns = append(p.conns, c)
	p.accepted = append(p.accepted, time.Now())
	p.mu.Unlock()
	time.Sleep(delay)
	p.mu.Lock()
	p.held--
	p.mu.Unlock()
	up, err := net.Dial("tcp", addr)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, up)
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (p *slowProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// restart drops every open connection, as a server restart does, and
// forgets the accept times and the peak, so what follows is the reconnect.
func (p *slowProxy) restart() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns, p.accepted, p.peak = nil, nil, p.held
	return time.Now()
}

func (p *slowProxy) acceptTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.accepted...)
}

func (p *slowProxy) peakHeld() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// TestDialConcurrencyBoundsConnectionsBeingOpened: eight accounts on one
// server with sync.dial_concurrency 2 never have more than two connections
// in their dial at once, status shows the others waiting for a dial slot,
// and every account still syncs.
func TestDialConcurrencyBoundsConnectionsBeingOpened(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(5, 3, "alice"))
	proxy := startSlowProxy(t, srv.Addr(), 150*time.Millisecond)
	accounts := map[string]string{}
	for i := range 8 {
		accounts[fmt.Sprintf("a%d", i)] = dovecottest.DefaultUser
	}
	r := newRig(t, srv, rigOptions{accounts: accounts, folders: []string{"inbox"}, port: proxy.ln.Addr().(*net.TCPAddr).Port,
		extra: "sync: {retry_min: 50ms, retry_max: 1s, dial_concurrency: 2}\n"})
	r.start()
	sawWaiting := false
	waitFor(t, 30*time.Second, "all accounts idle", func() bool {
		idle := 0
		for _, a := range r.sup.Status() {
			sawWaiting = sawWaiting || a.State == "waiting for dial slot"
			if len(a.Folders) == 1 && a.Folders[0].State == "idle" {
				idle++
			}
		}
		return idle == 8
	})
	if got := proxy.peakHeld(); got > 2 {
		t.Errorf("%d connections were in their dial at once, want at most dial_concurrency 2", got)
	}
	if !sawWaiting {
		t.Errorf("status never showed an account waiting for a dial slot")
	}
}

// TestServerRestartReconnectsSpread: 30 idle accounts lose their
// connections at once (a server restart). They come back through the dial
// limit (never more than dial_concurrency in their dial) and spread by the
// backoff's jitter rather than in one burst, and all are idle again.
func TestServerRestartReconnectsSpread(t *testing.T) {
	srv := dovecottest.Start(t)
	proxy := startSlowProxy(t, srv.Addr(), 20*time.Millisecond)
	accounts := map[string]string{}
	for i := range 30 {
		accounts[fmt.Sprintf("a%02d", i)] = dovecottest.DefaultUser
	}
	r := newRig(t, srv, rigOptions{accounts: accounts, folders: []string{"inbox"}, port: proxy.ln.Addr().(*net.TCPAddr).Port,
		extra: "sync: {retry_min: 1s, retry_max: 4s, dial_concurrency: 4}\n"})
	r.start()
	allIdle := func() bool { return r.idleAccounts() == 30 }
	waitFor(t, 60*time.Second, "all accounts idle", allIdle)
	cut := proxy.restart()
	waitFor(t, 60*time.Second, "30 reconnects", func() bool { return len(proxy.acceptTimes()) >= 30 })
	waitFor(t, 60*time.Second, "all accounts idle again", allIdle)
	at := proxy.acceptTimes()
	first, last := at[0], at[0]
	for _, a := range at {
		first, last = minTime(first, a), maxTime(last, a)
	}
	// Backoff after a drop: half of retry_min fixed, half random.
	if d := first.Sub(cut); d < 400*time.Millisecond {
		t.Errorf("the first reconnect came %s after the cut, before half of retry_min", d)
	}
	if spread := last.Sub(first); spread < 200*time.Millisecond {
		t.Errorf("30 reconnects within %s: not spread by the jitter", spread)
	}
	if got := proxy.peakHeld(); got > 4 {
		t.Errorf("%d connections in their dial at once after the restart, want at most dial_concurrency 4", got)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
