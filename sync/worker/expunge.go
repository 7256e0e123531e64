package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/sink"
)

// go-imap v2 has no QRESYNC/VANISHED (a VANISHED response kills the
// connection), so expunges are found by comparing the UIDs the state file
// holds with what the server still has, over a bounded window of the
// newest messages.

// goneCopy is an expunged mailbox copy waiting out the grace period.
type goneCopy struct {
	uid      uint32
	key      string
	deadline time.Time
}

// detectExpunges notes copies that disappeared from the folder. Nothing is
// written yet: if the daemon stops before the grace ends, the next session
// finds them again.
func (f *folderWorker) detectExpunges(ctx context.Context, conn *imapconn.Conn, lastUID uint32) error {
	window := uint32(max(f.sup.conf().Sync.FlagScanWindow, 1))
	lo := uint32(1)
	if lastUID > window {
		lo = lastUID - window + 1
	}
	if lastUID == 0 {
		return nil
	}
	var set imap.UIDSet
	set.AddRange(imap.UID(lo), imap.UID(lastUID))
	var data *imap.SearchData
	err := conn.Do(ctx, "search uids", func(c *imapclient.Client) error {
		var err error
		data, err = c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("search uids %d:%d: %w", lo, lastUID, err)
	}
	present := make(map[uint32]bool, len(data.AllUIDs()))
	for _, u := range data.AllUIDs() {
		present[uint32(u)] = true
	}
	var gone []goneCopy
	deadline := time.Now().Add(f.sup.conf().Sync.ExpungeGrace)
	err = f.sup.store.View(func(tx *store.Tx) error {
		return tx.UIDRange(f.acct.cfg.ID, f.name, lo, lastUID, func(uid uint32, key string) error {
			if !present[uid] {
				gone = append(gone, goneCopy{uid: uid, key: key, deadline: deadline})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone == nil {
		f.gone = map[uint32]goneCopy{}
	}
	for _, g := range gone {
		if _, ok := f.gone[g.uid]; !ok {
			f.gone[g.uid] = g
		}
	}
	return nil
}

// nextGoneDeadline is when the earliest pending expunge is due, or zero.
func (f *folderWorker) nextGoneDeadline() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Time
	for _, g := range f.gone {
		if next.IsZero() || g.deadline.Before(next) {
			next = g.deadline
		}
	}
	return next
}

// settleExpunges handles the copies whose grace has passed: the copy
// leaves the ledger's provenance, and when it was the last copy of a
// logged message the CRM gets one "deleted" event (the activity itself
// stays unless the adapter is configured otherwise).
func (f *folderWorker) settleExpunges(ctx context.Context, validity uint32) error {
	now := time.Now()
	f.mu.Lock()
	var due []goneCopy
	for uid, g := range f.gone {
		if !g.deadline.After(now) {
			due = append(due, g)
			delete(f.gone, uid)
		}
	}
	f.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	acct := f.acct.cfg.ID
	var events []*sink.Message
	var lastCopies []goneCopy
	err := f.sup.store.View(func(tx *store.Tx) error {
		for _, g := range due {
			e, ok, err := tx.Ledger(g.key)
			if err != nil {
				return err
			}
			others := 0
			for _, p := range e.Provenance {
				if !(p.Account == acct && p.Folder == f.name && p.UID == g.uid) {
					others++
				}
			}
			if ok && others == 0 && e.Status == store.StatusDelivered && e.Events["deleted"] == "" {
				events = append(events, &sink.Message{
					Key: g.key + ":deleted", Event: sink.EventDeleted, MessageID: e.MessageID,
					Provenance: []sink.Provenance{f.provenance(g.uid, validity)},
				})
				lastCopies = append(lastCopies, g)
			}
		}
		return nil
	})
	if err == nil && len(events) > 0 {
		err = f.deliverEvents(ctx, events)
	}
	if err != nil {
		// Try again next round.
		f.mu.Lock()
		for _, g := range due {
			f.gone[g.uid] = g
		}
		f.mu.Unlock()
		return err
	}
	err = f.sup.store.Update(func(tx *store.Tx) error {
		for _, g := range due {
			if err := tx.DeleteUID(acct, f.name, g.uid); err != nil {
				return err
			}
			if _, _, err := tx.RemoveProvenance(g.key, acct, f.name, g.uid); err != nil && !isNotFound(err) {
				return err
			}
		}
		for _, g := range lastCopies {
			if err := tx.RecordEvent(g.key, "deleted", time.Now().UTC().Format(time.RFC3339), time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && len(due) > 0 {
		f.log.Info("expunged copies settled", "copies", len(due), "deleted_events", len(lastCopies))
	}
	return err
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
