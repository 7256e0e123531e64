package main

import (
	"log/slog"
	"syscall"

	"github.com/mailsync/mailsync/config"
)

// reservedFDs are kept out of the IMAP connections' reach: the control
// socket and admin listener with their clients, the state file, the sink's
// file or HTTP connections, logs, the SMTP sender. Without the reserve, 1,000
// accounts short of sockets leave `mailsync status` and /readyz
// unanswered.
const reservedFDs = 64

// fdBudget returns how many IMAP connections may be open at once: the
// RLIMIT_NOFILE soft limit less reservedFDs. (The Go runtime has already
// raised the soft limit to the hard one at start; systemd's LimitNOFILE
// sets both.) It warns when the accounts can open
// more connections than that; the rest then wait for one to close rather
// than fail in a loop. 0 means the limit could not be read (no bound).
func fdBudget(cfg *config.Config, log *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read the descriptor limit (RLIMIT_NOFILE); IMAP connections are not bounded", "error", err)
		return 0
	}
	need := connectionsNeeded(cfg)
	budget := int(min(lim.Cur, 1<<30)) - reservedFDs
	if budget < 1 {
		budget = 1
	}
	if need > budget {
		log.Warn("the accounts may open more IMAP connections than the descriptor limit allows; the rest wait for a free descriptor. Raise LimitNOFILE",
			"connections", need, "limit", lim.Cur, "reserved", reservedFDs, "recommended_limit", need+reservedFDs)
	}
	return budget
}

// connectionsNeeded is the IMAP connections the accounts open when every
// folder is live: one per folder up to the account's max_connections.
func connectionsNeeded(cfg *config.Config) int {
	n := 0
	for _, a := range cfg.Accounts {
		n += min(len(a.Folders), a.MaxConnections)
	}
	return n
}
