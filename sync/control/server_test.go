package control

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/config"
)

// serve starts a server for d on a socket in a temp dir and returns the
// socket path and a connected client; the server is stopped, and Serve's
// return checked, in t.Cleanup.
func serve(t *testing.T, d Daemon) (string, *Client) {
	t.Helper()
	path := filepath.Join(t.TempDir(), SocketName)
	stop := serveAt(t, path, d)
	t.Cleanup(stop)
	c, err := Dial(path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return path, c
}

// serveAt runs Serve on path and returns a function that stops it and
// waits for it to return.
func serveAt(t *testing.T, path string, d Daemon) (stop func()) {
	t.Helper()
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, d, nil) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after shutdown, want nil", err)
			}
		case <-time.After(2 * ShutdownTimeout):
			t.Errorf("Serve did not return after shutdown")
		}
	}
}

func TestClientEveryRoute(t *testing.T) {
	d := &fakeDaemon{}
	_, c := serve(t, d)
	ctx := context.Background()
	since := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name string
		call func() error
		want string // the fake's record of the call
	}{
		{"status", func() error {
			st, err := c.Status(ctx)
			if err == nil && (st.Pid != 42 || st.Accounts[0].Folders[0].LastUID != 7 || !st.Accounts[0].Folders[0].LastSync.Equal(fakeTime)) {
				t.Errorf("Status() = %+v, want the fake's status", st)
			}
			return err
		}, "status"},
		{"pause", func() error { return c.Pause(ctx, "sales") }, "pause sales"},
		{"resume", func() error { return c.Resume(ctx, "sales") }, "resume sales"},
		{"resync folder with slash and space", func() error { return c.Resync(ctx, "sales", "Archive/2024 Q1") }, "resync sales Archive/2024 Q1"},
		{"resync dot dot", func() error { return c.Resync(ctx, "sales", "..") }, "resync sales .."},
		{"resync percent", func() error { return c.Resync(ctx, "sales", "100%") }, "resync sales 100%"},
		{"reload", func() error {
			res, err := c.Reload(ctx)
			if err == nil && !reflect.DeepEqual(res, &ReloadResult{Added: []string{"ops"}, Unchanged: []string{"sales"}}) {
				t.Errorf("Reload() = %+v", res)
			}
			return err
		}, "reload"},
		{"start backfill", func() error {
			job, err := c.StartBackfill(ctx, BackfillRequest{Account: "sales", Folder: "INBOX", Since: since, Rate: 2.5, DryRun: true, OldestFirst: true})
			if err == nil && (job.ID != "bf-1" || job.Request.Folder != "INBOX") {
				t.Errorf("StartBackfill() = %+v", job)
			}
			return err
		}, "backfill sales INBOX since=2025-01-02 rate=2.5 dry=true oldest=true"},
		{"list backfills", func() error {
			jobs, err := c.Backfills(ctx)
			if err == nil && jobs == nil {
				t.Errorf("Backfills() = nil, want an empty list")
			}
			return err
		}, "backfills"},
		{"get backfill", func() error {
			job, err := c.Backfill(ctx, "bf-1")
			if err == nil && (job.Done != 4 || job.Matched["matched"] != 3) {
				t.Errorf("Backfill() = %+v", job)
			}
			return err
		}, "get backfill bf-1"},
		{"cancel backfill", func() error { return c.CancelBackfill(ctx, "bf-1") }, "cancel backfill bf-1"},
		{"dead letters of one account", func() error {
			dls, err := c.DeadLetters(ctx, "sales & co")
			if err == nil && (len(dls) != 1 || dls[0].UID != 3) {
				t.Errorf("DeadLetters() = %+v", dls)
			}
			return err
		}, `deadletters "sales & co"`},
		{"dead letters of all accounts", func() error { _, err := c.DeadLetters(ctx, ""); return err }, `deadletters ""`},
		{"retry dead letter", func() error { return c.RetryDeadLetter(ctx, "sales", "INBOX/Sub", 3) }, "retry sales INBOX/Sub 3"},
		{"drop dead letter", func() error { return c.DropDeadLetter(ctx, "sales", "INBOX", 4) }, "drop sales INBOX 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			if got := d.lastCall(); got != tt.want {
				t.Errorf("daemon saw %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClientErrorMapping(t *testing.T) {
	_, c := serve(t, &fakeDaemon{})
	ctx := context.Background()
	tests := []struct {
		name       string
		call       func() error
		sentinel   error
		status     int
		wantInText string
	}{
		{"unknown account", func() error { return c.Pause(ctx, "nobody") }, ErrUnknownAccount, 404, `"nobody"`},
		{"unknown folder", func() error { return c.Resync(ctx, "sales", "missing") }, ErrUnknownFolder, 404, "unknown folder"},
		{"unknown job", func() error { _, err := c.Backfill(ctx, "bf-9"); return err }, ErrUnknownJob, 404, "bf-9"},
		{"unknown job on cancel", func() error { return c.CancelBackfill(ctx, "bf-9") }, ErrUnknownJob, 404, "bf-9"},
		{"unknown message", func() error { return c.RetryDeadLetter(ctx, "sales", "INBOX", 99) }, ErrUnknownMessage, 404, "uid 99"},
		{"invalid request", func() error {
			_, err := c.StartBackfill(ctx, BackfillRequest{Account: "sales", Since: time.Now(), Until: time.Now().Add(-time.Hour)})
			return err
		}, ErrInvalidRequest, 400, "until is before since"},
		{"internal error", func() error { return c.Resync(ctx, "sales", "boom") }, nil, 500, "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v (%T), want *control.Error", err, err)
			}
			if ce.Status != tt.status {
				t.Errorf("status = %d, want %d", ce.Status, tt.status)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			if tt.sentinel == nil && (errors.Is(err, ErrUnknownAccount) || errors.Is(err, ErrInvalidRequest)) {
				t.Errorf("internal error %v matches a sentinel", err)
			}
			if !strings.Contains(err.Error(), tt.wantInText) {
				t.Errorf("error %q does not contain %q", err, tt.wantInText)
			}
		})
	}
}

// rawRequest sends a request over the socket without the Client, for what
// the Client never sends.
func rawRequest(t *testing.T, path, method, url string, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(method, "http://mailsync"+url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerRejectsBadRequests(t *testing.T) {
	d := &fakeDaemon{}
	path, _ := serve(t, d)
	tests := []struct {
		method, url, body string
		status            int
		wantInBody        string
	}{
		{"GET", "/v1/nope", "", 404, `"code": "no_endpoint"`},
		{"POST", "/v1/deadletters/sales/INBOX/abc/retry", "", 400, "not a positive 32-bit number"},
		{"POST", "/v1/deadletters/sales/INBOX/0/drop", "", 400, "invalid_request"},
		{"POST", "/v1/deadletters/sales/INBOX/4294967296/drop", "", 400, "invalid_request"},
		{"POST", "/v1/backfills", "{not json", 400, "backfill request"},
		{"POST", "/v1/backfills", `{"account":"sales","bogus":1}`, 400, "bogus"},
		{"GET", "/v1/accounts/sales/pause", "", 404, "no such endpoint: GET"},
	}
	for _, tt := range tests {
		status, body := rawRequest(t, path, tt.method, tt.url, tt.body)
		if status != tt.status || !strings.Contains(body, tt.wantInBody) {
			t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.url, status, body, tt.status, tt.wantInBody)
		}
	}
	if got := d.lastCall(); got != "" {
		t.Errorf("a rejected request reached the daemon: %q", got)
	}
}

func TestListenSocketMode(t *testing.T) {
	// A permissive umask must not make the socket reachable by others.
	old := umask(0)
	defer umask(old)
	path := filepath.Join(t.TempDir(), "sub", SocketName)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("socket mode = %v, want %v", got, want)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s is not a socket: %v", path, fi.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("socket dir holds %d entries, want only the socket (temp dir left behind?)", len(entries))
	}
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file still there after Close: %v", err)
	}
}

func TestListenRemovesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	// A daemon killed with SIGKILL leaves its socket file behind.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := Dial(path); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Dial on a stale socket: %v, want ErrNoDaemon", err)
	}
	stop := serveAt(t, path, &fakeDaemon{})
	defer stop()
	c, err := Dial(path)
	if err != nil {
		t.Fatalf("Dial after taking over the stale socket: %v", err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("Status: %v", err)
	}
}

func TestListenRefusesSecondDaemon(t *testing.T) {
	d := &fakeDaemon{}
	path, c := serve(t, d)
	_, err := Listen(path)
	if !errors.Is(err, ErrSocketInUse) {
		t.Fatalf("second Listen: %v, want ErrSocketInUse", err)
	}
	// The first daemon still answers on its socket.
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("first daemon after refused takeover: %v", err)
	}
}

func TestListenRefusesRegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Errorf("regular file was changed: %q", b)
	}
}

func TestListenRefusesLongPath(t *testing.T) {
	path := "/tmp/" + strings.Repeat("x", 120) + "/mailsync.sock"
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "admin.socket") {
		t.Fatalf("Listen(long path): %v, want an error naming admin.socket", err)
	}
}

func TestDialNoDaemon(t *testing.T) {
	_, err := Dial(filepath.Join(t.TempDir(), "absent.sock"))
	if !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Dial(missing) = %v, want ErrNoDaemon", err)
	}
}

func TestClientAfterDaemonStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	stop := serveAt(t, path, &fakeDaemon{})
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("Status after the daemon stopped: %v, want ErrNoDaemon", err)
	}
}

func TestServeShutdownWithRequestInFlight(t *testing.T) {
	d := &fakeDaemon{block: make(chan struct{})}
	path := filepath.Join(t.TempDir(), SocketName)
	stop := serveAt(t, path, d)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Status(context.Background()); errc <- err }()
	// Wait until the request reached the daemon.
	deadline := time.Now().Add(5 * time.Second)
	for d.lastCall() != "status" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d.lastCall() != "status" {
		t.Fatal("request never reached the daemon")
	}
	// Shutdown cancels the request's context (BaseContext), so the
	// blocked handler returns and Serve returns: stop() checks that.
	stop()
	if err := <-errc; err == nil {
		t.Errorf("request in flight at shutdown succeeded, want an error")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file still there after shutdown: %v", err)
	}
}

func TestSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "run", SocketName)
	link := filepath.Join(dir, "state", SocketName)
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	stop := serveAt(t, target, &fakeDaemon{})
	defer stop()
	// A link left by an earlier run, pointing at the same place.
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	remove, err := Symlink(target, link)
	if err != nil {
		t.Fatalf("Symlink over an old link to the same target: %v", err)
	}
	c, err := Dial(link)
	if err != nil {
		t.Fatalf("Dial through the link: %v", err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("Status through the link: %v", err)
	}
	remove()
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("link still there after remove: %v", err)
	}
}

func TestSocketPath(t *testing.T) {
	cfg := &config.Config{State: "/var/lib/mailsync/state.db"}
	t.Setenv("RUNTIME_DIRECTORY", "")
	if got, want := SocketPath(cfg), "/var/lib/mailsync/mailsync.sock"; got != want {
		t.Errorf("SocketPath() without RUNTIME_DIRECTORY = %q, want %q", got, want)
	}
	if got := LinkPath(cfg); got != "" {
		t.Errorf("LinkPath() without RUNTIME_DIRECTORY = %q, want none", got)
	}
	t.Setenv("RUNTIME_DIRECTORY", "/run/mailsync:/run/other")
	if got, want := SocketPath(cfg), "/run/mailsync/mailsync.sock"; got != want {
		t.Errorf("SocketPath() under systemd = %q, want %q", got, want)
	}
	if got, want := LinkPath(cfg), "/var/lib/mailsync/mailsync.sock"; got != want {
		t.Errorf("LinkPath() under systemd = %q, want %q", got, want)
	}
	cfg.Admin.Socket = "/srv/ms.sock"
	if got, want := SocketPath(cfg), "/srv/ms.sock"; got != want {
		t.Errorf("SocketPath() with admin.socket = %q, want %q", got, want)
	}
	if got := LinkPath(cfg); got != "" {
		t.Errorf("LinkPath() with admin.socket = %q, want none", got)
	}
}
