package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/imapconn"
)

// accountWorker owns the folder workers of one mailbox account and the
// account-wide state they share: the connection count and the auth gate.
type accountWorker struct {
	sup *Supervisor
	cfg config.Account
	log *slog.Logger
	// policy is compiled once by the matcher and cached by pointer, so it
	// must live as long as the account and never change.
	policy *matcher.AccountPolicy

	cancel context.CancelFunc
	wg     stdsync.WaitGroup

	// slots is the connection budget (max_connections): every connection
	// the account opens, live or backfill, holds one while open.
	slots chan struct{}
	// helpers is the budget of catch-up helper connections (helper.go),
	// set once the folders are resolved; nil until then.
	helpers chan struct{}
	// dialWaiting counts this account's dials waiting for a server dial
	// slot (status shows it).
	dialWaiting atomic.Int32

	// resolved is closed once folders is set (the folders list resolved
	// on the server), so a command right after a start can wait for it.
	resolved chan struct{}

	mu          stdsync.Mutex
	folders     []*folderWorker
	conns       int
	authErr     error
	authRetryAt time.Time
	lastErr     string
	paused      bool
}

func (a *accountWorker) setPaused(p bool) {
	a.mu.Lock()
	a.paused = p
	a.mu.Unlock()
}

func (a *accountWorker) isPaused() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.paused
}

func newAccountWorker(sup *Supervisor, cfg config.Account) *accountWorker {
	policy := cfg.Matcher
	return &accountWorker{sup: sup, cfg: cfg, log: sup.log.With("account", cfg.ID), policy: &policy,
		slots: make(chan struct{}, cfg.MaxConnections), resolved: make(chan struct{})}
}

// start resolves the folders and starts one goroutine per IDLE folder plus
// one poller for the folders beyond the connection budget.
func (a *accountWorker) start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.run(ctx)
	}()
}

func (a *accountWorker) stop() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
}

func (a *accountWorker) run(ctx context.Context) {
	folders, listed, ok := a.resolveFolders(ctx)
	if !ok {
		return
	}
	a.mu.Lock()
	a.folders = folders
	a.helpers = a.helperSlots(len(folders))
	a.mu.Unlock()
	close(a.resolved)
	idleSlots := a.cfg.MaxConnections
	if len(folders) > idleSlots {
		idleSlots-- // one connection polls the rest
	}
	var polled []*folderWorker
	for i, f := range folders {
		if i < idleSlots {
			// The first folder keeps the connection the folders were
			// listed on: one login per account at start.
			var first *imapconn.Conn
			if i == 0 {
				first, listed.conn = listed.conn, nil
				listed.wake.Store(f)
			}
			a.wg.Add(1)
			go func() { defer a.wg.Done(); f.runIdle(ctx, first) }()
		} else {
			polled = append(polled, f)
		}
	}
	if listed.conn != nil { // no folder to hand it to
		a.closeConn(ctx, listed.conn)
	}
	if len(polled) > 0 {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.runPoller(ctx, polled) }()
	}
}

// listing is the connection the account listed its folders on, kept for
// the first folder worker to IDLE on; wake routes the server's unsolicited
// data to that worker once it is known.
type listing struct {
	conn *imapconn.Conn
	wake atomic.Pointer[folderWorker]
}

func (l *listing) signal() {
	if f := l.wake.Load(); f != nil {
		f.signal()
	}
}

// resolveFolders maps the configured folder list (roles and literal names)
// to mailbox names, retrying with backoff until it succeeds or ctx ends.
// It returns the connection it listed on, still open, for a folder to use.
// A failure is logged when it first happens or changes, not on every
// retry: at 1,000 accounts short of sockets that is thousands of lines.
func (a *accountWorker) resolveFolders(ctx context.Context) ([]*folderWorker, *listing, bool) {
	bo := backoff{min: a.sup.conf().Sync.RetryMin, max: a.sup.conf().Sync.RetryMax}
	var lastErr string
	for {
		if !a.waitAuthGate(ctx) {
			return nil, nil, false
		}
		l := &listing{}
		boxes, err := a.listFolders(ctx, l)
		if err == nil {
			if lastErr != "" {
				a.log.Info("folders listed again", "after_attempts", bo.attempt)
			}
			var out []*folderWorker
			for _, entry := range a.cfg.Folders {
				name, role, err := ResolveFolder(entry, boxes)
				if err != nil {
					a.setErr(err)
					a.log.Error("folder not found; it is skipped until the config changes", "entry", entry, "error", err)
					continue
				}
				out = append(out, newFolderWorker(a.sup, a, name, role))
			}
			return out, l, true
		}
		if ctx.Err() != nil {
			return nil, nil, false
		}
		a.setErr(err)
		if imapconn.IsAuthFailure(err) {
			a.authFailed(err)
			continue
		}
		d := bo.next()
		if msg := err.Error(); msg != lastErr {
			a.log.Warn("cannot list folders; retrying", "error", err, "retry_in", d.Round(time.Millisecond),
				"consecutive_errors", bo.attempt)
			lastErr = msg
		}
		if !sleep(ctx, d) {
			return nil, nil, false
		}
	}
}

// listFolders logs in and lists; on success l.conn is the open connection.
func (a *accountWorker) listFolders(ctx context.Context, l *listing) ([]Mailbox, error) {
	conn, err := a.dial(ctx, wakeHandler(l.signal))
	if err != nil {
		return nil, err
	}
	boxes, err := ListMailboxes(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("list: %w", err)
	}
	l.conn = conn
	return boxes, nil
}

// logoutTimeout bounds the LOGOUT sent when a connection is given up on
// shutdown: polite, but never a reason to miss the stop deadline.
const logoutTimeout = 2 * time.Second

// closeConn ends a connection: with LOGOUT when the worker is stopping
// (ctx ended) and the connection is healthy, so the server logs a clean
// logout instead of a dropped connection; at once otherwise. The LOGOUT
// is bounded by logoutTimeout and by the stop's hard deadline.
func (a *accountWorker) closeConn(ctx context.Context, conn *imapconn.Conn) {
	select {
	case <-conn.Closed():
		return
	default:
	}
	if ctx.Err() == nil {
		conn.Close()
		return
	}
	lctx, cancel := context.WithTimeout(a.sup.hardCtx, logoutTimeout)
	defer cancel()
	_ = conn.Logout(lctx)
}

// runPoller syncs folders that have no IDLE connection of their own, one
// after another on one shared connection.
func (a *accountWorker) runPoller(ctx context.Context, folders []*folderWorker) {
	bo := backoff{min: a.sup.conf().Sync.RetryMin, max: a.sup.conf().Sync.RetryMax}
	for ctx.Err() == nil {
		if !a.waitAuthGate(ctx) {
			return
		}
		conn, err := a.dial(ctx, nil)
		if err == nil {
			a.connOpened()
			for err == nil && ctx.Err() == nil {
				for _, f := range folders {
					if err = f.pollOnce(ctx, conn); err != nil {
						f.fail(err)
						break
					}
					f.setState(StatePolling, nil)
				}
				if err == nil {
					bo.reset()
					if !sleep(ctx, a.sup.conf().Sync.PollInterval) {
						break
					}
				}
			}
			a.closeConn(ctx, conn)
			a.connClosed()
		}
		if ctx.Err() != nil {
			return
		}
		if imapconn.IsAuthFailure(err) {
			a.authFailed(err)
			continue
		}
		a.setErr(err)
		if !sleep(ctx, bo.next()) {
			return
		}
	}
}

// dial opens an authenticated connection for this account, waiting for a
// free slot of the account's connection budget, a descriptor of the
// process-wide one and a dial slot of the server; the first two are
// returned when the connection closes, the dial slot once it is open.
func (a *accountWorker) dial(ctx context.Context, h *imapclient.UnilateralDataHandler) (*imapconn.Conn, error) {
	select {
	case a.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	budget, err := a.sup.connSlot(ctx, &a.dialWaiting)
	if err != nil {
		<-a.slots
		return nil, err
	}
	release, err := a.sup.dialSlot(ctx, &a.cfg, &a.dialWaiting)
	if err != nil {
		budget()
		<-a.slots
		return nil, err
	}
	conn, err := a.sup.dial(ctx, &a.cfg, h)
	release()
	if err != nil {
		budget()
		<-a.slots
		return nil, err
	}
	go func() { <-conn.Closed(); budget(); <-a.slots }()
	return conn, nil
}

// folder returns the worker of a synced folder by mailbox name.
func (a *accountWorker) folder(name string) *folderWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.folders {
		if f.name == name {
			return f
		}
	}
	return nil
}

// syncedFolder finds the synced folder a command names, the way the
// folders list does: a role (inbox, sent, archive, all) or a mailbox name
// (INBOX in any case). nil if no synced folder answers to entry.
func (a *accountWorker) syncedFolder(entry string) *folderWorker {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.folders {
		if f.name == entry || (f.role != "" && f.role == entry) ||
			(strings.EqualFold(entry, "INBOX") && strings.EqualFold(f.name, "INBOX")) {
			return f
		}
	}
	return nil
}

// waitResolved waits up to d for the folders list to be resolved; it
// reports whether it was.
func (a *accountWorker) waitResolved(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.resolved:
		return true
	case <-t.C:
		return false
	}
}

// resolveFolder maps a command's folder argument to a mailbox name and its
// role: a synced folder first (no round trip), else ResolveFolder over
// the server's LIST on conn, so roles and names mean the same in every
// command as in the folders list.
func (a *accountWorker) resolveFolder(ctx context.Context, conn *imapconn.Conn, entry string) (name, role string, err error) {
	if f := a.syncedFolder(entry); f != nil {
		return f.name, f.role, nil
	}
	boxes, err := ListMailboxes(ctx, conn)
	if err != nil {
		return "", "", fmt.Errorf("list: %w", err)
	}
	name, role, err = ResolveFolder(entry, boxes)
	if err != nil {
		return "", "", missingFolder{err}
	}
	return name, role, nil
}

// waitAuthGate blocks while the account is in the auth-failed state, so a
// wrong password is retried slowly instead of locking the mailbox.
func (a *accountWorker) waitAuthGate(ctx context.Context) bool {
	a.mu.Lock()
	until := a.authRetryAt
	a.mu.Unlock()
	return sleep(ctx, time.Until(until))
}

func (a *accountWorker) authFailed(err error) {
	a.mu.Lock()
	first := a.authErr == nil
	a.authErr = err
	a.lastErr = err.Error()
	if time.Now().After(a.authRetryAt) {
		a.authRetryAt = time.Now().Add(a.sup.conf().Sync.AuthRetry)
	}
	folders := a.folders
	a.mu.Unlock()
	for _, f := range folders {
		f.setState(StateAuthFailed, err)
	}
	if first {
		a.log.Error("authentication failed; the account is stopped and retried slowly",
			"error", err, "retry_every", a.sup.conf().Sync.AuthRetry)
	}
	a.sup.metrics.authFailure(a.cfg.ID)
}

func (a *accountWorker) authOK() {
	a.mu.Lock()
	was := a.authErr
	a.authErr = nil
	a.mu.Unlock()
	if was != nil {
		a.log.Info("authentication works again")
	}
}

func (a *accountWorker) setErr(err error) {
	if err == nil {
		return
	}
	a.mu.Lock()
	a.lastErr = err.Error()
	a.mu.Unlock()
}

func (a *accountWorker) connOpened() {
	a.mu.Lock()
	a.conns++
	a.mu.Unlock()
	a.sup.metrics.conns(a.cfg.ID, 1)
}
func (a *accountWorker) connClosed() {
	a.mu.Lock()
	a.conns--
	a.mu.Unlock()
	a.sup.metrics.conns(a.cfg.ID, -1)
}

func (a *accountWorker) snapshot() AccountStatus {
	a.mu.Lock()
	s := AccountStatus{Account: a.cfg.ID, Connections: a.conns, LastError: a.lastErr}
	folders := a.folders
	authErr := a.authErr
	a.mu.Unlock()
	s.State = "running"
	switch {
	case a.isPaused():
		s.State = StatePaused
	case authErr != nil:
		s.State = StateAuthFailed
	case a.dialWaiting.Load() > 0:
		s.State = StateDialWait
	}
	for _, f := range folders {
		s.Folders = append(s.Folders, f.snapshot())
	}
	return s
}
