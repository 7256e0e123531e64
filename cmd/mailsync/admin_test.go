package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/worker"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// fakeAccounts is a settable accounts func for readiness.
type fakeAccounts struct {
	mu stdsync.Mutex
	v  []worker.AccountStatus
}

func (f *fakeAccounts) set(states ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.v = nil
	for _, s := range states {
		f.v = append(f.v, worker.AccountStatus{Account: "a", State: s})
	}
}

func (f *fakeAccounts) get() []worker.AccountStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v
}

func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestOperations starts the whole operator surface over a fake control
// API: the admin endpoints, the control socket and the systemd messages.
func TestOperations(t *testing.T) {
	next := notifySocket(t)
	t.Setenv("RUNTIME_DIRECTORY", "")
	dir := t.TempDir()
	cfg := &config.Config{State: filepath.Join(dir, "state.db"), Admin: config.Admin{Listen: "127.0.0.1:0"}}
	st := openTestStore(t)
	reg := prometheus.NewRegistry()
	delivered := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailsync_messages_delivered_total", Help: "x"}, []string{"account"})
	reg.MustRegister(delivered)
	delivered.WithLabelValues("sales").Add(3)
	accts := &fakeAccounts{}
	accts.set(worker.StateAuthFailed)
	log, _ := testLogger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	ops, err := startOperations(ctx, operationsDeps{cfg: cfg, registry: reg, store: st, accounts: accts.get, control: &fakeDaemon{status: sampleStatus()}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ops.stop()
	base := "http://" + ops.adminAddr.String()

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("/readyz before start = %d %q, want 503 starting", code, body)
	}
	ops.started()
	if got := next(); got != "READY=1\nSTATUS=syncing" {
		t.Errorf("after start systemd got %q, want READY=1", got)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "every account failed to log in") {
		t.Errorf("/readyz with every account auth-failed = %d %q, want 503", code, body)
	}
	accts.set(worker.StateAuthFailed, worker.StateIdle)
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz once running = %d %q, want 200 ready", code, body)
	}
	accts.mu.Lock()
	accts.v = []worker.AccountStatus{{Account: "sales", State: "running",
		Folders: []worker.FolderStatus{{Folder: "INBOX", State: worker.StateSinkRetry, Stalled: "waiting for sink for 3m0s: 500"}}}}
	accts.mu.Unlock()
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "sales/INBOX stalled: waiting for sink") {
		t.Errorf("/readyz with a folder stalled on the sink = %d %q, want 503 naming it", code, body)
	}
	accts.set(worker.StateIdle)

	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	fi, _ := os.Stat(st.Path())
	for _, want := range []string{
		`mailsync_messages_delivered_total{account="sales"} 3`,
		"mailsync_state_file_bytes " + formatFloat(float64(fi.Size())),
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The control socket answers with the fake's status.
	c, err := control.Dial(control.SocketPath(cfg))
	if err != nil {
		t.Fatalf("control socket: %v", err)
	}
	if s, err := c.Status(ctx); err != nil || s.Pid != 4242 {
		t.Errorf("Status over the socket = %+v, %v", s, err)
	}

	cancel() // shutdown begins
	if got := next(); !strings.HasPrefix(got, "STOPPING=1\n") {
		t.Errorf("at shutdown systemd got %q, want STOPPING=1", got)
	}
	ops.stop()
	if _, err := os.Lstat(control.SocketPath(cfg)); !os.IsNotExist(err) {
		t.Errorf("control socket left behind after stop: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("admin server still answers after stop")
	}
}

// formatFloat writes f as the Prometheus text format does.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestStartAdminRefusesTakenPort(t *testing.T) {
	log, _ := testLogger()
	addr, stop, err := startAdmin("127.0.0.1:0", http.NotFoundHandler(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, _, err := startAdmin(addr.String(), http.NotFoundHandler(), log); err == nil || !strings.Contains(err.Error(), "admin.listen") {
		t.Errorf("second admin server on %s: %v, want an admin.listen error", addr, err)
	}
}

func TestStartOperationsRefusesSecondDaemon(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	dir := t.TempDir()
	cfg := &config.Config{State: filepath.Join(dir, "state.db")}
	serveFakeAt(t, control.SocketPath(cfg), &fakeDaemon{})
	log, _ := testLogger()
	_, err := startOperations(context.Background(), operationsDeps{cfg: cfg, registry: prometheus.NewRegistry(), store: openTestStore(t),
		accounts: func() []worker.AccountStatus { return nil }, control: &fakeDaemon{}}, log)
	if err == nil || !strings.Contains(err.Error(), control.ErrSocketInUse.Error()) {
		t.Errorf("startOperations with a daemon on the socket: %v, want ErrSocketInUse", err)
	}
}

// serveFakeAt is serveFake at a given path.
func serveFakeAt(t *testing.T, path string, d control.Daemon) {
	t.Helper()
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); control.ServeListener(ctx, ln, d, nil) }()
	t.Cleanup(func() { cancel(); <-done })
}
