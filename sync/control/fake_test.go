package control

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"
)

// fakeDaemon records every call and answers from canned data. Accounts
// other than "sales" are unknown; folder "boom" fails with a plain error.
type fakeDaemon struct {
	mu    stdsync.Mutex
	calls []string
	// block, if set, is waited on by Status (to test shutdown with a
	// request in flight).
	block chan struct{}
}

var errBoom = errors.New("disk on fire")

func (f *fakeDaemon) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeDaemon) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeDaemon) check(account string) error {
	if account != "sales" {
		return fmt.Errorf("%w %q", ErrUnknownAccount, account)
	}
	return nil
}

var fakeTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func (f *fakeDaemon) Status(ctx context.Context) (*Status, error) {
	f.record("status")
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &Status{Version: "test", Pid: 42, StartedAt: fakeTime, Accounts: []AccountStatus{{
		Account: "sales", State: "running", Connections: 2,
		Folders: []FolderStatus{{Folder: "INBOX", State: "idle", LastUID: 7, Delivered: 5, LastSync: fakeTime}},
	}}}, nil
}

func (f *fakeDaemon) Pause(_ context.Context, account string) error {
	f.record("pause %s", account)
	return f.check(account)
}

func (f *fakeDaemon) Resume(_ context.Context, account string) error {
	f.record("resume %s", account)
	return f.check(account)
}

func (f *fakeDaemon) Resync(_ context.Context, account, folder string) error {
	f.record("resync %s %s", account, folder)
	if folder == "boom" {
		return errBoom
	}
	if folder == "missing" {
		return fmt.Errorf("%w %q", ErrUnknownFolder, folder)
	}
	return f.check(account)
}

func (f *fakeDaemon) Reload(context.Context) (*ReloadResult, error) {
	f.record("reload")
	return &ReloadResult{Added: []string{"ops"}, Unchanged: []string{"sales"}}, nil
}

func (f *fakeDaemon) StartBackfill(_ context.Context, req BackfillRequest) (*BackfillJob, error) {
	f.record("backfill %s %s since=%s rate=%g dry=%v oldest=%v", req.Account, req.Folder,
		req.Since.Format(time.DateOnly), req.Rate, req.DryRun, req.OldestFirst)
	if !req.Until.IsZero() && req.Until.Before(req.Since) {
		return nil, fmt.Errorf("%w: until is before since", ErrInvalidRequest)
	}
	if err := f.check(req.Account); err != nil {
		return nil, err
	}
	return &BackfillJob{ID: "bf-1", Request: req, State: "queued", Created: fakeTime}, nil
}

func (f *fakeDaemon) Backfills(context.Context) ([]BackfillJob, error) {
	f.record("backfills")
	return nil, nil
}

func (f *fakeDaemon) Backfill(_ context.Context, id string) (*BackfillJob, error) {
	f.record("get backfill %s", id)
	if id != "bf-1" {
		return nil, fmt.Errorf("%w %q", ErrUnknownJob, id)
	}
	return &BackfillJob{ID: id, State: "running", Total: 10, Done: 4, Matched: map[string]int{"matched": 3}}, nil
}

func (f *fakeDaemon) CancelBackfill(_ context.Context, id string) error {
	f.record("cancel backfill %s", id)
	if id != "bf-1" {
		return fmt.Errorf("%w %q", ErrUnknownJob, id)
	}
	return nil
}

func (f *fakeDaemon) DeadLetters(_ context.Context, account string) ([]DeadLetter, error) {
	f.record("deadletters %q", account)
	return []DeadLetter{{Account: "sales", Folder: "INBOX", UID: 3, Reason: "422 rejected", At: fakeTime}}, nil
}

func (f *fakeDaemon) RetryDeadLetter(_ context.Context, account, folder string, uid uint32) error {
	f.record("retry %s %s %d", account, folder, uid)
	if uid == 99 {
		return fmt.Errorf("%w: uid %d", ErrUnknownMessage, uid)
	}
	return f.check(account)
}

func (f *fakeDaemon) DropDeadLetter(_ context.Context, account, folder string, uid uint32) error {
	f.record("drop %s %s %d", account, folder, uid)
	return f.check(account)
}
