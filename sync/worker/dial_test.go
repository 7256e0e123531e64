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
