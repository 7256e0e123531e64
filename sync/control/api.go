// Package control is the daemon's local operations API: the types the
// control socket carries and the interface the running daemon implements.
// The CLI (status, pause, backfill, ...) talks to it over a unix socket.
package control

import (
	"context"
	"errors"
	"time"
)

// Daemon is what the control socket needs from the running daemon. The
// daemon implements it over its supervisor and state file; the socket
// server only translates HTTP to these calls.
type Daemon interface {
	// Status returns every account and folder, sorted by account.
	Status(ctx context.Context) (*Status, error)
	// Pause stops an account's workers (connections closed) until Resume.
	// ErrUnknownAccount if there is no such account.
	Pause(ctx context.Context, account string) error
	Resume(ctx context.Context, account string) error
	// Resync forgets a folder's cursor (keeping the ledger, so nothing is
	// delivered twice) and re-scans it from the start.
	Resync(ctx context.Context, account, folder string) error
	// Reload re-reads the config file; a bad file is rejected with the
	// reason and the running config stays.
	Reload(ctx context.Context) (*ReloadResult, error)
	// StartBackfill queues a backfill job and returns it.
	StartBackfill(ctx context.Context, req BackfillRequest) (*BackfillJob, error)
	// Backfills lists jobs, newest first; Backfill returns one
	// (ErrUnknownJob if none).
	Backfills(ctx context.Context) ([]BackfillJob, error)
	Backfill(ctx context.Context, id string) (*BackfillJob, error)
	CancelBackfill(ctx context.Context, id string) error
	// DeadLetters lists parked messages (all accounts when account is "").
	DeadLetters(ctx context.Context, account string) ([]DeadLetter, error)
	// RetryDeadLetter moves a parked message back to the delivery path;
	// DropDeadLetter forgets it (recorded in the ledger as dropped).
	RetryDeadLetter(ctx context.Context, account, folder string, uid uint32) error
	DropDeadLetter(ctx context.Context, account, folder string, uid uint32) error
}

// Errors the daemon returns for bad requests (the socket maps them to 404).
var (
	ErrUnknownAccount = errors.New("unknown account")
	ErrUnknownFolder  = errors.New("unknown folder")
	ErrUnknownJob     = errors.New("unknown backfill job")
	ErrUnknownMessage = errors.New("no such dead letter")
)

// Status is the whole daemon at a point in time.
type Status struct {
	Version   string    `json:"version"`
	Pid       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	Config    string    `json:"config"`
	StateFile string    `json:"state_file"`
	Sink      string    `json:"sink"`
	// SinkHealth says why the CRM cannot take deliveries until an
	// operator acts (a refused OAuth2 grant); empty while it can.
	SinkHealth string          `json:"sink_health,omitempty"`
	Accounts   []AccountStatus `json:"accounts"`
	// Offline is set when the CLI read the state file directly because no
	// daemon was running; live fields (state, connections) are empty then.
	Offline bool `json:"offline,omitempty"`
}

// AccountStatus is one mailbox account.
type AccountStatus struct {
	Account     string         `json:"account"`
	State       string         `json:"state"` // running, paused, auth failed, ...
	Connections int            `json:"connections"`
	LastError   string         `json:"last_error,omitempty"`
	Folders     []FolderStatus `json:"folders"`
}

// FolderStatus is one synced folder.
type FolderStatus struct {
	Folder      string `json:"folder"`
	Role        string `json:"role,omitempty"`
	State       string `json:"state"` // idle, syncing, polling, backing off, waiting for sink, auth failed, paused
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	LastUID     uint32 `json:"last_uid"`
	UIDNext     uint32 `json:"uidnext,omitempty"`
	Delivered   int64  `json:"delivered"`
	Excluded    int64  `json:"excluded"`
	Skipped     int64  `json:"skipped"`
	// Reasons counts the skipped and excluded copies by reason code:
	// "skipped no_match": 6.
	Reasons           map[string]int64 `json:"reasons,omitempty"`
	Outbox            int              `json:"outbox"`
	DeadLetters       int              `json:"dead_letters"`
	LastError         string           `json:"last_error,omitempty"`
	LastErrorAt       time.Time        `json:"last_error_at,omitzero"`
	ConsecutiveErrors int              `json:"consecutive_errors,omitempty"`
	LastSync          time.Time        `json:"last_sync,omitzero"`
	// WriteBack says whether the logged keyword can be stored here
	// ("off: PERMANENTFLAGS has no \*" when the server refuses keywords).
	WriteBack string `json:"write_back,omitempty"`
	// StalledSince is when the folder stopped making progress (sink
	// failing, reconnecting); Stalled says why once that exceeds
	// sync.stall_threshold, and /readyz then answers 503.
	StalledSince  time.Time `json:"stalled_since,omitzero"`
	Stalled       string    `json:"stalled,omitempty"`
	IdleCheckedAt time.Time `json:"idle_checked_at,omitzero"`
	// CatchUpHelper is set while a second connection of the account
	// fetches bodies for this folder's catch-up; it counts in the
	// account's connections and is logged out when the catch-up ends.
	CatchUpHelper bool `json:"catchup_helper,omitempty"`
}

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Added     []string `json:"added,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	Restarted []string `json:"restarted,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
}

// BackfillRequest asks for a manual backfill of one folder.
type BackfillRequest struct {
	Account string    `json:"account"`
	Folder  string    `json:"folder"`
	Since   time.Time `json:"since,omitzero"`
	Until   time.Time `json:"until,omitzero"`
	DryRun  bool      `json:"dry_run,omitempty"`
	// Rate limits messages per second; 0 means unthrottled.
	Rate float64 `json:"rate,omitempty"`
	// OldestFirst reverses the default newest-first order.
	OldestFirst bool `json:"oldest_first,omitempty"`
}

// BackfillJob is a backfill's progress.
type BackfillJob struct {
	ID        string          `json:"id"`
	Request   BackfillRequest `json:"request"`
	State     string          `json:"state"` // queued, running, done, cancelled, failed
	Total     int             `json:"total"`
	Done      int             `json:"done"`
	Delivered int             `json:"delivered"`
	Skipped   int             `json:"skipped"` // already delivered, excluded or not captured
	Error     string          `json:"error,omitempty"`
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
	// Matched counts decisions by reason code for dry runs.
	Matched map[string]int `json:"matched,omitempty"`
}

// DeadLetter is one parked message.
type DeadLetter struct {
	Account   string    `json:"account"`
	Folder    string    `json:"folder"`
	UID       uint32    `json:"uid"`
	Key       string    `json:"key"`
	MessageID string    `json:"message_id,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
	Attempts  int       `json:"attempts,omitempty"`
}
