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
	d, err := readDescriptors(cfg)
	if err != nil {
		log.Warn("cannot read the descriptor limit (RLIMIT_NOFILE); IMAP connections are not bounded", "error", err)
		return 0
	}
	if d.short() {
		log.Warn("the accounts may open more IMAP connections than the descriptor limit allows; the rest wait for a free descriptor. Raise LimitNOFILE",
			"connections", d.need, "limit", d.limit, "reserved", reservedFDs, "recommended_limit", d.need+reservedFDs)
	}
	return d.budget
}

// descriptors is what the accounts need against what the process may open.
type descriptors struct {
	need, limit, budget int
}

// short reports whether the accounts may want more connections than fit.
func (d descriptors) short() bool { return d.need > d.budget }

func readDescriptors(cfg *config.Config) (descriptors, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return descriptors{}, err
	}
	d := descriptors{need: connectionsNeeded(cfg), limit: int(min(lim.Cur, 1<<30))}
	d.budget = max(1, d.limit-reservedFDs)
	return d, nil
}

// checkDescriptors is fdBudget's warning for mailsync check: it reads
// the limit of the check process, which is the daemon's only when both
// run under the same limits (systemd's LimitNOFILE applies to the unit).
func checkDescriptors(r *checkReport, cfg *config.Config) {
	d, err := readDescriptors(cfg)
	switch {
	case err != nil:
		r.warn("descriptors", "cannot read RLIMIT_NOFILE: %v", err)
	case d.short():
		r.warn("descriptors", "the accounts may open %d IMAP connections, more than the %d this limit leaves (RLIMIT_NOFILE %d less %d reserved): the rest would wait. Raise LimitNOFILE to at least %d",
			d.need, d.budget, d.limit, reservedFDs, d.need+reservedFDs)
	default:
		r.pass("descriptors", "room for %s within RLIMIT_NOFILE %d (%d kept for the control socket, admin listener, state file and sink)", plural(d.need, "IMAP connection"), d.limit, reservedFDs)
	}
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
