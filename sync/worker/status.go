package worker

import (
	"fmt"
	"time"
)

// Folder and account states, as `mailsync status` shows them.
const (
	StateStarting   = "starting"
	StateConnecting = "connecting"
	StateSyncing    = "syncing"
	StateIdle       = "idle"
	StatePolling    = "polling"
	StateBackoff    = "backing off"
	StateSinkRetry  = "waiting for sink"
	StateAuthFailed = "auth failed"
	StatePaused     = "paused"
	StateStopped    = "stopped"
	// StateDialWait is an account waiting for a dial slot of its server
	// (sync.dial_concurrency).
	StateDialWait = "waiting for dial slot"
)

// FolderStatus is a point-in-time view of one folder worker.
type FolderStatus struct {
	Account           string    `json:"account"`
	Folder            string    `json:"folder"`
	Role              string    `json:"role,omitempty"`
	State             string    `json:"state"`
	UIDValidity       uint32    `json:"uidvalidity,omitempty"`
	UIDNext           uint32    `json:"uidnext,omitempty"`
	LastUID           uint32    `json:"last_uid"`
	LastError         string    `json:"last_error,omitempty"`
	LastErrorAt       time.Time `json:"last_error_at,omitzero"`
	ConsecutiveErrors int       `json:"consecutive_errors,omitempty"`
	LastSync          time.Time `json:"last_sync,omitzero"`
	// WriteBack is "on", or "off: <reason>" when the logged keyword cannot
	// be stored in this folder.
	WriteBack string `json:"write_back,omitempty"`
	// StalledSince is when the folder last stopped making progress
	// (waiting for the sink, reconnecting); zero while it works.
	StalledSince time.Time `json:"stalled_since,omitzero"`
	// IdleCheckedAt is when the IDLE connection last proved alive (DONE
	// answered), so a dead IDLE cannot pass for a quiet folder.
	IdleCheckedAt time.Time `json:"idle_checked_at,omitzero"`
	// Stalled says why the folder counts as stalled (no progress for
	// longer than sync.stall_threshold, or an IDLE check overdue); /readyz
	// answers 503 while any folder is.
	Stalled string `json:"stalled,omitempty"`
	// CatchUpHelper is set while a second connection fetches bodies for
	// the folder's catch-up (see helper.go); it counts in the account's
	// connections.
	CatchUpHelper bool `json:"catchup_helper,omitempty"`
}

// AccountStatus is a point-in-time view of one account.
type AccountStatus struct {
	Account     string         `json:"account"`
	State       string         `json:"state"`
	Connections int            `json:"connections"`
	LastError   string         `json:"last_error,omitempty"`
	Folders     []FolderStatus `json:"folders"`
}

func (f *folderWorker) setState(state string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status.State != state {
		lvl := f.log.Debug
		if state == StateBackoff || state == StateAuthFailed || state == StateSinkRetry {
			lvl = f.log.Info
		}
		lvl("state change", "from", f.status.State, "to", state)
	}
	f.status.State = state
	if err == nil && state == StateIdle {
		f.status.ConsecutiveErrors = 0
	}
	if err != nil {
		// The error that keeps the folder in this state is what status
		// shows, whether it came from IMAP or from the sink.
		f.status.LastError, f.status.LastErrorAt = err.Error(), time.Now()
	}
	switch state {
	case StateBackoff, StateSinkRetry, StateConnecting:
		if f.status.StalledSince.IsZero() {
			f.status.StalledSince = time.Now()
		}
	default:
		f.status.StalledSince = time.Time{}
	}
}

// progressed notes that the folder moved on (the sink took something):
// whatever state it is in, it is not stalled since before now.
func (f *folderWorker) progressed() {
	f.mu.Lock()
	if !f.status.StalledSince.IsZero() {
		f.status.StalledSince = time.Now()
	}
	f.mu.Unlock()
}

func (f *folderWorker) setConsecutive(n int) {
	f.mu.Lock()
	f.status.ConsecutiveErrors = n
	f.mu.Unlock()
}

func (f *folderWorker) idleChecked() {
	f.mu.Lock()
	f.status.IdleCheckedAt = time.Now()
	f.mu.Unlock()
}

func (f *folderWorker) fail(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	f.status.ConsecutiveErrors++
	n := f.status.ConsecutiveErrors
	f.status.LastError, f.status.LastErrorAt = err.Error(), time.Now()
	f.mu.Unlock()
	// Rate-limit: the first failure, then every tenth, so an outage is one
	// line per few minutes rather than one per retry.
	if n == 1 || n%10 == 0 {
		f.log.Warn("folder sync failed", "error", err, "consecutive_errors", n)
	}
}

func (f *folderWorker) noteCursor(uid uint32) {
	f.mu.Lock()
	if uid > f.status.LastUID {
		f.status.LastUID = uid
	}
	f.mu.Unlock()
}

func (f *folderWorker) snapshot() FolderStatus {
	f.mu.Lock()
	st := f.status
	f.mu.Unlock()
	sc := f.sup.conf().Sync
	now := time.Now()
	switch {
	case !st.StalledSince.IsZero() && now.Sub(st.StalledSince) >= sc.StallThreshold:
		st.Stalled = fmt.Sprintf("%s for %s", st.State, now.Sub(st.StalledSince).Round(time.Second))
		if st.LastError != "" {
			st.Stalled += ": " + st.LastError
		}
	case st.State == StateIdle && !st.IdleCheckedAt.IsZero() &&
		now.Sub(st.IdleCheckedAt) > sc.IdleCheck+sc.CommandTimeout+sc.StallThreshold:
		// The check itself is overdue: the worker is wedged somewhere.
		st.Stalled = fmt.Sprintf("IDLE not confirmed alive for %s", now.Sub(st.IdleCheckedAt).Round(time.Second))
	}
	return st
}
