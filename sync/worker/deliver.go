package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/sink"
)

// deliverBatch hands the batch's messages to the sink and records the
// outcome. It returns only when every item is done (delivered, parked or
// not to be delivered) or ctx ends: while the sink fails transiently it
// retries (each message on its own, so one failure cannot stop the
// others; the backoff grows only while nothing is accepted) and the cursor
// stays below the first unacknowledged UID; a message that keeps failing
// while others go through is parked after sync.park_after. Every round
// commits what was acknowledged in one transaction, and callers hand it at
// most Supervisor.ackGroup messages, so a crash re-delivers at most the group in
// flight (plus the one being committed), which the sink dedupes by key.
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
	// Claim the messages this batch delivers (see claims) and look at the
	// ledger again once they are ours: another mailbox may have delivered
	// one since it was classified. The claim is held until the commit.
	release, err := f.sup.claims.acquire(ctx, b.deliverKeys())
	if err != nil {
		return nil, err
	}
	releaseOnReturn := true
	defer func() {
		if releaseOnReturn {
			release()
		}
	}()
	if err := f.markLogged(b.items); err != nil {
		return nil, err
	}
	for _, it := range b.items {
		if it.msg == nil || (it.action != actDeliver && it.action != actDuplicate) {
			it.done = true
		} else {
			it.msg.Provenance = []sink.Provenance{f.provenance(it.uid, validity)}
		}
	}
	sc := f.sup.conf().Sync
	bo := backoff{min: sc.RetryMin, max: sc.RetryMax}
	failing := false
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pending := b.pending()
		var wait time.Duration
		var lastErr error
		progress := 0
		if len(pending) > 0 {
			// Once handed to the sink, a batch runs to its commit unless the
			// stop grace runs out (hardCtx), so a graceful stop does not
			// throw away work the CRM already has. A retry sends each
			// message on its own, so one that fails cannot stop the others
			// (a sink may give up on the rest of a batch after a failure).
			sent := time.Now()
			results := f.send(pending, attempt)
			if err := f.sup.hardCtx.Err(); err != nil {
				return nil, err
			}
			now := time.Now()
			accepted := false
			for i, r := range results {
				it := pending[i]
				switch {
				case r.Err == nil:
					it.done, it.receipt, it.err = true, r.Receipt, nil
					accepted = true
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
				if it.done {
					progress++
				}
			}
			if accepted {
				f.sup.sinkAccepted(now)
			}
			progress += f.parkStuck(pending, sent, now)
		}
		// The previous batch's commit must land first: the cursor only
		// moves in order.
		if err := overlap.wait(); err != nil {
			return nil, err
		}
		if lastErr == nil && attempt == 1 && overlap != nil {
			releaseOnReturn = false
			overlap.start(func() error { defer release(); return f.commit(b, validity, attempt) })
			return b.loggedUIDs(), nil
		}
		if err := f.commit(b, validity, attempt); err != nil {
			return nil, err
		}
		if progress > 0 {
			f.progressed()
		}
		if len(b.pending()) == 0 {
			if failing {
				f.log.Info("sink recovered", "attempts", attempt)
				f.sinkWarn.reset()
			}
			return b.loggedUIDs(), nil
		}
		if progress > 0 {
			// Every attempt that moves on proves the sink works: only a
			// sink that takes nothing earns a growing wait.
			bo.reset()
		} else if d := bo.next(); d > wait {
			wait = d
		}
		f.sinkWarn.warn(f.log, lastErr, attempt, wait, b.ackedThrough()+1)
		failing = true
		f.setState(StateSinkRetry, lastErr)
		f.setConsecutive(bo.attempt)
		if !sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// send hands items to the sink: on the first attempt in one call, on a
// retry one call per message, a few at a time.
func (f *folderWorker) send(items []*item, attempt int) []sink.Result {
	individually := attempt > 1
	start := time.Now()
	defer func() { f.sup.metrics.observeSink(f.acct.cfg.ID, time.Since(start), len(items)) }()
	if !individually || len(items) == 1 {
		msgs := make([]*sink.Message, len(items))
		for i, it := range items {
			msgs[i] = it.msg
		}
		return f.sup.sink.Deliver(f.sup.hardCtx, msgs)
	}
	results := make([]sink.Result, len(items))
	one := func(i int) {
		r := f.sup.sink.Deliver(f.sup.hardCtx, []*sink.Message{items[i].msg})
		if len(r) == 1 {
			results[i] = r[0]
		} else {
			results[i].Err = fmt.Errorf("sink returned %d results for 1 message", len(r))
		}
	}
	// One message probes the sink alone: if it still fails, or asks to
	// wait (Retry-After), the others are not sent this round. The probe
	// rotates, so a message that always fails cannot hide a working sink.
	probe := attempt % len(items)
	one(probe)
	if err := results[probe].Err; err != nil && !sink.IsPermanent(err) {
		for i := range items {
			if i != probe {
				results[i].Err = fmt.Errorf("not sent after a failed retry: %w", err)
			}
		}
		return results
	}
	sem := make(chan struct{}, retryConcurrency)
	var wg stdsync.WaitGroup
	var mu stdsync.Mutex
	var stop error
	for i := range items {
		if i == probe {
			continue
		}
		sem <- struct{}{}
		mu.Lock()
		halt := stop
		mu.Unlock()
		if halt != nil || f.sup.hardCtx.Err() != nil {
			<-sem
			results[i].Err = cmp.Or(halt, f.sup.hardCtx.Err())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			one(i)
			if _, ok := sink.RetryAfter(results[i].Err); ok {
				mu.Lock()
				stop = fmt.Errorf("not sent: the sink asked to wait: %w", results[i].Err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results
}

// retryConcurrency bounds the single-message deliveries of a retry.
const retryConcurrency = 4

// parkStuck parks the items that have failed transiently for longer than
// sync.park_after while the sink accepted other messages: the fault is
// theirs, not the sink's, and they must not hold the folder. The time
// counts from the first attempt during which the sink took something else
// (from any folder), so a sink that takes nothing parks nothing (the
// cursor waits for it) and an outage does not count against a message
// once the sink is back. It returns how many it parked.
func (f *folderWorker) parkStuck(items []*item, sent, now time.Time) int {
	after := f.sup.conf().Sync.ParkAfter
	n := 0
	for _, it := range items {
		if it.done {
			continue
		}
		since := it.lastSent
		if since.IsZero() {
			since = sent
		}
		it.lastSent = sent
		if it.singledOut.IsZero() && f.sup.sinkAcceptedSince(since) {
			it.singledOut = now
		}
		if it.singledOut.IsZero() || now.Sub(it.singledOut) < after {
			continue
		}
		it.done, it.action = true, actDeadLetter
		it.reason = fmt.Sprintf("sink kept failing for %s while it accepted other messages: %v",
			now.Sub(it.singledOut).Round(time.Second), it.err)
		n++
	}
	return n
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
		dl := store.Delivery{Copy: prov, Receipt: it.receipt, MessageID: it.messageID, ContentHash: it.hash,
			Flags: systemFlags(it.flags), At: now}
		if it.msg.Match != nil {
			dl.Matched = it.msg.Match.Records
		}
		d, err = tx.Deliver(it.key, dl)
		if errors.Is(err, store.ErrRefused) {
			// Retracted meanwhile: it stays retracted; keep the copy.
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
