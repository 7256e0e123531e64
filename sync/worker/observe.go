package worker

import (
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// Event reports what happened to one message, after it was committed. The
// demo prints these; tests and the control socket may watch them.
type Event struct {
	Account   string
	Folder    string
	UID       uint32
	Key       string
	Action    string // deliver, exclude, skip, duplicate, deadletter
	Reason    string
	Direction sink.Direction
	Subject   string
	From      string
	Match     *sink.Match
	// Lag is the time from the IMAP fetch of the header to the commit.
	Lag time.Duration
}

// observe reports a committed item to the metrics and the observer.
func (f *folderWorker) observe(b *batch, it *item, now time.Time) {
	f.sup.metrics.outcome(f.acct.cfg.ID, it.action, it.reason)
	if f.sup.observer == nil {
		return
	}
	ev := Event{
		Account: f.acct.cfg.ID, Folder: f.name, UID: it.uid, Key: it.key,
		Action: it.action.String(), Reason: it.reason, Lag: now.Sub(b.fetched),
	}
	if it.msg != nil {
		ev.Direction, ev.Subject, ev.Match = it.msg.Direction, it.msg.Subject, it.msg.Match
		if len(it.msg.From) > 0 {
			ev.From = it.msg.From[0].Email
		}
	}
	f.sup.observer(ev)
}
