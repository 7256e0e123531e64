package worker_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mailgen"
)

// Environment of BenchmarkScale.
const (
	scaleAccountsEnv = "MAILSYNC_SCALE_ACCOUNTS" // accounts (default 1000)
	scaleTLSEnv      = "MAILSYNC_SCALE_TLS"      // "1": implicit TLS
	scaleIdleEnv     = "MAILSYNC_SCALE_IDLE"     // idle CPU window (default 60s)
)

// BenchmarkScale runs N accounts of one INBOX each (20 messages) in one
// process against one private Dovecot whose users each have their own uid
// (its inotify limit of 128 instances per uid would otherwise turn IDLE
// into polling), and reports what N idle folders cost and how the daemon
// behaves at that scale:
//
//   - time until every folder is idle, and every message delivered;
//   - Dovecot's logins (one per account is the target), Go heap, RSS and
//     goroutines per idle folder, idle CPU over the window;
//   - live latency p50/p99 (APPEND on another connection until the
//     message is committed) with all N idle;
//   - a burst of 5 messages to every account: time until all are
//     committed and the state file's commit rate;
//   - a reload that adds one account: logins and disconnects it caused.
//
// It is long (a few minutes at 1,000 accounts), so it is a benchmark, kept
// out of the default test run:
//
//	go test -run '^$' -bench Scale -benchtime 1x -timeout 30m ./sync/worker/
//	MAILSYNC_SCALE_TLS=1 go test -run '^$' -bench Scale -benchtime 1x -timeout 30m ./sync/worker/
func BenchmarkScale(b *testing.B) {
	n := 1000
	if v := os.Getenv(scaleAccountsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", scaleAccountsEnv, v)
		}
	}
	idleWindow := 60 * time.Second
	if v := os.Getenv(scaleIdleEnv); v != "" {
		var err error
		if idleWindow, err = time.ParseDuration(v); err != nil {
			b.Fatalf("%s=%q: %v", scaleIdleEnv, v, err)
		}
	}
	useTLS := os.Getenv(scaleTLSEnv) == "1"
	const perAccount = 20

	users := map[string]string{}
	name := func(i int) string { return fmt.Sprintf("u%04d", i) }
	for i := range n + 1 { // the last one is added by the reload
		users[name(i)] = dovecottest.DefaultPassword
	}
	opts := []dovecottest.Option{dovecottest.WithUsers(users), dovecottest.WithUserUIDs(200000),
		// A server sized for it: logins served by long-lived processes
		// (high-performance mode), one imap process per session.
		dovecottest.WithConfig(fmt.Sprintf(`default_process_limit = %d
default_client_limit = %d
service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = %d
}`, 3*n+100, 6*n+200, 3*n+100))}
	if useTLS {
		opts = append(opts, dovecottest.WithTLS())
	}
	srv := dovecottest.Start(b, opts...)
	g := mailgen.New(77, mailgen.Options{AvgSize: 4000})
	for i := range n {
		msgs := make([][]byte, perAccount)
		for j := range msgs {
			msgs[j] = g.Next()
		}
		srv.SeedMaildir(b, name(i), "INBOX", msgs)
	}
	accounts := map[string]string{}
	for i := range n {
		accounts[name(i)] = name(i)
	}
	r := newRig(b, srv, rigOptions{accounts: accounts, folders: []string{"inbox"}, quiet: true, tls: useTLS,
		extra: "sync: {retry_min: 200ms, retry_max: 10s, command_timeout: 60s, shutdown_grace: 10s}\n"})
	logins := func() int { return strings.Count(srv.LogTail(50*n+1000), "Login: user=") }
	disconnects := func() int { return strings.Count(srv.LogTail(50*n+1000), "Disconnected") }
	loginsBefore := logins()
	heapBefore, rssBefore, goBefore := memNow()

	b.ResetTimer()
	start := time.Now()
	r.start()
	allIdle := func() bool {
		return r.idleAccounts() == n
	}
	waitForFast(b, 20*time.Minute, allIdle)
	toIdle := time.Since(start)
	b.StopTimer()
	if got := len(r.jsonlKeys()); got != n*perAccount {
		b.Fatalf("sink holds %d keys, want %d", got, n*perAccount)
	}
	heap, rss, gor := memNow()
	loginCount := logins() - loginsBefore
	handshakeErrs := strings.Count(srv.LogTail(50*n+1000), "handshak")
	reconnects := counterSum(b, r, "mailsync_imap_reconnects_total")

	// Idle CPU: the process's own user+system time over the window.
	cpu0, t0 := cpuTime(), time.Now()
	time.Sleep(idleWindow)
	idleCPU := float64(cpuTime()-cpu0) / float64(time.Since(t0))

	p50, p99 := liveLatency(b, srv, r, n, name, g)
	burst, commits, commitBusy := burst(b, srv, r, n, name, g)

	// Reload that adds one account: one login, no other connection lost.
	// (First let Dovecot log the test clients' own disconnects.)
	time.Sleep(3 * time.Second)
	loginsR, discR := logins(), disconnects()
	cfg2 := *r.cfg
	extra := cfg2.Accounts[len(cfg2.Accounts)-1]
	extra.ID, extra.Username = name(n), name(n)
	cfg2.Accounts = append(slices.Clone(cfg2.Accounts), extra)
	if _, _, _, _, err := r.sup.Reload(&cfg2, nil); err != nil {
		b.Fatal(err)
	}
	waitForFast(b, time.Minute, func() bool {
		for _, a := range r.sup.Status() {
			if a.Account == name(n) {
				return len(a.Folders) == 1 && a.Folders[0].State == "idle"
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	reloadLogins, reloadDisc := logins()-loginsR, disconnects()-discR

	perFolder := func(after, before uint64) float64 { return float64(int64(after)-int64(before)) / float64(n) / 1024 }
	b.ReportMetric(toIdle.Seconds(), "s-to-all-idle")
	b.ReportMetric(perFolder(heap, heapBefore), "heap-KiB/folder")
	b.ReportMetric(perFolder(rss, rssBefore), "rss-KiB/folder")
	b.ReportMetric(float64(gor-goBefore)/float64(n), "goroutines/folder")
	b.ReportMetric(100*idleCPU, "idle-cpu-%")
	fmt.Fprintf(benchOut{b}, "%d accounts (tls %v): all idle and %d messages delivered in %s; %d logins; "+
		"%d handshake lines in Dovecot's log, %.0f reconnects; heap %.1f KiB, RSS %.1f KiB, %.1f goroutines per idle folder "+
		"(heap %d MiB, RSS %d MiB in all); idle CPU %.2f%% of a core over %s; live latency p50 %s p99 %s; "+
		"burst of 5 to every account committed in %s (%d state commits, %.0f/s, write lock held %.0f%% of the time); "+
		"reload adding one account: %d login(s), %d disconnect(s)\n",
		n, useTLS, n*perAccount, toIdle.Round(time.Millisecond), loginCount, handshakeErrs, reconnects,
		perFolder(heap, heapBefore), perFolder(rss, rssBefore), float64(gor-goBefore)/float64(n),
		heap>>20, rss>>20, 100*idleCPU, idleWindow, p50, p99,
		burst.Round(time.Millisecond), commits, float64(commits)/burst.Seconds(), 100*commitBusy.Seconds()/burst.Seconds(),
		reloadLogins, reloadDisc)
}

// memNow returns Go heap in use, RSS and goroutines, after a GC.
func memNow() (heap, rss uint64, goroutines int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			rss = kb << 10
		}
	}
	return ms.HeapInuse, rss, runtime.NumGoroutine()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveLatency appends 40 messages, one at a time, to accounts spread over
// all N, and measures APPEND → message committed by mailsync.
func liveLatency(b *testing.B, srv *dovecottest.Server, r *rig, n int, name func(int) string, g *mailgen.Generator) (p50, p99 time.Duration) {
	const count = 40
	var lat []time.Duration
	for i := range count {
		c := srv.Dial(b, name(i*n/count))
		raw := g.Next()
		drain(r.events)
		start := time.Now()
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		cmd.Write(raw)
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			b.Fatal(err)
		}
		select {
		case <-r.events:
			lat = append(lat, time.Since(start))
		case <-time.After(30 * time.Second):
			b.Fatalf("message to %s not delivered within 30s", name(i*n/count))
		}
		c.Close()
	}
	slices.Sort(lat)
	return lat[count/2], lat[count-1] // p99 of 40 is the largest
}

// burst delivers 5 messages to every account at once, straight into the
// Maildirs from 16 goroutines, and waits until all are committed; it
// returns how long that took and the state commits and their busy time
// meanwhile.
func burst(b *testing.B, srv *dovecottest.Server, r *rig, n int, name func(int) string, g *mailgen.Generator) (time.Duration, int64, time.Duration) {
	const each = 5
	raws := make([][][]byte, n)
	for i := range n {
		for range each {
			raws[i] = append(raws[i], g.Next())
		}
	}
	before := len(r.jsonlKeys())
	st0 := r.store.UpdateStats()
	start := time.Now()
	var wg stdsync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if err := srv.DeliverMaildir(name(i), "INBOX", raws[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	waitForFast(b, 10*time.Minute, func() bool { return len(r.jsonlKeys()) >= before+n*each })
	// The sink has them; the commits follow, then each folder idles again.
	waitForFast(b, 10*time.Minute, func() bool {
		for _, a := range r.sup.Status() {
			if len(a.Folders) != 1 || a.Folders[0].State != "idle" {
				return false
			}
		}
		return true
	})
	d := time.Since(start)
	st1 := r.store.UpdateStats()
	return d, st1.Commits - st0.Commits, st1.Time - st0.Time
}

// counterSum adds up a counter of the rig's metrics over its labels.
func counterSum(b *testing.B, r *rig, name string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
