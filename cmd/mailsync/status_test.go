package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/sink"
)

// runCLI runs a command line in-process with ctx.
func runCLI(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb}
	code = m.Run(ctx, args)
	return out.String(), errb.String(), code
}

// fakeDaemon is a control.Daemon with canned answers that records calls.
// Accounts other than "sales" are unknown.
type fakeDaemon struct {
	mu     stdsync.Mutex
	calls  []string
	status *control.Status
	// job is advanced by each Backfill poll: Done += step until Total.
	job  control.BackfillJob
	step int
	// reloadErr, if set, is what Reload returns.
	reloadErr error
}

func (f *fakeDaemon) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeDaemon) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeDaemon) known(account string) error {
	if account != "sales" {
		return fmt.Errorf("%w %q", control.ErrUnknownAccount, account)
	}
	return nil
}

func (f *fakeDaemon) Status(context.Context) (*control.Status, error) {
	f.record("status")
	return f.status, nil
}
func (f *fakeDaemon) Pause(_ context.Context, a string) error {
	f.record("pause %s", a)
	return f.known(a)
}
func (f *fakeDaemon) Resume(_ context.Context, a string) error {
	f.record("resume %s", a)
	return f.known(a)
}
func (f *fakeDaemon) Resync(_ context.Context, a, folder string) error {
	f.record("resync %s %s", a, folder)
	return f.known(a)
}
func (f *fakeDaemon) Reload(context.Context) (*control.ReloadResult, error) {
	f.record("reload")
	if f.reloadErr != nil {
		return nil, f.reloadErr
	}
	return &control.ReloadResult{Added: []string{"ops"}, Restarted: []string{"sales"}}, nil
}
func (f *fakeDaemon) StartBackfill(_ context.Context, req control.BackfillRequest) (*control.BackfillJob, error) {
	f.record("backfill %s %s since=%s until=%s dry=%v rate=%g oldest=%v", req.Account, req.Folder,
		req.Since.Format(time.DateOnly), req.Until.Format(time.DateOnly), req.DryRun, req.Rate, req.OldestFirst)
	if err := f.known(req.Account); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.job.ID, f.job.Request, f.job.State = "bf-7", req, "queued"
	j := f.job
	return &j, nil
}
func (f *fakeDaemon) Backfills(context.Context) ([]control.BackfillJob, error) {
	f.record("backfills")
	f.mu.Lock()
	defer f.mu.Unlock()
	return []control.BackfillJob{f.job}, nil
}
func (f *fakeDaemon) Backfill(_ context.Context, id string) (*control.BackfillJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != f.job.ID {
		return nil, fmt.Errorf("%w %q", control.ErrUnknownJob, id)
	}
	if f.job.State == "queued" || f.job.State == "running" {
		f.job.State = "running"
		f.job.Done = min(f.job.Done+f.step, f.job.Total)
		if f.step > 0 && f.job.Done == f.job.Total {
			f.job.State = "done"
			f.job.Delivered = f.job.Total - f.job.Skipped
		}
	}
	f.job.Updated = f.job.Created.Add(90 * time.Second)
	j := f.job
	return &j, nil
}
func (f *fakeDaemon) CancelBackfill(_ context.Context, id string) error {
	f.record("cancel %s", id)
	if id != "bf-7" {
		return fmt.Errorf("%w %q", control.ErrUnknownJob, id)
	}
	return nil
}
func (f *fakeDaemon) DeadLetters(_ context.Context, a string) ([]control.DeadLetter, error) {
	f.record("deadletters %q", a)
	return []control.DeadLetter{{Account: "sales", Folder: "INBOX", UID: 12, Reason: "sink refused: 422 unknown contact",
		Subject: "Quote", At: time.Now().Add(-2 * time.Hour), Attempts: 3}}, nil
}
func (f *fakeDaemon) RetryDeadLetter(_ context.Context, a, folder string, uid uint32) error {
	f.record("retry %s %s %d", a, folder, uid)
	return f.known(a)
}
func (f *fakeDaemon) DropDeadLetter(_ context.Context, a, folder string, uid uint32) error {
	f.record("drop %s %s %d", a, folder, uid)
	return f.known(a)
}

// serveFake serves d on a socket in a temp dir until the test ends and
// returns the socket path.
func serveFake(t *testing.T, d control.Daemon) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mailsync.sock")
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); control.ServeListener(ctx, ln, d, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

var statusNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleStatus() *control.Status {
	return &control.Status{
		Version: "1.2.3", Pid: 4242, StartedAt: statusNow.Add(-3*time.Hour - 12*time.Minute),
		Config: "/etc/mailsync/config.yaml", StateFile: "/var/lib/mailsync/state.db", Sink: "webhook",
		Accounts: []control.AccountStatus{
			{Account: "ops", State: "auth failed", LastError: "imap 10.0.0.1:993: login: imap: NO [AUTHENTICATIONFAILED] Authentication failed.",
				Folders: []control.FolderStatus{{Folder: "INBOX", State: "auth failed", LastUID: 40, Delivered: 38, LastSync: statusNow.Add(-2 * time.Hour)}}},
			{Account: "sales", State: "running", Connections: 2, Folders: []control.FolderStatus{
				{Folder: "INBOX", State: "idle", LastUID: 1234, Delivered: 1200, Skipped: 6, Excluded: 2, DeadLetters: 1, LastSync: statusNow.Add(-3 * time.Minute),
					Reasons: map[string]int64{"skipped no_match": 6, "excluded internal": 2}},
				{Folder: "Sent", State: "waiting for sink", LastUID: 567, Delivered: 560, Outbox: 2, LastSync: statusNow.Add(-40 * time.Second),
					LastError: "retry after 30s: webhook crm.example: 503 Service Unavailable", LastErrorAt: statusNow.Add(-10 * time.Second)},
			}},
		},
	}
}

func TestRenderStatus(t *testing.T) {
	var b bytes.Buffer
	renderStatus(&b, sampleStatus(), statusNow)
	got := b.String()
	wantLines := []string{
		"mailsync 1.2.3, pid 4242, up 3h12m",
		"config  /etc/mailsync/config.yaml",
		"sink    webhook",
		"ACCOUNT  FOLDER  STATE             LAST UID  DELIVERED  SKIPPED  EXCLUDED  OUTBOX  DEAD  LAST SYNC  CONNS  LAST ERROR",
		"ops              auth failed                                                                        0      login refused: wrong username or password",
		"         INBOX   auth failed       40        38         0        0         0       0     2h ago",
		"sales            running                                                                            2",
		"         INBOX   idle              1234      1200       6        2         0       1     3m ago",
		"         Sent    waiting for sink  567       560        0        0         2       0     40s ago           retry after 30s: webhook crm.example: 503 Service Unavailable (10s ago)",
		// Why a folder delivers less than it holds (issue 14, item 4).
		"  sales/INBOX: skipped no_match 6, excluded internal 2",
	}
	for _, w := range wantLines {
		if !containsLine(got, w) {
			t.Errorf("status output lacks line %q\ngot:\n%s", w, got)
		}
	}
	if strings.Contains(got, "not running") {
		t.Errorf("live status says the daemon is not running:\n%s", got)
	}
}

// containsLine reports whether out has a line equal to want once trailing
// blanks (tabwriter padding) are dropped.
func containsLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimRight(l, " ") == want {
			return true
		}
	}
	return false
}

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{2 * time.Second, "just now"}, {42 * time.Second, "42s ago"}, {3 * time.Minute, "3m ago"},
		{5 * time.Hour, "5h ago"}, {50 * time.Hour, "2d ago"},
	}
	for _, tt := range tests {
		if got := ago(statusNow.Add(-tt.d), statusNow); got != tt.want {
			t.Errorf("ago(-%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := ago(time.Time{}, statusNow); got != "never" {
		t.Errorf("ago(zero) = %q, want never", got)
	}
}

func TestPlainError(t *testing.T) {
	tests := []struct{ in, want string }{
		{"imap h:993: dial: dial tcp 127.0.0.1:993: connect: connection refused", "server refused the connection (server down or wrong port?)"},
		{"imap h:993: tls: certificate for h expired on 2026-01-03", "TLS: certificate for h expired on 2026-01-03"},
		{"imap h:993: fetch: no response in 60s", "server did not answer in time"},
		{"imap h:993: select: imap: NO [NONEXISTENT] Mailbox doesn't exist", "select: imap: NO [NONEXISTENT] Mailbox doesn't exist"},
		{strings.Repeat("x", 300), strings.Repeat("x", 99) + "…"},
	}
	for _, tt := range tests {
		if got := plainError(tt.in); got != tt.want {
			t.Errorf("plainError(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStatusJSONFromDaemon(t *testing.T) {
	d := &fakeDaemon{status: sampleStatus()}
	sock := serveFake(t, d)
	out, errOut, code := runCLI(t, context.Background(), "status", "--socket", sock, "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d, stderr %s", code, errOut)
	}
	var got control.Status
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not a control.Status: %v\n%s", err, out)
	}
	if got.Pid != 4242 || len(got.Accounts) != 2 || got.Accounts[1].Folders[1].Outbox != 2 || got.Offline {
		t.Errorf("status --json = %+v, want the daemon's status", got)
	}
	out, _, code = runCLI(t, context.Background(), "status", "--socket", sock)
	if code != 0 || !strings.Contains(out, "pid 4242") || !strings.Contains(out, "waiting for sink") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// writeStatusConfig writes a config whose state file is in dir.
func writeStatusConfig(t *testing.T, dir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`state: %s/state.db
sink: {type: jsonl, jsonl: {path: %s/out.jsonl}}
accounts:
  - {id: sales, host: 127.0.0.1, port: 1, tls: none, username: u, password_env: NOPE}
  - {id: support, host: 127.0.0.1, port: 1, tls: none, username: u, password_env: NOPE}
`, dir, dir)
	path := filepath.Join(dir, "mailsync.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStatusOffline(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeStatusConfig(t, dir)
	// No state file yet: say so rather than print an empty table.
	_, errOut, code := runCLI(t, context.Background(), "status", "-c", cfgPath)
	if code == 0 || !strings.Contains(errOut, "does not exist yet") {
		t.Errorf("status without state file: exit %d, stderr %q", code, errOut)
	}

	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	synced := time.Now().Add(-5 * time.Minute)
	err = st.Update(func(tx *store.Tx) error {
		if err := tx.PutFolder("sales", "INBOX", store.FolderState{UIDValidity: 9, LastUID: 321, UIDNext: 322, LastSyncAt: synced}); err != nil {
			return err
		}
		if err := tx.AddCounters("sales", "INBOX", store.Counters{Delivered: 300, Excluded: 4, Skipped: 17}); err != nil {
			return err
		}
		if err := tx.PutOutbox("sales", "INBOX", 320, store.OutboxEntry{Key: "k320"}); err != nil {
			return err
		}
		// A skip through the ledger's own verb records its reason.
		if _, err := tx.Skip("k5", store.Outcome{Copy: sink.Provenance{Account: "sales", Folder: "INBOX", UIDValidity: 9, UID: 5},
			Reason: "no_match: no participant is in the directory", At: synced}); err != nil {
			return err
		}
		if err := tx.PutDeadLetter("sales", "INBOX", 100, store.DeadLetter{Key: "k100", Reason: "422"}); err != nil {
			return err
		}
		if err := tx.PutDeadLetter("sales", "INBOX", 101, store.DeadLetter{Key: "k101", Reason: "422"}); err != nil {
			return err
		}
		// An account that was removed from the config keeps its state.
		return tx.PutFolder("old", "INBOX", store.FolderState{LastUID: 5})
	})
	if err != nil {
		t.Fatal(err)
	}
	// While the "daemon" holds the state file without a socket, status
	// must say that instead of reading around it.
	_, errOut, code = runCLI(t, context.Background(), "status", "-c", cfgPath)
	if code == 0 || !strings.Contains(errOut, "no daemon answers") {
		t.Errorf("status with the state file held: exit %d, stderr %q", code, errOut)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runCLI(t, context.Background(), "status", "-c", cfgPath)
	if code != 0 {
		t.Fatalf("offline status: exit %d, stderr %s", code, errOut)
	}
	for _, w := range []string{
		"(daemon not running: read from state file)",
		"ACCOUNT  FOLDER  STATE          LAST UID  DELIVERED  SKIPPED  EXCLUDED  OUTBOX  DEAD  LAST SYNC  CONNS  LAST ERROR",
		"old              not in config                                                                   -",
		"sales            -                                                                               -",
		"         INBOX   -              321       300        17       4         1       2     5m ago",
		"support          -                                                                               -",
		"  sales/INBOX: skipped no_match 1",
	} {
		if !containsLine(out, w) {
			t.Errorf("offline status lacks line %q\ngot:\n%s", w, out)
		}
	}

	out, _, code = runCLI(t, context.Background(), "status", "-c", cfgPath, "--json")
	var got control.Status
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("offline status --json: exit %d, %v\n%s", code, err, out)
	}
	if !got.Offline || len(got.Accounts) != 3 || got.Accounts[1].Folders[0].Excluded != 4 || got.Accounts[1].Folders[0].UIDValidity != 9 {
		t.Errorf("offline JSON = %+v", got)
	}
}

func TestSince(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{20 * time.Second, "under a minute"}, {3*time.Hour + 12*time.Minute, "3h12m"}, {50 * time.Hour, "2d2h"},
	}
	for _, tt := range tests {
		if got := since(statusNow.Add(-tt.d), statusNow); got != tt.want {
			t.Errorf("since(-%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestRenderStatusCatchUpHelper: a folder whose catch-up uses a second
// connection says so beside its state, so CONNS adds up.
func TestRenderStatusCatchUpHelper(t *testing.T) {
	st := &control.Status{Accounts: []control.AccountStatus{{Account: "sales", State: "running", Connections: 3,
		Folders: []control.FolderStatus{
			{Folder: "INBOX", State: "syncing", LastUID: 1000, CatchUpHelper: true},
			{Folder: "Sent", State: "idle", LastUID: 20},
		}}}}
	var b bytes.Buffer
	renderStatus(&b, st, statusNow)
	if !strings.Contains(b.String(), "INBOX   syncing (+1 connection)") {
		t.Errorf("status does not show the catch-up connection:\n%s", b.String())
	}
	if strings.Count(b.String(), "+1 connection") != 1 {
		t.Errorf("only INBOX has a catch-up connection:\n%s", b.String())
	}
}
