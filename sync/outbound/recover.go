package outbound

import (
	"context"
	"errors"
	"fmt"
	"strings"
	stdsync "sync"
	"time"

	"github.com/mailsync/mailsync/store"
)

// maxRecoverPerRun bounds one Recover pass; what is left waits for the next.
const maxRecoverPerRun = 1000

// Recover finishes sends a crash or a failed Sent copy left unfinished,
// without waiting for their client to retry: a send the SMTP server
// accepted gets its Sent copy (after a look for one an interrupted APPEND
// left) and its ledger entry; a send interrupted during submission is finished only if its copy is found
// in Sent, and otherwise stays "outcome unknown" for its client to see.
// Nothing is ever submitted again. Unfinished sends are found by their
// stored copy, which only unfinished sends have.
//
// retry is how many sends are still unfinished for a reason that may pass
// (the IMAP server down); the caller calls Recover again later while it is
// non-zero. An error means the state file could not be read.
func (s *Sender) Recover(ctx context.Context) (retry int, err error) {
	if !s.enter() {
		return 0, ErrClosed
	}
	defer s.leave()
	var keys []string
	err = s.store.View(func(tx *store.Tx) error {
		keys, err = tx.KVKeys("send-copy/", maxRecoverPerRun)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("list unfinished sends: %w", err)
	}
	cfg := s.cfg.Load()
	for _, k := range keys {
		if ctx.Err() != nil {
			return retry, nil
		}
		account, idem, ok := strings.Cut(strings.TrimPrefix(k, "send-copy/"), "/")
		if !ok {
			continue
		}
		log := s.log.With("account", account, "idempotency_key", idem)
		acct, ok := cfg.Account(account)
		if !ok || !acct.CanSend() {
			log.Warn("unfinished send for an account that is gone or cannot send; left as it is")
			continue
		}
		release, ok := s.acquire(stateKey(account, idem))
		if !ok {
			continue // its client is retrying right now
		}
		st, copy, err := s.loadState(account, idem)
		if err == nil && st != nil && st.State != stateDone {
			_, err = s.resume(ctx, acct, idem, st, copy, log)
		}
		release()
		var oe *OutcomeUnknownError
		switch {
		case err == nil:
			log.Info("unfinished send finished: Sent copy filed and recorded")
		case errors.As(err, &oe) && oe.Folder != "":
			// Checked: not in Sent. Only a person can tell; its client
			// gets the same answer.
			log.Warn("unfinished send: outcome unknown, not retried", "err", err)
		case ctx.Err() != nil:
			return retry, nil
		default:
			retry++
			log.Warn("unfinished send not finished yet; trying again later", "err", err)
		}
	}
	return retry, nil
}

// RecoverLoop runs Recover at once and again with backoff between lo and
// hi while some send is left unfinished for a reason that may pass. It
// returns when there is none left or ctx ends.
func (s *Sender) RecoverLoop(ctx context.Context, lo, hi time.Duration) {
	wait := lo
	for {
		retry, err := s.Recover(ctx)
		if err != nil && !errors.Is(err, ErrClosed) {
			s.log.Error("recovering interrupted sends", "err", err)
		}
		if retry == 0 || err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, hi)
	}
}

// Recoverer owns the goroutine that runs RecoverLoop: once at Start, and
// again whenever Kick says a send was left unfinished (its Sent copy
// failed), so it is finished without waiting for the client.
type Recoverer struct {
	s      *Sender
	lo, hi time.Duration
	ctx    context.Context
	cancel context.CancelFunc

	mu      stdsync.Mutex
	running bool
	again   bool
	stopped bool
	wg      stdsync.WaitGroup
}

// NewRecoverer returns a recoverer retrying with backoff between lo and hi.
func NewRecoverer(s *Sender, lo, hi time.Duration) *Recoverer {
	r := &Recoverer{s: s, lo: lo, hi: hi}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Start runs a recovery pass now (Kick under another name, for reading).
func (r *Recoverer) Start() { r.Kick() }

// Kick runs a recovery pass soon: now if none runs, else right after the
// one running. It never blocks.
func (r *Recoverer) Kick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if r.running {
		r.again = true
		return
	}
	r.running = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			r.s.RecoverLoop(r.ctx, r.lo, r.hi)
			r.mu.Lock()
			if !r.again || r.stopped {
				r.running = false
				r.mu.Unlock()
				return
			}
			r.again = false
			r.mu.Unlock()
		}
	}()
}

// Stop ends the pass in progress and waits for it; later Kicks do nothing.
func (r *Recoverer) Stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
