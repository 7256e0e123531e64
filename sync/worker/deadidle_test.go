package worker_test

import (
	"io"
	"net"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
)

// blackHoleProxy forwards TCP connections to a server until blackHole:
// from then on the connections open at that moment forward nothing in
// either direction but stay open (a silent network drop: no FIN, no RST),
// while new connections work.
type blackHoleProxy struct {
	ln     net.Listener
	target string
	mu     stdsync.Mutex
	conns  []*atomic.Bool // per connection: dropping
	wg     stdsync.WaitGroup
	all    []net.Conn
}

func newBlackHoleProxy(t *testing.T, target string) *blackHoleProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackHoleProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			drop := new(atomic.Bool)
			p.mu.Lock()
			p.conns = append(p.conns, drop)
			p.all = append(p.all, c, up)
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !drop.Load() {
						if _, werr := dst.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						if err != io.EOF && !drop.Load() {
							dst.Close()
						}
						if !drop.Load() {
							dst.Close()
						}
						return
					}
				}
			}
			p.wg.Add(2)
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.all {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *blackHoleProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *blackHoleProxy) blackHole() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range p.conns {
		d.Store(true)
	}
	return len(p.conns)
}

// TestDeadIdleIsNoticed: the network silently drops the IDLE connection
// (a proxy stops forwarding without closing it). The daemon must notice
// within sync.idle_check + sync.command_timeout, reconnect, and deliver
// mail that arrived meanwhile.
func TestDeadIdleIsNoticed(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(121, 2, "alice"))
	proxy := newBlackHoleProxy(t, srv.Addr())
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		extra: "sync: {retry_min: 50ms, retry_max: 500ms, idle_check: 1s, command_timeout: 2s, shutdown_grace: 2s}\n"})
	r.cfg.Accounts[0].Port = proxy.port()
	r.start()
	waitFor(t, 20*time.Second, "catch-up and IDLE", func() bool {
		f := r.sup.Status()[0].Folders
		return len(r.jsonlKeys()) == 2 && len(f) == 1 && f[0].State == "idle" && !f[0].IdleCheckedAt.IsZero()
	})
	if n := proxy.blackHole(); n == 0 {
		t.Fatal("no connection through the proxy")
	}
	start := time.Now()
	srv.Append(t, dovecottest.DefaultUser, "INBOX", generate(122, 1, "alice")[0])
	// Documented bound: idle_check + command_timeout (3s), plus the
	// reconnect and the fetch.
	waitFor(t, 10*time.Second, "delivery after the dead IDLE", func() bool { return len(r.jsonlKeys()) == 3 })
	took := time.Since(start)
	st := r.sup.Status()[0].Folders[0]
	t.Logf("dead IDLE noticed and the new message delivered in %s", took.Round(time.Millisecond))
	if took > 6*time.Second {
		t.Errorf("took %s, want within idle_check + command_timeout + a reconnect (~3-4s)", took)
	}
	if !strings.Contains(st.LastError, "no response") {
		t.Errorf("last_error %q, want the IDLE timeout", st.LastError)
	}
}
