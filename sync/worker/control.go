package worker

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
)

// Errors for requests that name something the daemon does not have.
var (
	ErrUnknownAccount = errors.New("unknown account")
	ErrUnknownFolder  = errors.New("unknown folder")
	ErrUnknownJob     = errors.New("unknown backfill job")
	ErrNoDeadLetter   = errors.New("no such dead letter")
)

func (s *Supervisor) account(id string) *accountWorker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts[id]
}

// Pause stops an account's workers and closes its connections until
// Resume. What was fetched but not committed stays behind the cursor.
func (s *Supervisor) Pause(id string) error {
	a := s.account(id)
	if a == nil {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, id)
	}
	a.stop()
	a.setPaused(true)
	s.log.Info("account paused", "account", id)
	return nil
}

// Resume restarts a paused account.
func (s *Supervisor) Resume(id string) error {
	s.mu.Lock()
	a := s.accounts[id]
	if a == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownAccount, id)
	}
	if !a.isPaused() {
		s.mu.Unlock()
		return nil
	}
	fresh := newAccountWorker(s, a.cfg)
	s.accounts[id] = fresh
	s.mu.Unlock()
	fresh.start(s.runCtx)
	s.log.Info("account resumed", "account", id)
	return nil
}

// Resync forgets a folder's cursor and re-scans it from the start. The
// ledger stays, so nothing already delivered is delivered again.
func (s *Supervisor) Resync(id, folder string) error {
	a := s.account(id)
	if a == nil {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, id)
	}
	f := a.folder(folder)
	if f == nil {
		return fmt.Errorf("%w: %s has no synced folder %q", ErrUnknownFolder, id, folder)
	}
	wasPaused := a.isPaused()
	if !wasPaused {
		if err := s.Pause(id); err != nil {
			return err
		}
	}
	err := s.store.Update(func(tx *store.Tx) error {
		st, err := tx.Folder(id, folder)
		if err != nil {
			return err
		}
		return tx.ResetFolder(id, folder, st.UIDValidity)
	})
	// ResetFolder keeps UIDVALIDITY, so the worker starts from UID 1.
	if !wasPaused {
		if rerr := s.Resume(id); err == nil {
			err = rerr
		}
	}
	if err == nil {
		s.log.Info("folder resync started", "account", id, "folder", folder)
	}
	return err
}

// Reload applies a new configuration: accounts that were added start,
// removed ones stop, changed ones restart, untouched ones keep their
// connections. A new matcher replaces the old one for every account.
// Settings that cannot change while running (the state file, the sink) are
// refused with the reason, and the running configuration stays.
func (s *Supervisor) Reload(cfg *config.Config, m *matcher.Matcher) (added, removed, restarted, unchanged []string, err error) {
	if cfg.State != s.conf().State {
		return nil, nil, nil, nil, errors.New("state: the state file cannot change on reload; restart the daemon")
	}
	if !reflect.DeepEqual(cfg.Sink, s.conf().Sink) {
		return nil, nil, nil, nil, errors.New("sink: the sink cannot change on reload; restart the daemon")
	}
	if m != nil {
		s.matcherPtr.Store(m)
	}
	old := s.conf()
	s.cfgPtr.Store(cfg)
	for _, a := range cfg.Accounts {
		prev, ok := old.Account(a.ID)
		switch {
		case !ok:
			added = append(added, a.ID)
			w := newAccountWorker(s, a)
			s.mu.Lock()
			s.accounts[a.ID] = w
			s.mu.Unlock()
			w.start(s.runCtx)
		case !reflect.DeepEqual(*prev, a) || !reflect.DeepEqual(old.Sync, cfg.Sync):
			restarted = append(restarted, a.ID)
			w := s.account(a.ID)
			paused := w != nil && w.isPaused()
			if w != nil {
				w.stop()
			}
			fresh := newAccountWorker(s, a)
			s.mu.Lock()
			s.accounts[a.ID] = fresh
			s.mu.Unlock()
			if paused {
				fresh.setPaused(true)
			} else {
				fresh.start(s.runCtx)
			}
		default:
			// Deeply equal: the running worker keeps its connections and
			// its copy of the account config.
			unchanged = append(unchanged, a.ID)
		}
	}
	for _, a := range old.Accounts {
		if _, ok := cfg.Account(a.ID); !ok {
			removed = append(removed, a.ID)
			if w := s.account(a.ID); w != nil {
				w.stop()
			}
			s.mu.Lock()
			delete(s.accounts, a.ID)
			s.mu.Unlock()
		}
	}
	// Counts, and ids only of what changed (capped): at 1,000 accounts
	// the unchanged list alone made a 10 KB line.
	s.log.Info("configuration reloaded", "added", idList(added), "removed", idList(removed), "restarted", idList(restarted),
		"unchanged_count", len(unchanged))
	return added, removed, restarted, unchanged, nil
}

// DeadLetter is a parked message with where it is.
type DeadLetter struct {
	Account, Folder string
	UID             uint32
	store.DeadLetter
}

// DeadLetters lists parked messages of one account, or all when id is "".
func (s *Supervisor) DeadLetters(id string) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.store.View(func(tx *store.Tx) error {
		accounts, err := tx.Accounts()
		if err != nil {
			return err
		}
		for _, acct := range accounts {
			if id != "" && acct != id {
				continue
			}
			folders, err := tx.Folders(acct)
			if err != nil {
				return err
			}
			for _, folder := range folders {
				err := tx.DeadLetters(acct, folder, func(uid uint32, d store.DeadLetter) error {
					out = append(out, DeadLetter{Account: acct, Folder: folder, UID: uid, DeadLetter: d})
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// RetryDeadLetter sends a parked message through the pipeline again on a
// connection of its own; it leaves the list when the sink takes it.
func (s *Supervisor) RetryDeadLetter(ctx context.Context, id, folder string, uid uint32) error {
	if err := s.findDeadLetter(id, folder, uid); err != nil {
		return err
	}
	a := s.account(id)
	if a == nil {
		return fmt.Errorf("%w: %s", ErrUnknownAccount, id)
	}
	conn, err := a.dial(ctx, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	f := a.folder(folder)
	if f == nil {
		f = newFolderWorker(s, a, folder, "")
	}
	sel, err := f.selectFolder(ctx, conn)
	if err != nil {
		return err
	}
	var delivered bool
	err = f.processUIDs(ctx, conn, sel.UIDValidity, []uint32{uid}, false, func(b *batch) {
		for _, it := range b.items {
			delivered = delivered || it.action == actDeliver
		}
	})
	if err != nil {
		return err
	}
	if err := s.findDeadLetter(id, folder, uid); err == nil {
		return fmt.Errorf("message is still parked; see `mailsync deadletter list` for the new reason")
	}
	return nil
}

// DropDeadLetter forgets a parked message; the ledger records that an
// operator dropped it, so it is not picked up again.
func (s *Supervisor) DropDeadLetter(id, folder string, uid uint32) error {
	if err := s.findDeadLetter(id, folder, uid); err != nil {
		return err
	}
	return s.store.Update(func(tx *store.Tx) error {
		var d store.DeadLetter
		err := tx.DeadLetters(id, folder, func(u uint32, dl store.DeadLetter) error {
			if u == uid {
				d = dl
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.DropDeadLetter(id, folder, uid, d, time.Now())
	})
}

func (s *Supervisor) findDeadLetter(id, folder string, uid uint32) error {
	found := false
	err := s.store.View(func(tx *store.Tx) error {
		return tx.DeadLetters(id, folder, func(u uint32, _ store.DeadLetter) error {
			found = found || u == uid
			return nil
		})
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: %s/%s uid %d", ErrNoDeadLetter, id, folder, uid)
	}
	return nil
}

// maxLoggedIDs caps how many account ids one log line lists.
const maxLoggedIDs = 20

// idList is ids for a log line, cut to maxLoggedIDs with a count of the
// rest.
func idList(ids []string) []string {
	if len(ids) <= maxLoggedIDs {
		return ids
	}
	return append(ids[:maxLoggedIDs:maxLoggedIDs], fmt.Sprintf("and %d more", len(ids)-maxLoggedIDs))
}
