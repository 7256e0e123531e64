package worker

import (
	"context"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/sync/imapconn"
)

// A catch-up reads headers, then bodies, batch after batch; on one
// connection those FETCHes take turns, and the header FETCH of the next
// batch waits for the bodies of this one. A catch-up helper is a second
// connection to the same folder that fetches the bodies while the folder's
// own connection fetches and classifies the next batch's headers.
//
// A helper is opened only during a catch-up of more than one batch, only
// from the account's spare connections (max_connections less one per
// folder that holds a connection of its own, so it never delays a
// folder's reconnect), and only if a descriptor of the process budget
// (while less than half of it is in use) and a dial slot of the server are
// free at once: it never waits, and never makes the account wait. It
// selects the folder read-only, is counted in the account's connections
// while open, and is logged out when the catch-up ends. If it fails, the
// bodies are fetched on the folder's own connection.

// helperSlots sizes the account's helper budget once its folders are
// known: the connections the folder workers and the poller cannot use.
func (a *accountWorker) helperSlots(folders int) chan struct{} {
	return make(chan struct{}, max(0, a.cfg.MaxConnections-min(folders, a.cfg.MaxConnections)))
}

// dialHelper opens a catch-up helper connection if everything it needs
// is free now; nil, nil when something is not.
func (a *accountWorker) dialHelper(ctx context.Context) (*imapconn.Conn, error) {
	a.mu.Lock()
	helpers := a.helpers
	a.mu.Unlock()
	if !trySend(helpers) {
		return nil, nil
	}
	if !trySend(a.slots) {
		<-helpers
		return nil, nil
	}
	budget, ok := a.sup.tryHelperConnSlot()
	if !ok {
		<-a.slots
		<-helpers
		return nil, nil
	}
	release, ok := a.sup.tryDialSlot(&a.cfg)
	if !ok {
		budget()
		<-a.slots
		<-helpers
		return nil, nil
	}
	// Unsolicited data on the helper (new mail, flag changes) is the
	// folder connection's business too; drain it without waking anyone.
	conn, err := a.sup.dial(ctx, &a.cfg, wakeHandler(func() {}))
	release()
	if err != nil {
		budget()
		<-a.slots
		<-helpers
		return nil, err
	}
	go func() { <-conn.Closed(); budget(); <-a.slots; <-helpers }()
	return conn, nil
}

func trySend(c chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case c <- struct{}{}:
		return true
	default:
		return false
	}
}

// openHelper dials a helper and selects the folder on it, read-only (the
// fetches PEEK; the logged keyword is stored on the folder's connection).
// It returns nil when no helper can be had or the folder is not the one
// being caught up (UIDVALIDITY changed): the catch-up then goes on without.
func (f *folderWorker) openHelper(ctx context.Context, validity uint32) *imapconn.Conn {
	conn, err := f.acct.dialHelper(ctx)
	if conn == nil {
		if err != nil && ctx.Err() == nil {
			f.log.Info("catch-up goes on with one connection: the second could not be opened", "error", err)
		}
		return nil
	}
	f.acct.connOpened()
	var sel *imap.SelectData
	err = conn.Do(ctx, "select", func(c *imapclient.Client) error {
		var err error
		sel, err = c.Select(f.name, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	if err == nil && sel.UIDValidity != validity {
		err = fmt.Errorf("uidvalidity is %d there, %d here", sel.UIDValidity, validity)
	}
	if err != nil {
		f.closeHelper(conn)
		if ctx.Err() == nil {
			f.log.Info("catch-up goes on with one connection: the second could not select the folder", "error", err)
		}
		return nil
	}
	f.setHelper(true)
	f.log.Info("catch-up fetches bodies on a second connection")
	return conn
}

// closeHelper logs the helper out, within logoutTimeout and the stop's
// hard deadline, and closes it.
func (f *folderWorker) closeHelper(conn *imapconn.Conn) {
	lctx, cancel := context.WithTimeout(f.sup.hardCtx, logoutTimeout)
	defer cancel()
	_ = conn.Logout(lctx)
	f.acct.connClosed()
	f.setHelper(false)
}

// bodyFetcher is the catch-up's body stage: it fetches the bodies of each
// classified batch, on the helper once one is open, else on the folder's
// connection, and passes the batch on. It owns the helper: the dial runs
// beside the first batches, and the helper is closed when the stage ends.
func (f *folderWorker) bodyFetcher(ctx context.Context, conn *imapconn.Conn, validity uint32, useHelper bool,
	in <-chan *batch, out chan<- *batch) error {
	var helper *imapconn.Conn
	ready := make(chan *imapconn.Conn, 1) // the dial's one result
	received := !useHelper
	dialCtx, stopDial := context.WithCancel(ctx)
	if useHelper {
		go func() { ready <- f.openHelper(dialCtx, validity) }()
	}
	defer func() {
		stopDial()
		if !received {
			helper = <-ready // nil, or opened after the last batch
		}
		if helper != nil {
			f.closeHelper(helper)
		}
	}()
	for b := range in {
		if !received {
			select {
			case helper = <-ready:
				received = true
			default:
			}
		}
		if helper != nil {
			err := f.fetchBodies(ctx, helper, b.items)
			if err != nil && ctx.Err() != nil {
				drain(in)
				return err
			}
			if err != nil {
				// The helper is not needed for correctness: drop it and
				// fetch this batch again on the folder's connection.
				f.log.Info("catch-up helper connection failed; going on with one", "error", err)
				f.closeHelper(helper)
				helper = nil
			}
		}
		if helper == nil {
			if err := f.fetchBodies(ctx, conn, b.items); err != nil {
				drain(in)
				return err
			}
		}
		select {
		case out <- b:
		case <-ctx.Done():
			drain(in)
			return context.Cause(ctx)
		}
	}
	return nil
}

// drain lets an upstream stage finish its sends once this stage stops.
func drain(in <-chan *batch) {
	for range in {
	}
}

func (f *folderWorker) setHelper(on bool) {
	f.mu.Lock()
	f.status.CatchUpHelper = on
	f.mu.Unlock()
}
