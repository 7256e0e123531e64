package worker

import (
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
	defer f.mu.Unlock()
	return f.status
}
