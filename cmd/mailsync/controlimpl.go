package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/worker"
)

// controlAPI implements control.Daemon over the running daemon.
type controlAPI struct {
	d       *daemon
	started time.Time
	cfgPath string
}

var _ control.Daemon = (*controlAPI)(nil)

// control returns the daemon's operations API for the control socket.
func (d *daemon) control() control.Daemon {
	return &controlAPI{d: d, started: d.started, cfgPath: d.cfgPath}
}

// mapErr turns worker errors into the control package's, which the socket
// maps to 404, keeping the worker's words: both say "unknown account", and
// saying it twice helps no one.
func mapErr(err error) error {
	for _, m := range []struct{ from, to error }{
		{worker.ErrUnknownAccount, control.ErrUnknownAccount},
		{worker.ErrUnknownFolder, control.ErrUnknownFolder},
		{worker.ErrUnknownJob, control.ErrUnknownJob},
		{worker.ErrNoDeadLetter, control.ErrUnknownMessage},
	} {
		if errors.Is(err, m.from) {
			return &kindError{kind: m.to, err: err}
		}
	}
	return err
}

// kindError is err, matching kind too (errors.Is) without saying it.
type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

func (c *controlAPI) Status(ctx context.Context) (*control.Status, error) {
	cfg := c.d.sup.Config()
	st := &control.Status{
		Version: Version, Pid: os.Getpid(), StartedAt: c.started, Config: c.cfgPath,
		StateFile: cfg.State, Sink: cfg.Sink.Type,
	}
	if h, ok := c.d.sink.(sink.Health); ok {
		st.SinkHealth = h.Health()
	}
	live := c.d.sup.Status()
	err := c.d.store.View(func(tx *store.Tx) error {
		for _, a := range live {
			as := control.AccountStatus{Account: a.Account, State: a.State, Connections: a.Connections, LastError: a.LastError}
			for _, f := range a.Folders {
				fs, err := folderStatus(tx, a.Account, f.Folder)
				if err != nil {
					return err
				}
				fs.Role, fs.State, fs.UIDNext = f.Role, f.State, f.UIDNext
				fs.LastError, fs.LastErrorAt, fs.ConsecutiveErrors, fs.LastSync = f.LastError, f.LastErrorAt, f.ConsecutiveErrors, f.LastSync
				fs.StalledSince, fs.Stalled, fs.IdleCheckedAt = f.StalledSince, f.Stalled, f.IdleCheckedAt
				fs.CatchUpHelper = f.CatchUpHelper
				if a.State == worker.StatePaused {
					fs.State = worker.StatePaused
				}
				as.Folders = append(as.Folders, fs)
			}
			st.Accounts = append(st.Accounts, as)
		}
		return nil
	})
	return st, err
}

// folderStatus reads what the state file knows of a folder; the offline
// status command uses it too.
func folderStatus(tx *store.Tx, account, folder string) (control.FolderStatus, error) {
	fs := control.FolderStatus{Folder: folder}
	cur, err := tx.Folder(account, folder)
	if err != nil {
		return fs, err
	}
	cnt, err := tx.Counters(account, folder)
	if err != nil {
		return fs, err
	}
	outbox, err := tx.OutboxCount(account, folder)
	if err != nil {
		return fs, err
	}
	dead, err := tx.DeadLetterCount(account, folder)
	if err != nil {
		return fs, err
	}
	fs.UIDValidity, fs.LastUID, fs.UIDNext, fs.LastSync = cur.UIDValidity, cur.LastUID, cur.UIDNext, cur.LastSyncAt
	fs.Delivered, fs.Excluded, fs.Skipped = cnt.Delivered, cnt.Excluded, cnt.Skipped
	fs.Outbox, fs.DeadLetters = outbox, dead
	fs.Reasons, err = tx.Reasons(account, folder)
	return fs, err
}

func (c *controlAPI) Pause(_ context.Context, account string) error {
	return mapErr(c.d.sup.Pause(account))
}

func (c *controlAPI) Resume(_ context.Context, account string) error {
	return mapErr(c.d.sup.Resume(account))
}

func (c *controlAPI) Resync(_ context.Context, account, folder string) error {
	return mapErr(c.d.sup.Resync(account, folder))
}

// Reload re-reads the config file the daemon was started with.
func (c *controlAPI) Reload(_ context.Context) (*control.ReloadResult, error) {
	return c.d.reload()
}

func (c *controlAPI) StartBackfill(_ context.Context, req control.BackfillRequest) (*control.BackfillJob, error) {
	job, err := c.d.sup.StartBackfill(worker.BackfillRequest{
		Account: req.Account, Folder: req.Folder, Since: req.Since, Until: req.Until,
		DryRun: req.DryRun, Rate: req.Rate, OldestFirst: req.OldestFirst,
	})
	if err != nil {
		return nil, mapErr(err)
	}
	j := toControlJob(worker.BackfillProgress{BackfillJob: job})
	return &j, nil
}

func (c *controlAPI) Backfills(context.Context) ([]control.BackfillJob, error) {
	jobs, err := c.d.sup.Backfills()
	if err != nil {
		return nil, err
	}
	out := make([]control.BackfillJob, len(jobs))
	for i, j := range jobs {
		out[i] = toControlJob(j)
	}
	return out, nil
}

func (c *controlAPI) Backfill(ctx context.Context, id string) (*control.BackfillJob, error) {
	jobs, err := c.Backfills(ctx)
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if j.ID == id {
			return &j, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", control.ErrUnknownJob, id)
}

func (c *controlAPI) CancelBackfill(_ context.Context, id string) error {
	return mapErr(c.d.sup.CancelBackfill(id))
}

func toControlJob(j worker.BackfillProgress) control.BackfillJob {
	return control.BackfillJob{
		ID: j.ID,
		Request: control.BackfillRequest{
			Account: j.Account, Folder: j.Folder, Since: j.Since, Until: j.Until,
			DryRun: j.DryRun, Rate: j.Rate, OldestFirst: !j.NewestFirst,
		},
		State: string(j.State), Total: j.Total, Done: j.Done, Delivered: j.Delivered, Skipped: j.Skipped,
		Error: j.Error, Created: j.Created, Updated: j.Updated, Matched: j.Matched,
	}
}

func (c *controlAPI) DeadLetters(_ context.Context, account string) ([]control.DeadLetter, error) {
	dls, err := c.d.sup.DeadLetters(account)
	if err != nil {
		return nil, err
	}
	out := make([]control.DeadLetter, len(dls))
	for i, d := range dls {
		out[i] = control.DeadLetter{
			Account: d.Account, Folder: d.Folder, UID: d.UID, Key: d.Key, MessageID: d.MessageID,
			Subject: d.Subject, Reason: d.Reason, At: d.At, Attempts: d.Attempts,
		}
	}
	return out, nil
}

func (c *controlAPI) RetryDeadLetter(ctx context.Context, account, folder string, uid uint32) error {
	return mapErr(c.d.sup.RetryDeadLetter(ctx, account, folder, uid))
}

func (c *controlAPI) DropDeadLetter(_ context.Context, account, folder string, uid uint32) error {
	return mapErr(c.d.sup.DropDeadLetter(account, folder, uid))
}

// reload re-reads the config file and applies it; a bad file is refused
// with its reason and the running configuration stays.
func (d *daemon) reload() (*control.ReloadResult, error) {
	if d.cfgPath == "" {
		return nil, errors.New("reload: the daemon was not started from a config file")
	}
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	refused := func(err error) error {
		// A bad file is the caller's to fix: the socket answers 400.
		return &kindError{kind: control.ErrInvalidRequest, err: fmt.Errorf("reload refused, the running configuration stays: %w", err)}
	}
	cfg, err := config.Load(d.cfgPath)
	if err != nil {
		return nil, refused(err)
	}
	// The token manager knows the OAuth2 accounts it started with; a new
	// one would fail every login, so say so now.
	for _, a := range cfg.Accounts {
		if old, ok := d.cfg.Account(a.ID); a.Auth == "oauth2" && (!ok || old.Auth != "oauth2") {
			return nil, refused(fmt.Errorf("%s: a new OAuth2 account needs a restart (systemctl restart mailsync)", a.Path()))
		}
	}
	m, err := buildMatcher(cfg, d.store, d)
	if err != nil {
		return nil, refused(err)
	}
	added, removed, restarted, unchanged, err := d.sup.Reload(cfg, m)
	if err != nil {
		return nil, refused(err)
	}
	if cfg.SMTPFront != d.cfg.SMTPFront {
		// The listener and its certificate are bound at start; accounts
		// and the credentials file are followed live.
		d.log.Warn("smtp_front changed: the new settings take effect at the next restart")
	}
	d.cfg = cfg
	if d.sender != nil {
		d.sender.SetConfig(cfg)
	}
	// A reload is how an admin says "try again" after fixing an OAuth2
	// client or logging in anew: clear the reauth-needed state.
	if d.tokens != nil {
		for _, a := range cfg.Accounts {
			if a.Auth == "oauth2" {
				d.tokens.Reset(a.ID)
			}
		}
	}
	return &control.ReloadResult{Added: added, Removed: removed, Restarted: restarted, Unchanged: unchanged}, nil
}
