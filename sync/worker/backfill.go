package worker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/store"
)

// BackfillRequest asks for a manual import of a folder's older mail.
type BackfillRequest struct {
	Account, Folder string
	Since, Until    time.Time
	DryRun          bool
	Rate            float64 // messages per second; 0 = unthrottled
	OldestFirst     bool
}

// BackfillProgress is a job as stored, with the live progress of a
// running one.
type BackfillProgress struct {
	store.BackfillJob
}

// backfill is one running job. It is owned by the supervisor, which waits
// for it on Stop; its position is committed after every batch, so a job
// interrupted by a crash or a stop resumes where it was.
type backfill struct {
	sup    *Supervisor
	cancel context.CancelFunc

	mu        stdsync.Mutex
	job       store.BackfillJob
	cancelled bool
}

// StartBackfill queues a backfill job and starts it.
func (s *Supervisor) StartBackfill(req BackfillRequest) (store.BackfillJob, error) {
	if _, ok := s.conf().Account(req.Account); !ok {
		return store.BackfillJob{}, fmt.Errorf("%w: %s", ErrUnknownAccount, req.Account)
	}
	if req.Folder == "" {
		return store.BackfillJob{}, errors.New("backfill: folder is empty")
	}
	if a := s.account(req.Account); a != nil {
		// A synced folder resolves now, so the job shows its mailbox name
		// from the start; any other entry is resolved on the server when
		// the job runs.
		if f := a.syncedFolder(req.Folder); f != nil {
			req.Folder = f.name
		}
	}
	job := store.BackfillJob{
		Account: req.Account, Folder: req.Folder, Since: req.Since, Until: req.Until,
		DryRun: req.DryRun, Rate: req.Rate, NewestFirst: !req.OldestFirst,
		State: store.BackfillQueued, Created: time.Now(), Updated: time.Now(),
	}
	err := s.store.Update(func(tx *store.Tx) error {
		id, err := tx.NextBackfillID()
		if err != nil {
			return err
		}
		job.ID = id
		return tx.PutBackfill(job)
	})
	if err != nil {
		return job, err
	}
	s.runBackfill(job)
	return job, nil
}

// resumeBackfills restarts the jobs a stop or crash interrupted.
func (s *Supervisor) resumeBackfills() {
	var jobs []store.BackfillJob
	err := s.store.View(func(tx *store.Tx) error {
		return tx.Backfills(func(j store.BackfillJob) error {
			if j.State == store.BackfillQueued || j.State == store.BackfillRunning {
				jobs = append(jobs, j)
			}
			return nil
		})
	})
	if err != nil {
		s.log.Error("cannot read backfill jobs; they are not resumed", "error", err)
	}
	for _, j := range jobs {
		s.log.Info("resuming backfill", "job", j.ID, "account", j.Account, "folder", j.Folder, "done", j.Done, "total", j.Total)
		s.runBackfill(j)
	}
}

func (s *Supervisor) runBackfill(job store.BackfillJob) {
	ctx, cancel := context.WithCancel(s.runCtx)
	bf := &backfill{sup: s, cancel: cancel, job: job}
	s.mu.Lock()
	s.backfills[job.ID] = bf
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		bf.run(ctx)
	}()
}

// CancelBackfill stops a job for good.
func (s *Supervisor) CancelBackfill(id string) error {
	s.mu.Lock()
	bf := s.backfills[id]
	s.mu.Unlock()
	if bf != nil {
		bf.mu.Lock()
		bf.cancelled = true
		bf.mu.Unlock()
		bf.cancel()
		return nil
	}
	return s.store.Update(func(tx *store.Tx) error {
		j, ok, err := tx.Backfill(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownJob, id)
		}
		if j.State == store.BackfillQueued || j.State == store.BackfillRunning {
			j.State, j.Updated = store.BackfillCancelled, time.Now()
		}
		return tx.PutBackfill(j)
	})
}

// Backfills returns every job, newest first, with live progress for the
// running ones.
func (s *Supervisor) Backfills() ([]BackfillProgress, error) {
	var out []BackfillProgress
	err := s.store.View(func(tx *store.Tx) error {
		return tx.Backfills(func(j store.BackfillJob) error {
			out = append(out, BackfillProgress{BackfillJob: j})
			return nil
		})
	})
	s.mu.Lock()
	for i := range out {
		if bf := s.backfills[out[i].ID]; bf != nil {
			bf.mu.Lock()
			out[i].BackfillJob = bf.job
			out[i].Matched = maps.Clone(bf.job.Matched) // progress goes on writing to the job's map
			bf.mu.Unlock()
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b BackfillProgress) int { return b.Created.Compare(a.Created) })
	return out, err
}

func (bf *backfill) log() []any {
	return []any{"job", bf.job.ID, "account", bf.job.Account, "folder", bf.job.Folder}
}

func (bf *backfill) run(ctx context.Context) {
	s := bf.sup
	acct := s.account(bf.job.Account)
	if acct == nil {
		bf.finish(store.BackfillFailed, fmt.Errorf("account %s is not running", bf.job.Account))
		return
	}
	bo := backoff{min: s.conf().Sync.RetryMin, max: s.conf().Sync.RetryMax}
	for {
		err := bf.attempt(ctx, acct)
		switch {
		case err == nil:
			bf.finish(store.BackfillDone, nil)
			return
		case ctx.Err() != nil:
			bf.mu.Lock()
			cancelled := bf.cancelled
			bf.mu.Unlock()
			if cancelled {
				bf.finish(store.BackfillCancelled, nil)
			}
			// A daemon stop leaves the job running in the state file: the
			// next start resumes it.
			return
		case errors.Is(err, errFolderMissing):
			bf.finish(store.BackfillFailed, err)
			return
		}
		d := bo.next()
		s.log.Warn("backfill failed; retrying", append(bf.log(), "error", err, "retry_in", d.Round(time.Millisecond))...)
		bf.update(func(j *store.BackfillJob) { j.Error = err.Error() })
		if !sleep(ctx, d) {
			return
		}
	}
}

var errFolderMissing = errors.New("folder not found")

// missingFolder is a folder argument the server has no folder for; it
// reads as ResolveFolder's explanation and matches errFolderMissing.
type missingFolder struct{ error }

func (m missingFolder) Unwrap() error        { return m.error }
func (m missingFolder) Is(target error) bool { return target == errFolderMissing }

// attempt runs the job on one connection until it ends or fails.
func (bf *backfill) attempt(ctx context.Context, acct *accountWorker) error {
	s := bf.sup
	conn, err := acct.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	name, role, err := acct.resolveFolder(ctx, conn, bf.job.Folder)
	if err != nil {
		return err
	}
	if name != bf.job.Folder {
		bf.update(func(j *store.BackfillJob) { j.Folder = name })
	}
	f := acct.folder(name)
	synced := f != nil
	if f == nil {
		f = newFolderWorker(s, acct, name, role)
	}
	var sel *imap.SelectData
	err = conn.Do(ctx, "select", func(c *imapclient.Client) error {
		var err error
		sel, err = c.Select(f.name, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return fmt.Errorf("%w: %s: %v", errFolderMissing, f.name, err)
		}
		return fmt.Errorf("select: %w", err)
	}
	ceiling, err := bf.prepareFolder(sel, synced)
	if err != nil {
		return err
	}
	uids, err := bf.search(ctx, conn, ceiling)
	if err != nil {
		return err
	}
	bf.update(func(j *store.BackfillJob) {
		if j.UIDValidity != sel.UIDValidity {
			// First run, or the server renumbered the folder: start over;
			// the ledger keeps what was delivered from being sent again.
			j.UIDValidity, j.Position, j.Done, j.Total = sel.UIDValidity, 0, 0, len(uids)
		}
		if j.Total == 0 {
			j.Total = len(uids)
		}
		j.State, j.Error = store.BackfillRunning, ""
	})
	s.log.Info("backfill running", append(bf.log(), "total", bf.job.Total, "remaining", len(bf.remaining(uids)))...)
	start, n := time.Now(), 0
	return f.processUIDs(ctx, conn, sel.UIDValidity, bf.remaining(uids), bf.job.DryRun, func(b *batch) {
		n += len(b.items)
		bf.progress(b)
		if bf.job.Rate > 0 {
			// Pace to the rate: the budget for n messages is n/rate.
			sleep(ctx, time.Duration(float64(n)/bf.job.Rate*float64(time.Second))-time.Since(start))
		}
	})
}

// prepareFolder returns the highest UID the backfill may touch: at or
// below the live cursor, which owns everything above it. A folder that is
// not synced gets a cursor at UIDNEXT-1, as if it were synced from now.
func (bf *backfill) prepareFolder(sel *imap.SelectData, synced bool) (uint32, error) {
	var ceiling uint32
	err := bf.sup.store.Update(func(tx *store.Tx) error {
		st, err := tx.Folder(bf.job.Account, bf.job.Folder)
		if err != nil {
			return err
		}
		if st.UIDValidity != sel.UIDValidity {
			if st.UIDValidity != 0 || synced {
				return fmt.Errorf("live sync has not caught up with the folder yet (UIDVALIDITY %d); retrying", sel.UIDValidity)
			}
			st = store.FolderState{UIDValidity: sel.UIDValidity, LastUID: uint32(sel.UIDNext) - 1, UpdatedAt: time.Now()}
			if err := tx.PutFolder(bf.job.Account, bf.job.Folder, st); err != nil {
				return err
			}
		}
		ceiling = st.LastUID
		return nil
	})
	return ceiling, err
}

// search lists the UIDs in the job's date window, up to ceiling, in the
// order the job processes them.
func (bf *backfill) search(ctx context.Context, conn interface {
	Do(context.Context, string, func(*imapclient.Client) error) error
}, ceiling uint32) ([]uint32, error) {
	if ceiling == 0 {
		return nil, nil
	}
	crit := &imap.SearchCriteria{Since: bf.job.Since}
	if !bf.job.Until.IsZero() {
		crit.Before = bf.job.Until.AddDate(0, 0, 1) // --until is inclusive
	}
	var all imap.UIDSet
	all.AddRange(1, imap.UID(ceiling))
	crit.UID = []imap.UIDSet{all}
	var data *imap.SearchData
	err := conn.Do(ctx, "search", func(c *imapclient.Client) error {
		var err error
		data, err = c.UIDSearch(crit, nil).Wait()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	var uids []uint32
	for _, u := range data.AllUIDs() {
		if uint32(u) <= ceiling {
			uids = append(uids, uint32(u))
		}
	}
	slices.Sort(uids)
	if bf.job.NewestFirst {
		slices.Reverse(uids)
	}
	return uids, nil
}

// remaining drops the UIDs a previous run of the job already did.
func (bf *backfill) remaining(uids []uint32) []uint32 {
	bf.mu.Lock()
	pos, newest := bf.job.Position, bf.job.NewestFirst
	bf.mu.Unlock()
	if pos == 0 {
		return uids
	}
	return slices.DeleteFunc(slices.Clone(uids), func(u uint32) bool {
		if newest {
			return u >= pos
		}
		return u <= pos
	})
}

func (bf *backfill) progress(b *batch) {
	bf.update(func(j *store.BackfillJob) {
		for _, it := range b.items {
			j.Done++
			switch {
			case j.DryRun:
				if j.Matched == nil {
					j.Matched = map[string]int{}
				}
				j.Matched[it.action.String()+": "+reasonCode(it)]++
			case it.action == actDeliver:
				j.Delivered++
			default:
				j.Skipped++
			}
			if j.NewestFirst && (j.Position == 0 || it.uid < j.Position) {
				j.Position = it.uid
			} else if !j.NewestFirst && it.uid > j.Position {
				j.Position = it.uid
			}
		}
	})
}

func reasonCode(it *item) string {
	if it.action == actDeliver {
		return "matched"
	}
	code, _, _ := strings.Cut(it.reason, ":")
	return code
}

// update changes the job and commits it to the state file.
func (bf *backfill) update(fn func(*store.BackfillJob)) {
	bf.mu.Lock()
	fn(&bf.job)
	bf.job.Updated = time.Now()
	job := bf.job
	job.Matched = maps.Clone(job.Matched) // encoded outside the lock
	bf.mu.Unlock()
	if err := bf.sup.store.Update(func(tx *store.Tx) error { return tx.PutBackfill(job) }); err != nil {
		bf.sup.log.Error("cannot record backfill progress", append(bf.log(), "error", err)...)
	}
	bf.sup.metrics.backfill(job.ID, job.Done, job.Total)
}

func (bf *backfill) finish(state store.BackfillState, err error) {
	bf.update(func(j *store.BackfillJob) {
		j.State = state
		if err != nil {
			j.Error = err.Error()
		}
	})
	bf.sup.mu.Lock()
	delete(bf.sup.backfills, bf.job.ID)
	bf.sup.mu.Unlock()
	bf.sup.log.Info("backfill "+string(state), append(bf.log(), "done", bf.job.Done, "delivered", bf.job.Delivered, "skipped", bf.job.Skipped)...)
}
