package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	stdsync "sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/sink"
)

// folderWorker keeps one mailbox folder in sync. It owns its connection
// while it holds IDLE; a poller shares one connection between the folders
// beyond the account's connection budget.
type folderWorker struct {
	sup  *Supervisor
	acct *accountWorker
	name string // mailbox name on the server
	role string // inbox, sent, archive, all, or "" for a literal name
	log  *slog.Logger

	// wake is signalled by the connection's unilateral handler (new mail,
	// expunges, flag changes). It runs on go-imap's reader goroutine, so it
	// may only signal: a command issued from there would deadlock.
	wake chan struct{}

	mu      stdsync.Mutex
	status  FolderStatus
	gone    map[uint32]goneCopy // expunged copies waiting out the grace period
	unlinks []uint32            // copies whose logged keyword must go (unlinked in the CRM)
	// lastPoll is STATUS after the last sync of a polled folder; nil
	// forces the next poll to sync.
	lastPoll *pollState

	sinkWarn sinkWarner
}

func newFolderWorker(sup *Supervisor, acct *accountWorker, name, role string) *folderWorker {
	f := &folderWorker{
		sup: sup, acct: acct, name: name, role: role,
		log:  acct.log.With("folder", name),
		wake: make(chan struct{}, 1),
	}
	f.status = FolderStatus{Account: acct.cfg.ID, Folder: name, Role: role, State: StateStarting}
	return f
}

func (f *folderWorker) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// unilateralHandler wakes the IDLE loop; see the field comment on wake.
func (f *folderWorker) unilateralHandler() *imapclient.UnilateralDataHandler {
	return wakeHandler(f.signal)
}

// wakeHandler turns the server's unsolicited data into calls of wake. It
// runs on go-imap's reader goroutine, so wake may only signal.
func wakeHandler(wake func()) *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				wake()
			}
		},
		Expunge: func(uint32) { wake() },
		Fetch: func(msg *imapclient.FetchMessageData) {
			// Unsolicited FETCH (flag changes, or the stray reply to a
			// past-the-end range): drain it, or every later command stalls.
			for msg.Next() != nil {
			}
			wake()
		},
	}
}

// runIdle is the life of a folder with its own connection: dial, catch
// up, IDLE, repeat; reconnect with backoff on any error. A non-nil first
// is a connection already open (the one the account listed its folders
// on, so an account logs in once at start), used before any dial.
func (f *folderWorker) runIdle(ctx context.Context, first *imapconn.Conn) {
	defer func() {
		if first != nil { // stopped before it was used
			f.acct.closeConn(ctx, first)
		}
	}()
	bo := backoff{min: f.sup.conf().Sync.RetryMin, max: f.sup.conf().Sync.RetryMax}
	for ctx.Err() == nil {
		if !f.acct.waitAuthGate(ctx) {
			return
		}
		f.setState(StateConnecting, nil)
		conn, err := first, error(nil)
		if first == nil {
			conn, err = f.acct.dial(ctx, f.unilateralHandler())
		}
		first = nil
		if err == nil {
			f.acct.connOpened()
			err = f.session(ctx, conn, &bo)
			f.acct.closeConn(ctx, conn)
			f.acct.connClosed()
		}
		if ctx.Err() != nil {
			return
		}
		f.fail(err)
		if imapconn.IsAuthFailure(err) {
			f.acct.authFailed(err)
			continue
		}
		d := bo.next()
		f.setState(StateBackoff, err)
		f.sup.metrics.reconnect(f.acct.cfg.ID)
		if !sleep(ctx, d) {
			return
		}
	}
}

// session runs on one live connection until it fails or ctx ends.
func (f *folderWorker) session(ctx context.Context, conn *imapconn.Conn, bo *backoff) error {
	idle := conn.Caps().Has(imap.CapIdle)
	for {
		if err := f.syncOnce(ctx, conn); err != nil {
			return err
		}
		if bo.attempt > 0 {
			f.log.Info("recovered", "after_attempts", bo.attempt)
		}
		bo.reset()
		f.acct.authOK()
		if idle {
			f.setState(StateIdle, nil)
			if err := f.idle(ctx, conn); err != nil || ctx.Err() != nil {
				return cmp.Or(err, ctx.Err())
			}
		} else {
			f.setState(StatePolling, nil)
			if !f.waitPoll(ctx) {
				return ctx.Err()
			}
		}
	}
}

// idle holds IDLE until the server reports a change, the restart interval
// passes or ctx ends. Every sync.idle_check it ends the IDLE (DONE must be
// answered within the command timeout) and sends NOOP: a connection the
// network dropped without a FIN or RST is then noticed within idle_check +
// command_timeout, instead of at the restart interval; TCP keepalive on
// the socket covers a peer that stops answering altogether.
func (f *folderWorker) idle(ctx context.Context, conn *imapconn.Conn) error {
	sc := f.sup.conf().Sync
	restart := time.Now().Add(sc.IdleRestart)
	for {
		window := min(sc.IdleCheck, time.Until(restart))
		woke, err := f.idleOnce(ctx, conn, window)
		if err != nil {
			return err
		}
		f.idleChecked()
		if woke || ctx.Err() != nil || !time.Now().Before(restart) {
			return nil
		}
		// NOOP also lets the server report changes it did not push.
		if err := conn.Do(ctx, "noop", func(c *imapclient.Client) error { return c.Noop().Wait() }); err != nil {
			return err
		}
		select {
		case <-f.wake:
			return nil
		default:
		}
	}
}

// idleOnce holds one IDLE for up to window; woke reports that the folder
// needs a sync (a change, an expunge grace ending, the connection closing).
func (f *folderWorker) idleOnce(ctx context.Context, conn *imapconn.Conn, window time.Duration) (woke bool, err error) {
	// Bound by hardCtx, not ctx: a stop ends IDLE with DONE (the select
	// below) rather than by dropping the connection, so LOGOUT can follow.
	err = conn.DoTimeout(f.sup.hardCtx, "idle", window+f.sup.conf().Sync.CommandTimeout, func(c *imapclient.Client) error {
		cmd, err := c.Idle()
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		wait := window
		if next := f.nextGoneDeadline(); !next.IsZero() {
			// Wake when an expunged copy's grace ends, to settle it.
			if d := max(time.Until(next), 10*time.Millisecond); d < wait {
				wait, woke = d, true
			}
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-f.wake:
			woke = true
		case <-t.C:
		case <-ctx.Done():
		case <-c.Closed():
			woke = true
		}
		if err := cmd.Close(); err != nil {
			return fmt.Errorf("idle done: %w", err)
		}
		return cmd.Wait()
	})
	return woke, err
}

func (f *folderWorker) waitPoll(ctx context.Context) bool {
	t := time.NewTimer(f.sup.conf().Sync.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-f.wake:
	}
	return true
}

// syncOnce selects the folder and brings its cursor up to UIDNEXT-1 as the
// server reported it at SELECT time.
func (f *folderWorker) syncOnce(ctx context.Context, conn *imapconn.Conn) error {
	f.setState(StateSyncing, nil)
	sel, err := f.selectFolder(ctx, conn)
	if err != nil {
		return err
	}
	st, err := f.prepareCursor(ctx, conn, sel)
	if err != nil {
		return err
	}
	top := uint32(sel.UIDNext) - 1
	if sel.UIDNext == 0 {
		return errors.New("select: server sent no UIDNEXT")
	}
	before := st
	if st.LastUID < top {
		if err := f.catchUp(ctx, conn, st.LastUID, top, sel.UIDValidity); err != nil {
			return err
		}
	}
	if sel.HighestModSeq == 0 || sel.HighestModSeq != before.HighestModSeq {
		if err := f.watchFlags(ctx, conn, sel.UIDValidity, before); err != nil {
			return err
		}
	}
	if err := f.detectExpunges(ctx, conn, top); err != nil {
		return err
	}
	if err := f.settleExpunges(ctx, sel.UIDValidity); err != nil {
		return err
	}
	f.applyUnlinks(ctx, conn)
	// Grouped with other folders' (bbolt batch): after a burst to 1,000
	// accounts these would be a thousand serial commits.
	err = f.sup.store.Group(func(tx *store.Tx) error {
		cur, err := tx.Folder(f.acct.cfg.ID, f.name)
		if err != nil {
			return err
		}
		cur.UIDNext, cur.LastSyncAt = uint32(sel.UIDNext), time.Now()
		if sel.HighestModSeq > cur.HighestModSeq {
			cur.HighestModSeq = sel.HighestModSeq
		}
		return tx.PutFolder(f.acct.cfg.ID, f.name, cur)
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.status.LastSync, f.status.UIDValidity, f.status.UIDNext = time.Now(), sel.UIDValidity, uint32(sel.UIDNext)
	f.mu.Unlock()
	return nil
}

// selectFolder opens the folder (with CONDSTORE when the server has it) and
// notes whether the logged keyword can be written back.
func (f *folderWorker) selectFolder(ctx context.Context, conn *imapconn.Conn) (*imap.SelectData, error) {
	var sel *imap.SelectData
	err := conn.Do(ctx, "select", func(c *imapclient.Client) error {
		var err error
		// Read-write only when the logged keyword is written back: STORE
		// needs it. Fetches are BODY.PEEK either way, so \Seen never changes.
		readOnly := f.sup.conf().Sync.LoggedKeyword == "off"
		sel, err = c.Select(f.name, &imap.SelectOptions{ReadOnly: readOnly, CondStore: conn.Caps().Has(imap.CapCondStore)}).Wait()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("select: %w", err)
	}
	if sel.UIDValidity == 0 {
		return nil, errors.New("select: server sent no UIDVALIDITY (RFC 9051 §2.3.1.1 requires it)")
	}
	f.noteWriteBack(sel)
	return sel, nil
}

// prepareCursor loads the folder's cursor and handles the first sync and a
// UIDVALIDITY change (RFC 9051 §2.3.1.1: every UID we hold is void). After
// a change the folder is re-scanned from the start; the ledger is keyed by
// the message, not the UID, so nothing already delivered goes out again.
func (f *folderWorker) prepareCursor(ctx context.Context, conn *imapconn.Conn, sel *imap.SelectData) (store.FolderState, error) {
	acct := f.acct.cfg.ID
	var st store.FolderState
	err := f.sup.store.View(func(tx *store.Tx) error {
		var err error
		st, err = tx.Folder(acct, f.name)
		return err
	})
	if err != nil {
		return st, err
	}
	if st.UIDValidity == sel.UIDValidity {
		return st, nil
	}
	if st.UIDValidity != 0 {
		f.log.Warn("UIDVALIDITY changed; re-scanning the folder, delivered messages are recognised and not sent again",
			"old_uidvalidity", st.UIDValidity, "new_uidvalidity", sel.UIDValidity)
		err := f.sup.store.Update(func(tx *store.Tx) error { return tx.ResetFolder(acct, f.name, sel.UIDValidity) })
		if err != nil {
			return st, err
		}
		return store.FolderState{UIDValidity: sel.UIDValidity}, nil
	}
	start, _ := config.ParseStart(f.acct.cfg.Start)
	st = store.FolderState{UIDValidity: sel.UIDValidity}
	switch {
	case start.Now:
		st.LastUID = uint32(sel.UIDNext) - 1
	case !start.Since.IsZero():
		first, err := f.firstUIDSince(ctx, conn, start.Since)
		if err != nil {
			return st, err
		}
		st.LastUID = first - 1
		if first == 0 {
			st.LastUID = uint32(sel.UIDNext) - 1
		}
	}
	f.log.Info("first sync of folder", "start", f.acct.cfg.Start, "from_uid", st.LastUID+1, "uidnext", sel.UIDNext)
	err = f.sup.store.Update(func(tx *store.Tx) error { return tx.PutFolder(acct, f.name, st) })
	return st, err
}

func (f *folderWorker) firstUIDSince(ctx context.Context, conn *imapconn.Conn, since time.Time) (uint32, error) {
	var data *imap.SearchData
	err := conn.Do(ctx, "search since", func(c *imapclient.Client) error {
		var err error
		data, err = c.UIDSearch(&imap.SearchCriteria{Since: since}, &imap.SearchOptions{ReturnMin: true}).Wait()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("search since %s: %w", since.Format("2006-01-02"), err)
	}
	if data.Min != 0 {
		return data.Min, nil
	}
	uids := data.AllUIDs()
	if len(uids) == 0 {
		return 0, nil
	}
	return uint32(uids[0]), nil
}

// catchUp processes (from, top] in batches through a pipeline of four
// stages, each on its own goroutine: headers (IMAP headers, parse and
// match, ledger look-up), bodies (on a helper connection when one can be
// had, see helper.go), encode ahead (sink.Preparer), and deliver (the
// sink's write and fsync, then the bbolt commit, which runs beside the next
// group's delivery). So the IMAP reads, the encoding and the disk overlap,
// and the slowest of them sets the pace. The cursor still moves only in
// UID order, over what the sink acknowledged: deliverBatch commits batches
// in order.
func (f *folderWorker) catchUp(ctx context.Context, conn *imapconn.Conn, from, top, validity uint32) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A failing fetch stage stops the other (with its error as the cause)
	// while what was fetched is still delivered.
	fetchCtx, stopFetch := context.WithCancelCause(ctx)
	defer stopFetch(nil)
	classified := make(chan *batch, 1)
	fetched := make(chan *batch, 1)
	batches := make(chan *batch, 1)
	var headersErr, bodiesErr error
	// A helper pays off only when there is a next batch to overlap with.
	useHelper := uint64(top-from) > uint64(f.sup.conf().Sync.BatchSize)
	var wg stdsync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer close(classified)
		if headersErr = f.produce(fetchCtx, conn, from, top, classified); headersErr != nil {
			stopFetch(headersErr)
		}
	}()
	go func() {
		defer wg.Done()
		defer close(fetched)
		if bodiesErr = f.bodyFetcher(fetchCtx, conn, validity, useHelper, classified, fetched); bodiesErr != nil {
			stopFetch(bodiesErr)
		}
	}()
	go func() {
		defer wg.Done()
		defer close(batches)
		f.encodeAhead(ctx, fetched, batches)
	}()
	var deliverErr error
	var logged []uint32
	overlap := &commitOverlap{}
deliver:
	for b := range batches {
		for _, part := range b.splitCount(f.sup.ackGroup()) {
			var uids []uint32
			if uids, deliverErr = f.deliverBatch(ctx, part, validity, overlap); deliverErr != nil {
				cancel()
				break deliver
			}
			logged = append(logged, uids...)
		}
	}
	if err := overlap.wait(); deliverErr == nil {
		deliverErr = err
	}
	cancel()
	for range batches { // let the fetch stages finish their sends
	}
	wg.Wait()
	// The first failure is the cause; a fetch stage stopped by the other
	// reports the other's error as its own (context.Cause).
	err := cmp.Or(deliverErr, bodiesErr, headersErr)
	// Whatever was delivered gets its keyword, even if a later batch failed
	// or a graceful stop began (bounded by the stop grace).
	f.storeLogged(f.sup.hardCtx, conn, logged, true)
	return err
}

// produce is the catch-up's header stage: it fetches the headers of each
// batch, cuts it by bytes, classifies it and hands it to the body stage.
func (f *folderWorker) produce(ctx context.Context, conn *imapconn.Conn, from, top uint32, out chan<- *batch) error {
	size := uint32(f.sup.conf().Sync.BatchSize)
	for lo := from + 1; lo <= top && lo != 0; lo += size {
		hi := min(lo+size-1, top)
		if hi < lo { // overflow near 2^32
			hi = top
		}
		b, err := f.fetchHeaders(ctx, conn, lo, hi)
		if err != nil {
			return err
		}
		// Bodies are held until the sink has them: split by bytes so a run
		// of large mail cannot pin more than a bounded amount of memory.
		for _, part := range b.splitBytes(maxBatchBytes) {
			if err := f.classifyBatch(ctx, part); err != nil {
				return err
			}
			select {
			case out <- part:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if hi == top {
			break
		}
	}
	return nil
}

// prepare classifies a fetched batch and fetches the bodies it will deliver.
func (f *folderWorker) prepare(ctx context.Context, conn *imapconn.Conn, b *batch) error {
	if err := f.classifyBatch(ctx, b); err != nil {
		return err
	}
	return f.fetchBodies(ctx, conn, b.items)
}

// classifyBatch decides what to do with each message of a fetched batch
// and which bodies to fetch.
func (f *folderWorker) classifyBatch(ctx context.Context, b *batch) error {
	if len(b.items) == 0 {
		return nil
	}
	start := time.Now()
	if err := f.classify(ctx, b.items); err != nil {
		return err
	}
	f.sup.metrics.stage("parse_match", start)
	return f.markLogged(b.items)
}

// markLogged turns the items to deliver whose message the ledger already
// has as delivered into copies: a copy in another mailbox or folder owes
// the CRM one provenance event per (message, account, folder), keyed so a
// retry is idempotent; a copy the ledger has in this folder (a re-scan)
// owes nothing.
func (f *folderWorker) markLogged(items []*item) error {
	seen, err := f.alreadyLogged(items)
	if err != nil {
		return err
	}
	for _, it := range items {
		here, logged := seen[it.key]
		if it.action != actDeliver || !logged {
			continue
		}
		msg := it.msg
		it.action, it.needBody, it.msg = actDuplicate, false, nil
		if !here {
			it.msg = &sink.Message{
				Key:       it.key + ":provenance:" + f.acct.cfg.ID + "/" + f.name,
				Event:     sink.EventProvenance,
				MessageID: msg.MessageID, Direction: msg.Direction, Date: msg.Date, Subject: msg.Subject,
			}
		}
	}
	return nil
}

// encodeAhead is the pipeline's middle stage: it lets a sink that can
// (sink.Preparer) do its expensive work on each batch, the body encoding,
// while the fetch stage reads the next batch from IMAP and the sink writes
// the previous one. Without a Preparer it only forwards.
func (f *folderWorker) encodeAhead(ctx context.Context, in <-chan *batch, out chan<- *batch) {
	p, _ := f.sup.sink.(sink.Preparer)
	for b := range in {
		if p != nil {
			start := time.Now()
			msgs := make([]*sink.Message, 0, len(b.items))
			for _, it := range b.items {
				if it.msg != nil && it.action == actDeliver {
					msgs = append(msgs, it.msg)
				}
			}
			p.Prepare(msgs)
			f.sup.metrics.stage("encode_ahead", start)
		}
		select {
		case out <- b:
		case <-ctx.Done():
			for range in { // let the fetch stage finish its send
			}
			return
		}
	}
}

func (f *folderWorker) provenance(uid, validity uint32) sink.Provenance {
	return sink.Provenance{Account: f.acct.cfg.ID, Folder: f.name, UIDValidity: validity, UID: uid}
}
