package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/sync/imapconn"
)

// pollState is what STATUS said about a polled folder last time.
type pollState struct {
	uidNext, uidValidity, messages uint32
	modSeq                         uint64
}

// pollOnce syncs a folder that has no IDLE connection of its own, but only
// when STATUS shows a change (new mail, expunges, flag changes with
// CONDSTORE), or when work is due (an expunge's grace ended, an unlink is
// queued). The folder is unselected afterwards, because STATUS on the
// selected mailbox is discouraged (RFC 9051 §6.3.11).
func (f *folderWorker) pollOnce(ctx context.Context, conn *imapconn.Conn) error {
	canSkip := conn.Caps().Has(imap.CapUnselect)
	// before is STATUS taken before the sync: anything that changes during
	// or after the sync makes the next STATUS differ, so nothing is missed
	// (our own keyword STORE costs one extra sync, then it is stable).
	var before *pollState
	if canSkip && !f.pollDue() {
		now, err := f.mailboxStatus(ctx, conn)
		if err != nil {
			return err
		}
		f.mu.Lock()
		same := f.lastPoll != nil && *f.lastPoll == now
		f.mu.Unlock()
		if same {
			return nil
		}
		before = &now
	}
	if err := f.syncOnce(ctx, conn); err != nil {
		return err
	}
	if !canSkip {
		return nil
	}
	f.mu.Lock()
	f.lastPoll = before
	f.mu.Unlock()
	return conn.Do(ctx, "unselect", func(c *imapclient.Client) error { return c.Unselect().Wait() })
}

// pollDue reports work that must run even when STATUS shows no change.
func (f *folderWorker) pollDue() bool {
	next := f.nextGoneDeadline()
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.unlinks) > 0 || (!next.IsZero() && !next.After(time.Now()))
}

func (f *folderWorker) mailboxStatus(ctx context.Context, conn *imapconn.Conn) (pollState, error) {
	opts := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true,
		HighestModSeq: conn.Caps().Has(imap.CapCondStore)}
	var d *imap.StatusData
	err := conn.Do(ctx, "status", func(c *imapclient.Client) error {
		var err error
		d, err = c.Status(f.name, opts).Wait()
		return err
	})
	if err != nil {
		return pollState{}, fmt.Errorf("status: %w", err)
	}
	st := pollState{uidNext: uint32(d.UIDNext), uidValidity: d.UIDValidity, modSeq: d.HighestModSeq}
	if d.NumMessages != nil {
		st.messages = *d.NumMessages
	}
	return st, nil
}
