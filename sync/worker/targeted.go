package worker

import (
	"context"
	"slices"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/sync/imapconn"
)

// processUIDs runs chosen UIDs below the cursor (a backfill, a dead-letter
// retry) through the same classify/deliver/commit path as live sync, in
// batches, without moving the cursor. uids must be sorted in the order to
// process them. done is called after each committed batch.
func (f *folderWorker) processUIDs(ctx context.Context, conn *imapconn.Conn, validity uint32, uids []uint32, dryRun bool, done func(*batch)) error {
	size := f.sup.conf().Sync.BatchSize
	for len(uids) > 0 {
		chunk := uids[:min(size, len(uids))]
		uids = uids[len(chunk):]
		var set imap.UIDSet
		for _, u := range chunk {
			set.AddNum(imap.UID(u))
		}
		b, err := f.fetchHeaderSet(ctx, conn, set, slices.Min(chunk), slices.Max(chunk))
		if err != nil {
			return err
		}
		b.targeted = true
		for _, part := range b.splitBytes(maxBatchBytes) {
			if dryRun {
				if err := f.classify(ctx, part.items); err != nil {
					return err
				}
				done(part)
				continue
			}
			if err := f.prepare(ctx, conn, part); err != nil {
				return err
			}
			// Each group is committed on its own (a crash re-sends at most
			// one); the job's position moves once the whole part is in.
			for _, group := range part.splitCount(f.sup.ackGroup()) {
				logged, err := f.deliverBatch(ctx, group, validity, nil)
				if err != nil {
					return err
				}
				f.storeLogged(ctx, conn, logged, true)
			}
			done(part)
		}
	}
	return nil
}
