package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/sink"
)

// ErrUnknownMessage is returned for a key the ledger does not have.
var ErrUnknownMessage = errors.New("unknown message key")

// Unlink handles an activity unlinked in the CRM: the ledger marks the
// message retracted (so it is never logged again) and every mailbox copy
// loses the logged keyword at its folder's next round. Mail is never
// deleted.
func (s *Supervisor) Unlink(key string) error {
	var copies []sink.Provenance
	err := s.store.Update(func(tx *store.Tx) error {
		if _, err := tx.Unlink(key, time.Now()); err != nil {
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRefused) {
				return fmt.Errorf("%w: %s", ErrUnknownMessage, key)
			}
			return err
		}
		e, _, err := tx.Ledger(key)
		copies = e.Provenance
		return err
	})
	if err != nil {
		return err
	}
	for _, p := range copies {
		if a := s.account(p.Account); a != nil {
			if f := a.folder(p.Folder); f != nil {
				f.queueUnlink(p.UID)
			}
		}
	}
	s.log.Info("activity unlinked in the CRM; logged keyword will be removed", "key", key, "copies", len(copies))
	return nil
}

func (f *folderWorker) queueUnlink(uid uint32) {
	f.mu.Lock()
	f.unlinks = append(f.unlinks, uid)
	f.mu.Unlock()
	f.signal()
}

// applyUnlinks removes the logged keyword from queued copies.
func (f *folderWorker) applyUnlinks(ctx context.Context, conn *imapconn.Conn) {
	f.mu.Lock()
	uids := f.unlinks
	f.unlinks = nil
	f.mu.Unlock()
	f.storeLogged(ctx, conn, uids, false)
}

// pollUnlinks asks an Unlinker sink for unlinked activities until ctx ends.
func (s *Supervisor) pollUnlinks(ctx context.Context, u sink.Unlinker) {
	for sleep(ctx, s.conf().Sync.PollInterval) {
		keys, err := u.Unlinked(ctx)
		if err != nil {
			s.log.Warn("cannot read unlinked activities from the sink; retrying", "error", err)
			continue
		}
		var done []string
		for _, k := range keys {
			if err := s.Unlink(k); err != nil && !errors.Is(err, ErrUnknownMessage) {
				s.log.Warn("cannot apply an unlink", "key", k, "error", err)
				continue
			}
			done = append(done, k)
		}
		if len(done) > 0 {
			if err := u.AckUnlinked(ctx, done); err != nil {
				s.log.Warn("cannot acknowledge unlinks; they will be applied again (harmless)", "error", err)
			}
		}
	}
}
