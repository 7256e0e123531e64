package worker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/sink"
)

// userFlags are the system flags a CRM may want to mirror (RFC 9051 §2.3.2).
var userFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged}

// flagChange is one message whose flags the server reports.
type flagChange struct {
	uid   uint32
	flags []imap.Flag
}

// watchFlags turns what users did in their mail clients to messages below
// the cursor into CRM events. With CONDSTORE (RFC 7162) it asks only for
// what changed since the stored HIGHESTMODSEQ; without it, it scans the
// flags of the newest messages. Every reaction is idempotent on the
// ledger's state, so seeing a change twice (or the daemon's own STORE of
// the logged keyword) does nothing twice.
func (f *folderWorker) watchFlags(ctx context.Context, conn *imapconn.Conn, validity uint32, st store.FolderState) error {
	if st.LastUID == 0 {
		return nil
	}
	changes, err := f.fetchFlagChanges(ctx, conn, st)
	if err != nil || len(changes) == 0 {
		return err
	}
	cfg := f.sup.conf()
	private := strings.ToLower(orDefault(cfg.Matcher.PrivateKeyword, matcher.DefaultPrivateKeyword))
	logMark := strings.ToLower(orDefault(cfg.Matcher.LogKeyword, matcher.DefaultLogKeyword))

	var relog []uint32
	var events []*sink.Message
	type eventRef struct {
		key, name, value string
		uid              uint32
	}
	var refs []eventRef
	err = f.sup.store.View(func(tx *store.Tx) error {
		for _, ch := range changes {
			key, ok, err := tx.UIDKey(f.acct.cfg.ID, f.name, ch.uid)
			if err != nil || !ok {
				continue // not processed yet: the catch-up will see its flags
			}
			e, ok, err := tx.Ledger(key)
			if err != nil || !ok {
				continue
			}
			kws := lowerKeywords(ch.flags)
			prov := []sink.Provenance{f.provenance(ch.uid, validity)}
			switch {
			case e.Status == store.StatusDelivered && kws[private]:
				events = append(events, &sink.Message{Key: key + ":retract", Event: sink.EventRetract, Provenance: prov, MessageID: e.MessageID})
				refs = append(refs, eventRef{key, "retract", "user marked private", ch.uid})
			case (e.Status == store.StatusSkipped) && kws[logMark]:
				relog = append(relog, ch.uid)
			case e.Status == store.StatusDelivered:
				now := systemFlags(ch.flags)
				if e.Events["flags"] == now {
					continue
				}
				events = append(events, &sink.Message{
					Key: key + ":flags:" + now, Event: sink.EventFlags, Provenance: prov,
					MessageID: e.MessageID, Flags: strings.Fields(now),
				})
				refs = append(refs, eventRef{key, "flags", now, ch.uid})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(events) > 0 {
		if err := f.deliverEvents(ctx, events); err != nil {
			return err
		}
		var retracted []uint32
		err := f.sup.store.Update(func(tx *store.Tx) error {
			var delta store.Counters
			for _, r := range refs {
				if r.name != "retract" {
					if err := tx.RecordEvent(r.key, r.name, r.value, time.Now()); err != nil {
						return err
					}
					continue
				}
				changed, err := tx.Retract(r.key, "user marked the message private", r.value, time.Now())
				if err != nil {
					return err
				}
				if changed {
					delta.Retracted++
					retracted = append(retracted, r.uid)
				}
			}
			return tx.AddCounters(f.acct.cfg.ID, f.name, delta)
		})
		if err != nil {
			return err
		}
		for _, r := range refs {
			f.log.Info("user action sent to the CRM", "event", r.name, "uid", r.uid, "value", r.value)
		}
		// The CRM no longer has these: the logged keyword would mislead.
		f.storeLogged(ctx, conn, retracted, false)
	}
	if len(relog) > 0 {
		f.log.Info("user marked messages for logging", "count", len(relog))
		return f.processUIDs(ctx, conn, validity, relog, false, func(*batch) {})
	}
	return nil
}

func (f *folderWorker) fetchFlagChanges(ctx context.Context, conn *imapconn.Conn, st store.FolderState) ([]flagChange, error) {
	var set imap.UIDSet
	opts := &imap.FetchOptions{UID: true, Flags: true}
	if conn.Caps().Has(imap.CapCondStore) {
		if st.HighestModSeq == 0 {
			return nil, nil // nothing to compare with yet
		}
		set.AddRange(1, imap.UID(st.LastUID))
		opts.ChangedSince = st.HighestModSeq
	} else {
		window := uint32(f.sup.conf().Sync.FlagScanWindow)
		if window == 0 {
			return nil, nil
		}
		lo := uint32(1)
		if st.LastUID > window {
			lo = st.LastUID - window + 1
		}
		set.AddRange(imap.UID(lo), imap.UID(st.LastUID))
	}
	var bufs []*imapclient.FetchMessageBuffer
	err := conn.Do(ctx, "fetch flags", func(c *imapclient.Client) error {
		var err error
		bufs, err = c.Fetch(set, opts).Collect()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch flags: %w", err)
	}
	out := make([]flagChange, 0, len(bufs))
	for _, b := range bufs {
		if b.UID != 0 && uint32(b.UID) <= st.LastUID {
			out = append(out, flagChange{uid: uint32(b.UID), flags: b.Flags})
		}
	}
	return out, nil
}

// deliverEvents hands events to the sink. A transient failure returns an
// error: the stored HIGHESTMODSEQ does not move, so the next round sees
// the same changes and retries (the event keys make that idempotent).
func (f *folderWorker) deliverEvents(ctx context.Context, events []*sink.Message) error {
	for i, r := range f.sup.sink.Deliver(f.sup.hardCtx, events) {
		if r.Err != nil && !sink.IsPermanent(r.Err) {
			return fmt.Errorf("deliver %s event: %w", events[i].Event, r.Err)
		}
		if r.Err != nil {
			f.log.Warn("the sink refused an event; it is not retried", "event", events[i].Event, "key", events[i].Key, "error", r.Err)
		}
	}
	return nil
}

// storeLogged adds (or removes) the logged keyword on uids, where the
// folder allows keywords. The STORE is SILENT and the ledger already
// reflects it, so the change it causes is never taken for a user's.
// Failures are logged and skipped: the keyword is a courtesy to the user,
// never a reason to hold the pipeline.
func (f *folderWorker) storeLogged(ctx context.Context, conn *imapconn.Conn, uids []uint32, add bool) {
	kw := f.sup.conf().Sync.LoggedKeyword
	if len(uids) == 0 || kw == "off" || !f.writeBackOK() {
		return
	}
	op := imap.StoreFlagsAdd
	if !add {
		op = imap.StoreFlagsDel
	}
	set := imap.UIDSetNum(toUIDs(uids)...)
	defer f.sup.metrics.stage("keyword_store", time.Now())
	err := conn.Do(ctx, "store keyword", func(c *imapclient.Client) error {
		return c.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.Flag(kw)}}, nil).Close()
	})
	if err != nil {
		f.log.Warn("cannot store the logged keyword; sync goes on", "keyword", kw, "error", err)
	}
}

func (f *folderWorker) writeBackOK() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status.WriteBack == "on"
}

// noteWriteBack records whether the folder accepts new keywords
// (PERMANENTFLAGS contains \*, RFC 9051 §7.1).
func (f *folderWorker) noteWriteBack(sel *imap.SelectData) {
	state := "on"
	switch {
	case f.sup.conf().Sync.LoggedKeyword == "off":
		state = "off: disabled by sync.logged_keyword"
	case !slices.Contains(sel.PermanentFlags, imap.FlagWildcard) && !slices.Contains(sel.PermanentFlags, imap.Flag(f.sup.conf().Sync.LoggedKeyword)):
		state = `off: the server does not allow new keywords here (PERMANENTFLAGS has no \*)`
	}
	f.mu.Lock()
	changed := f.status.WriteBack != state
	f.status.WriteBack = state
	f.mu.Unlock()
	if changed && state != "on" {
		f.log.Warn("logged-keyword write-back is off for this folder; sync goes on", "reason", state)
	}
}

func toUIDs(uids []uint32) []imap.UID {
	out := make([]imap.UID, len(uids))
	for i, u := range uids {
		out[i] = imap.UID(u)
	}
	return out
}

func lowerKeywords(flags []imap.Flag) map[string]bool {
	m := make(map[string]bool, len(flags))
	for _, fl := range flags {
		m[strings.ToLower(string(fl))] = true
	}
	return m
}

// systemFlags is the sorted, space-separated set of userFlags in flags.
func systemFlags(flags []imap.Flag) string {
	var out []string
	for _, u := range userFlags {
		for _, fl := range flags {
			if strings.EqualFold(string(fl), string(u)) {
				out = append(out, string(u))
				break
			}
		}
	}
	return strings.Join(out, " ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
