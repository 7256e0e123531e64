package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/sink"
)

// deliverBatch hands the batch's messages to the sink and records the
// outcome. It returns only when every item is done (delivered, parked or
// not to be delivered) or ctx ends: while the sink fails transiently it
// waits and retries, and the cursor stays below the first unacknowledged
// UID. Every round commits what was acknowledged in one transaction, so a
// crash re-delivers at most the round in flight, which the sink dedupes by
// key.
//
// It returns the UIDs now in the CRM, for the logged-keyword write-back,
// which the caller does once per catch-up rather than once per batch: on
// Maildir servers every keyword change renames a file, and that must not
// sit on the delivery path.
//
// With a non-nil overlap, a batch the sink took whole is committed in the
// background while the caller delivers the next one; commits stay in
// order (each waits for the previous), and the caller must call
// overlap.wait before it uses the cursor or returns.
func (f *folderWorker) deliverBatch(ctx context.Context, b *batch, validity uint32, overlap *commitOverlap) ([]uint32, error) {
	for _, it := range b.items {
		if it.msg == nil || (it.action != actDeliver && it.action != actDuplicate) {
			it.done = true
		} else {
			it.msg.Provenance = []sink.Provenance{f.provenance(it.uid, validity)}
		}
	}
	bo := backoff{min: f.sup.conf().Sync.RetryMin, max: f.sup.conf().Sync.RetryMax}
	failing := false
	for attempt := 1; ; attempt++ {
		var pending []*item
		for _, it := range b.items {
			if !it.done {
				pending = append(pending, it)
			}
		}
		var wait time.Duration
		var lastErr error
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if len(pending) > 0 {
			msgs := make([]*sink.Message, len(pending))
			for i, it := range pending {
				msgs[i] = it.msg
			}
			start := time.Now()
			// Once handed to the sink, a batch runs to its commit unless the
			// stop grace runs out (hardCtx), so a graceful stop does not
			// throw away work the CRM already has.
			results := f.sup.sink.Deliver(f.sup.hardCtx, msgs)
			f.sup.metrics.observeSink(f.acct.cfg.ID, time.Since(start), len(msgs))
			if err := f.sup.hardCtx.Err(); err != nil {
				return nil, err
			}
			for i, r := range results {
				it := pending[i]
				switch {
				case r.Err == nil:
					it.done, it.receipt = true, r.Receipt
				case sink.IsPermanent(r.Err) && it.action == actDuplicate:
					// The activity exists; a refused provenance update is
					// logged, not parked.
					it.done = true
					f.log.Warn("the sink refused a provenance update", "uid", it.uid, "error", r.Err)
				case sink.IsPermanent(r.Err):
					it.done, it.action, it.err = true, actDeadLetter, r.Err
					it.reason = "sink refused: " + r.Err.Error()
				default:
					it.err, lastErr = r.Err, r.Err
					if d, ok := sink.RetryAfter(r.Err); ok && d > wait {
						wait = d
					}
				}
			}
		}
		// The previous batch's commit must land first: the cursor only
		// moves in order.
		if err := overlap.wait(); err != nil {
			return nil, err
		}
		if lastErr == nil && attempt == 1 && overlap != nil {
			overlap.start(func() error { return f.commit(b, validity, attempt) })
			return b.loggedUIDs(), nil
		}
		if err := f.commit(b, validity, attempt); err != nil {
			return nil, err
		}
		if lastErr == nil {
			if failing {
				f.log.Info("sink recovered", "attempts", attempt)
			}
			return b.loggedUIDs(), nil
		}
		if d := bo.next(); d > wait {
			wait = d
		}
		if !failing || attempt%10 == 0 {
			f.log.Warn("sink unavailable; holding the cursor and retrying",
				"error", lastErr, "consecutive_errors", attempt, "retry_in", wait.Round(time.Millisecond),
				"waiting_uid", b.ackedThrough()+1)
		}
		failing = true
		f.setState(StateSinkRetry, lastErr)
		if !sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// commit records, in one transaction, every item that is done and not yet
// recorded, the outbox entries of the ones still pending, and the cursor
// over the contiguous acknowledged prefix.
func (f *folderWorker) commit(b *batch, validity uint32, attempt int) error {
	acct, folder := f.acct.cfg.ID, f.name
	now := time.Now()
	var delta store.Counters
	err := f.sup.store.Update(func(tx *store.Tx) error {
		for _, it := range b.items {
			prov := sink.Provenance{Account: acct, Folder: folder, UIDValidity: validity, UID: it.uid}
			if !it.done {
				if err := tx.PutOutbox(acct, folder, it.uid, store.OutboxEntry{
					Key: it.key, Attempts: attempt, LastError: errString(it.err),
					NextAttempt: now, FirstSeen: b.fetched,
				}); err != nil {
					return err
				}
				continue
			}
			if it.recorded() {
				continue
			}
			// Always: an entry may be left by a process killed mid-retry.
			if err := tx.DeleteOutbox(acct, folder, it.uid); err != nil {
				return err
			}
			if it.key != "" {
				if err := tx.PutUID(acct, folder, it.uid, it.key); err != nil {
					return err
				}
			}
			if err := f.record(tx, it, prov, now, &delta); err != nil {
				return err
			}
		}
		if err := tx.AddCounters(acct, folder, delta); err != nil {
			return err
		}
		st, err := tx.Folder(acct, folder)
		if err != nil {
			return err
		}
		if st.UIDValidity != validity {
			return fmt.Errorf("uidvalidity changed under the batch (%d, now %d)", validity, st.UIDValidity)
		}
		if b.targeted {
			return nil
		}
		if through := b.ackedThrough(); through > st.LastUID {
			st.LastUID = through
		}
		st.UpdatedAt = now
		return tx.PutFolder(acct, folder, st)
	})
	if err != nil {
		return fmt.Errorf("commit uids %d:%d: %w", b.from, b.to, err)
	}
	dups := 0
	for _, it := range b.items {
		if it.done && !it.recorded() {
			it.markRecorded()
			if it.action == actDuplicate {
				dups++
			}
			f.observe(b, it, now)
		}
	}
	f.sup.metrics.addOutcomes(acct, delta, dups)
	f.sendLateProvenance(b, validity)
	if !b.targeted {
		f.noteCursor(b.ackedThrough())
	}
	return nil
}

// record writes one finished item to the ledger through the store's
// transitions, which hold the status rules.
func (f *folderWorker) record(tx *store.Tx, it *item, prov sink.Provenance, now time.Time, delta *store.Counters) error {
	var d store.Counters
	var err error
	switch it.action {
	case actDeliver:
		e, _, gerr := tx.Ledger(it.key)
		if gerr != nil {
			return gerr
		}
		// Another mailbox delivered the same message at the same moment
		// (both fetched it before either committed): the sink kept one
		// activity by key; this copy still owes the CRM its provenance.
		if e.Status == store.StatusDelivered && !hasCopyIn(e.Provenance, prov.Account, prov.Folder) {
			it.lateProvenance = true
		}
		dl := store.Delivery{Copy: prov, Receipt: it.receipt, MessageID: it.messageID, ContentHash: it.hash,
			Flags: systemFlags(it.flags), At: now}
		if it.msg.Match != nil {
			dl.Matched = it.msg.Match.Records
		}
		d, err = tx.Deliver(it.key, dl)
		if errors.Is(err, store.ErrRefused) {
			// Retracted meanwhile: it stays retracted; keep the copy.
			it.lateProvenance = false
			_, err = tx.AddProvenance(it.key, prov)
		}
	case actDuplicate:
		_, err = tx.AddProvenance(it.key, prov)
	case actExclude:
		d, err = tx.Exclude(it.key, store.Outcome{Copy: prov, Reason: it.reason, MessageID: it.messageID, ContentHash: it.hash, At: now})
	case actSkip:
		d, err = tx.Skip(it.key, store.Outcome{Copy: prov, Reason: it.reason, MessageID: it.messageID, ContentHash: it.hash, At: now})
	case actDeadLetter:
		dl := store.DeadLetter{Key: it.key, Provenance: prov, Reason: it.reason, At: now, MessageID: it.messageID}
		if it.msg != nil {
			dl.Subject = it.msg.Subject
		}
		d, err = tx.DeadLetter(it.uid, dl)
		if err == nil {
			f.log.Warn("message parked in the dead-letter list", "uid", it.uid, "message_id", it.messageID, "reason", it.reason)
		}
	}
	*delta = delta.Add(d)
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func hasCopyIn(ps []sink.Provenance, account, folder string) bool {
	for _, p := range ps {
		if p.Account == account && p.Folder == folder {
			return true
		}
	}
	return false
}

// sendLateProvenance sends the provenance events of copies that raced
// another mailbox to the first delivery. Best effort: the ledger already
// has the provenance; a failure is logged for the operator.
func (f *folderWorker) sendLateProvenance(b *batch, validity uint32) {
	var evs []*sink.Message
	for _, it := range b.items {
		if !it.lateProvenance {
			continue
		}
		it.lateProvenance = false
		ev := &sink.Message{
			Key: it.key + ":provenance:" + f.acct.cfg.ID + "/" + f.name, Event: sink.EventProvenance,
			Provenance: []sink.Provenance{f.provenance(it.uid, validity)}, MessageID: it.messageID,
		}
		// The same fields as the provenance event of a copy found later
		// (folder.go), so a receiver never sees a subject come and go.
		if it.msg != nil {
			ev.Direction, ev.Date, ev.Subject = it.msg.Direction, it.msg.Date, it.msg.Subject
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return
	}
	if err := f.deliverEvents(f.sup.hardCtx, evs); err != nil {
		f.log.Warn("provenance update not delivered; the ledger has it", "count", len(evs), "error", err)
	}
}

// commitOverlap runs one batch's commit in the background while the next
// batch goes to the sink: the sink's fsync and bbolt's then overlap. At
// most one commit is in flight; its goroutine is owned by whoever calls
// wait.
type commitOverlap struct {
	done chan error
}

func (o *commitOverlap) start(commit func() error) {
	o.done = make(chan error, 1)
	go func() { o.done <- commit() }()
}

// wait returns the in-flight commit's error, if any; nil-safe.
func (o *commitOverlap) wait() error {
	if o == nil || o.done == nil {
		return nil
	}
	err := <-o.done
	o.done = nil
	return err
}
