package worker_test

import (
	"bytes"
	"io"
	"net"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
)

// countingProxy forwards TCP connections to a server and records, per
// connection, whether the client sent LOGOUT and whether it is closed.
// cut, when set, closes the connection with that index (0-based) once it
// has carried that many bytes from the server: a helper connection that
// dies mid-FETCH.
type countingProxy struct {
	ln       net.Listener
	cutIndex int
	cutAfter int64
	mu       stdsync.Mutex
	conns    []*proxied
	wg       stdsync.WaitGroup
}

type proxied struct {
	client, server net.Conn
	logout, closed atomic.Bool
}

func newCountingProxy(t *testing.T, target string, cutIndex int, cutAfter int64) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, cutIndex: cutIndex, cutAfter: cutAfter}
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
			pc := &proxied{client: c, server: up}
			p.mu.Lock()
			idx := len(p.conns)
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			limit := int64(-1)
			if idx == p.cutIndex {
				limit = p.cutAfter
			}
			p.wg.Add(2)
			go func() { // client -> server: watch for LOGOUT
				defer p.wg.Done()
				var tail []byte
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						tail = append(tail, buf[:n]...)
						if bytes.Contains(tail, []byte(" LOGOUT\r\n")) {
							pc.logout.Store(true)
						}
						tail = tail[max(0, len(tail)-16):]
						if _, werr := up.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				pc.close()
			}()
			go func() { // server -> client, cut after limit bytes
				defer p.wg.Done()
				src := io.Reader(up)
				if limit >= 0 {
					src = io.LimitReader(up, limit)
				}
				io.Copy(c, src)
				pc.close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (pc *proxied) close() {
	pc.closed.Store(true)
	pc.client.Close()
	pc.server.Close()
}

func (p *countingProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *countingProxy) snapshot() []*proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*proxied(nil), p.conns...)
}

// catchUpThroughProxy seeds n messages, catches them up with batch_size
// 500 through proxy, and checks that each reached the sink once and the
// folder went idle.
func catchUpThroughProxy(t *testing.T, srv *dovecottest.Server, proxy *countingProxy, n, maxConns, fdBudget int) *rig {
	t.Helper()
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		extra: "sync: {retry_min: 50ms, retry_max: 500ms, batch_size: 500, command_timeout: 5s, shutdown_grace: 2s}\n"})
	r.cfg.Accounts[0].Port = proxy.port()
	r.cfg.Accounts[0].MaxConnections = maxConns
	r.fdBudget = fdBudget
	r.start()
	waitFor(t, 60*time.Second, "the catch-up", func() bool { return r.cursor("alice", "INBOX").LastUID == uint32(n) })
	waitFor(t, 10*time.Second, "idle", func() bool { return r.sup.Status()[0].Folders[0].State == "idle" })
	keys := r.jsonlKeys()
	if len(keys) != n {
		t.Errorf("sink holds %d keys, want %d", len(keys), n)
	}
	for k, c := range keys {
		if c != 1 {
			t.Errorf("key %s written %d times, want once", k, c)
		}
	}
	return r
}

// TestCatchUpHelper: a catch-up of several batches fetches bodies on a
// second connection, which is logged out when the catch-up ends; the
// account then holds its one IDLE connection again, and status says so.
func TestCatchUpHelper(t *testing.T) {
	const n = 2000
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(131, n, "alice"))
	proxy := newCountingProxy(t, srv.Addr(), -1, 0)
	r := catchUpThroughProxy(t, srv, proxy, n, 3, 0)
	conns := proxy.snapshot()
	if got, want := len(conns), 2; got != want {
		t.Fatalf("%d connections opened, want %d (the folder's and one helper)", got, want)
	}
	waitFor(t, 5*time.Second, "the helper closed", func() bool { return conns[1].closed.Load() })
	if !conns[1].logout.Load() {
		t.Error("the helper connection was closed without LOGOUT")
	}
	if conns[0].closed.Load() {
		t.Error("the folder's own connection was closed")
	}
	st := r.sup.Status()[0]
	if got, want := st.Connections, 1; got != want {
		t.Errorf("status: %d connections after the catch-up, want %d", got, want)
	}
	if st.Folders[0].CatchUpHelper {
		t.Error("status: catch-up helper still shown after the catch-up")
	}
	r.stop()
}

// TestCatchUpHelperFails: the helper connection dies in the middle of a
// body FETCH; the catch-up goes on with the folder's connection and loses
// and duplicates nothing.
func TestCatchUpHelperFails(t *testing.T) {
	const n = 2000
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(132, n, "alice"))
	proxy := newCountingProxy(t, srv.Addr(), 1, 2<<20)
	r := catchUpThroughProxy(t, srv, proxy, n, 3, 0)
	conns := proxy.snapshot()
	if len(conns) < 2 || !conns[1].closed.Load() {
		t.Fatalf("%d connections, want the helper's cut", len(conns))
	}
	if conns[0].closed.Load() {
		t.Error("the folder's own connection was closed: the helper's failure must not cost it")
	}
	r.stop()
}

// TestCatchUpHelperNeedsSpareConnection: with max_connections 1 the
// folder's connection is the account's only one, and the catch-up runs
// on it alone.
func TestCatchUpHelperNeedsSpareConnection(t *testing.T) {
	const n = 1200
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(133, n, "alice"))
	proxy := newCountingProxy(t, srv.Addr(), -1, 0)
	r := catchUpThroughProxy(t, srv, proxy, n, 1, 0)
	if got := len(proxy.snapshot()); got != 1 {
		t.Errorf("%d connections opened under max_connections 1, want 1", got)
	}
	r.stop()
}

// TestCatchUpHelperLeavesScarceDescriptors: with the descriptor budget
// half used by the folder's own connection, no helper is opened.
func TestCatchUpHelperLeavesScarceDescriptors(t *testing.T) {
	const n = 1200
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(134, n, "alice"))
	proxy := newCountingProxy(t, srv.Addr(), -1, 0)
	r := catchUpThroughProxy(t, srv, proxy, n, 3, 2)
	if got := len(proxy.snapshot()); got != 1 {
		t.Errorf("%d connections opened with a descriptor budget of 2, want 1", got)
	}
	r.stop()
}
