// Package outbound sends mail composed in the CRM from a user's mailbox:
// it submits the message to the account's SMTP server, files a \Seen copy
// in the Sent folder over IMAP, and records the message in the delivery
// ledger under the key the sync pipeline will compute when it meets that
// copy, so the CRM does not get the mail a second time as a new activity.
//
// Every send carries an idempotency key; its progress is kept in the state
// file (see state.go), so a retried request, or one retried after a crash,
// never submits the same mail twice. NewHandler serves the HTTP API and
// Poller drains a CRM's outbox through the same Sender.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/sink"
)

// Result is what a send produced. Its JSON form is the API's 200 answer.
type Result struct {
	// MessageID is the Message-ID, without angle brackets.
	MessageID string `json:"message_id"`
	// SentFolder is where the copy was filed; empty when append_to_sent is
	// off and the server files it itself.
	SentFolder string `json:"sent_folder"`
	// UID and UIDValidity locate the copy; 0 when unknown (no UIDPLUS and
	// the copy was not found again, or no copy was filed by mailsync).
	UID         uint32 `json:"uid"`
	UIDValidity uint32 `json:"uidvalidity,omitempty"`
	// Key is the message's ledger key (the sink.Message.Key the CRM sees
	// for this mail).
	Key string `json:"key"`
	// IdempotentReplay is set when the answer comes from an earlier
	// request with the same idempotency key: nothing was submitted now.
	IdempotentReplay bool `json:"idempotent_replay"`
}

// DialFunc opens a logged-in IMAP connection for an account. The caller
// closes it. Errors are imapconn.Dial's.
type DialFunc func(ctx context.Context, acct *config.Account) (*imapconn.Conn, error)

// Deps are what a Sender needs besides the configuration.
type Deps struct {
	// Store is the open state file; required.
	Store *store.Store
	// DialIMAP opens IMAP connections for the Sent copy; nil means
	// NewIMAPDialer with password login. The daemon should pass the same
	// dialer its workers use, so OAuth2 accounts work here too.
	DialIMAP DialFunc
	// SMTPAuth, if set, returns the SASL client for an account's SMTP
	// login (e.g. XOAUTH2); nil means PLAIN or LOGIN with the account's
	// SMTP username and password. Its errors must not contain secrets.
	SMTPAuth func(acct *config.Account) (sasl.Client, error)
	// Logger receives one line per send; nil means slog.Default().
	Logger *slog.Logger
}

// Sender sends mail for the configured accounts. It is safe for
// concurrent use; sends with the same idempotency key are serialised.
type Sender struct {
	cfg        atomic.Pointer[config.Config]
	unfinished atomic.Pointer[func()]
	store      *store.Store
	dial       DialFunc
	authHook   func(acct *config.Account) (sasl.Client, error)
	log        *slog.Logger

	mu        stdsync.Mutex
	inFlight  map[string]bool   // state keys being handled
	sentCache map[string]string // account id → resolved Sent folder
	active    int               // Send calls in progress
	closed    bool              // Close was called: refuse new sends
	drained   chan struct{}     // closed when active drops to 0 after Close
}

// New returns a Sender for cfg.
func New(cfg *config.Config, deps Deps) (*Sender, error) {
	if cfg == nil || deps.Store == nil {
		return nil, errors.New("outbound: config and store are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Sender{
		store: deps.Store, dial: deps.DialIMAP, authHook: deps.SMTPAuth, log: log,
		inFlight: map[string]bool{}, sentCache: map[string]string{},
	}
	if s.dial == nil {
		s.dial = NewIMAPDialer(cfg.Sync.CommandTimeout, nil, log)
	}
	s.cfg.Store(cfg)
	return s, nil
}

// SetConfig switches to a reloaded configuration; sends in flight finish
// with the one they started with.
func (s *Sender) SetConfig(cfg *config.Config) {
	s.cfg.Store(cfg)
	s.mu.Lock()
	clear(s.sentCache)
	s.mu.Unlock()
}

func (s *Sender) cmdTimeout() time.Duration {
	if d := s.cfg.Load().Sync.CommandTimeout; d > 0 {
		return d
	}
	return config.DefaultCommandTimeout
}

// Send sends req from the account and returns where the mail went.
//
// Errors: ErrClosed after Close; a *FieldError for a bad request; ErrUnknownAccount;
// ErrCannotSend; ErrInProgress; ErrKeyReused; ErrTooLarge; an
// *SMTPError when the server refused the mail or could not be reached
// (nothing was sent, the key may be retried); an *OutcomeUnknownError
// (ErrOutcomeUnknown) when the mail may have been sent but it cannot be
// proven; a *SentCopyError when the mail was sent but its Sent copy or
// ledger record failed (retry with the same key to finish). Other errors
// are state-file or IMAP failures.
func (s *Sender) Send(ctx context.Context, account string, req Request) (*Result, error) {
	return s.send(ctx, account, req, req.fingerprint)
}

// OnUnfinished sets f to be called (without blocking) whenever a send
// returns a *SentCopyError: the mail went out but its Sent copy or ledger
// record did not, so the daemon can finish it (Recoverer.Kick) without
// waiting for the client to retry.
func (s *Sender) OnUnfinished(f func()) { s.unfinished.Store(&f) }

func (s *Sender) notifyUnfinished(err error) {
	var ce *SentCopyError
	if f := s.unfinished.Load(); f != nil && errors.As(err, &ce) {
		(*f)()
	}
}

// send is Send with the request's fingerprint given by fp, called only
// for a new request (after Validate).
func (s *Sender) send(ctx context.Context, account string, req Request, fp func() string) (res *Result, err error) {
	defer func() { s.notifyUnfinished(err) }()
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.leave()
	cfg := s.cfg.Load()
	acct, ok := cfg.Account(account)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownAccount, account)
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if !acct.CanSend() {
		return nil, fmt.Errorf("%w: account %s has no smtp.host configured", ErrCannotSend, account)
	}
	idem := req.IdempotencyKey
	release, ok := s.acquire(stateKey(account, idem))
	if !ok {
		return nil, ErrInProgress
	}
	defer release()
	log := s.log.With("account", account, "idempotency_key", idem)

	st, copy, err := s.loadState(account, idem)
	if err != nil {
		return nil, err
	}
	if st != nil {
		if st.Fingerprint != fp() {
			return nil, ErrKeyReused
		}
		return s.resume(ctx, acct, idem, st, copy, log)
	}

	now := time.Now()
	out, err := compose(acct, &req, now)
	if err != nil {
		return nil, err
	}
	id := identify(out.copy)
	st = &sendState{
		State: stateSubmitting, Fingerprint: fp(), MessageID: id.messageID, Key: id.key, ContentHash: id.contentHash,
		Date: out.date, Records: req.Records, Created: now.UTC(), Updated: now.UTC(),
	}
	log = log.With("message_id", st.MessageID)
	if err := s.begin(account, idem, st, out.copy); err != nil {
		return nil, fmt.Errorf("record send: %w", err)
	}
	reply, maybeSent, err := s.submit(ctx, acct, out)
	if err != nil {
		if maybeSent {
			log.Warn("smtp outcome unknown; the send stays unresolved", "err", err)
			return nil, &OutcomeUnknownError{MessageID: st.MessageID, Err: err}
		}
		if aerr := s.abandon(account, idem); aerr != nil {
			// The state stays submitting: a retry answers "outcome
			// unknown" rather than risk a second copy.
			log.Error("could not clear a refused send", "err", aerr)
		}
		log.Warn("smtp refused the message; nothing was sent", "err", err)
		return nil, err
	}
	st.SMTPReply = reply
	if err := s.markSubmitted(account, idem, st); err != nil {
		// Sent but not recorded: a retry finds submitting and looks in
		// Sent for the Message-ID rather than send again.
		log.Error("message sent but its state could not be recorded", "err", err)
		return nil, &SentCopyError{MessageID: st.MessageID, Err: fmt.Errorf("record submission: %w", err)}
	}
	log.Info("message submitted", "recipients", len(out.rcpts), "smtp_reply", reply)
	return s.finish(ctx, acct, idem, st, out.copy, false, log)
}

// resume answers a request whose key has a state.
func (s *Sender) resume(ctx context.Context, acct *config.Account, idem string, st *sendState, copy []byte, log *slog.Logger) (*Result, error) {
	log = log.With("message_id", st.MessageID, "state", st.State)
	var res *Result
	var err error
	switch st.State {
	case stateDone:
		if st.Result == nil {
			return nil, fmt.Errorf("send state for %q is done without a result", idem)
		}
		r := *st.Result
		res = &r
	case stateSubmitted:
		log.Info("finishing a send submitted earlier")
		res, err = s.finish(ctx, acct, idem, st, copy, true, log)
	case stateSubmitting:
		res, err = s.recoverSubmitting(ctx, acct, idem, st, log)
	default:
		return nil, fmt.Errorf("send state for %q is %q, which this version does not know", idem, st.State)
	}
	if err != nil {
		return nil, err
	}
	res.IdempotentReplay = true
	return res, nil
}

// finish files the Sent copy (unless the server does that itself) and
// records the result. resumed says an earlier attempt may have appended
// already; the folder is searched first so a retry never files two copies.
func (s *Sender) finish(ctx context.Context, acct *config.Account, idem string, st *sendState, copy []byte, resumed bool, log *slog.Logger) (*Result, error) {
	res := &Result{MessageID: st.MessageID, Key: st.Key}
	var prov *sink.Provenance
	if acct.AppendToSent() {
		if copy == nil {
			return nil, &SentCopyError{MessageID: st.MessageID, Err: errors.New("the stored copy of the message is missing")}
		}
		var ref copyRef
		err := s.withIMAP(ctx, acct, func(conn *imapconn.Conn) error {
			folder, err := s.sentFolder(ctx, conn, acct)
			if err != nil {
				return err
			}
			if resumed {
				found, ok, err := s.findCopy(ctx, conn, folder, st.MessageID)
				if err != nil {
					return err
				}
				if ok {
					ref = found
					return nil
				}
			}
			ref, err = s.appendCopy(ctx, conn, folder, st.MessageID, copy, st.Date)
			return err
		})
		if err != nil {
			log.Warn("message sent but its Sent copy failed", "err", err)
			return nil, &SentCopyError{MessageID: st.MessageID, Err: err}
		}
		res.SentFolder, res.UID, res.UIDValidity = ref.folder, ref.uid, ref.uidValidity
		if ref.uid != 0 {
			prov = &sink.Provenance{Account: acct.ID, Folder: ref.folder, UIDValidity: ref.uidValidity, UID: ref.uid}
		}
	} else {
		// The server files its own copy; the folder worker adds its
		// provenance when it syncs Sent. A provenance without a UID would
		// keep the ledger from ever seeing the last copy expunged.
		res.SentFolder = acct.SMTP.SentFolder
	}
	st.Result = res
	if err := s.complete(acct.ID, idem, st, prov); err != nil {
		return nil, &SentCopyError{MessageID: st.MessageID, Err: fmt.Errorf("record result: %w", err)}
	}
	log.Info("message sent", "sent_folder", res.SentFolder, "uid", res.UID, "key", res.Key)
	r := *res
	return &r, nil
}

// recoverSubmitting resolves a send interrupted after submission began:
// if the Message-ID is in the Sent folder the mail went out and the send
// is finished from that copy; otherwise the outcome is unknown.
func (s *Sender) recoverSubmitting(ctx context.Context, acct *config.Account, idem string, st *sendState, log *slog.Logger) (*Result, error) {
	var ref copyRef
	var found bool
	err := s.withIMAP(ctx, acct, func(conn *imapconn.Conn) error {
		folder, err := s.sentFolder(ctx, conn, acct)
		if err != nil {
			return err
		}
		ref, found, err = s.findCopy(ctx, conn, folder, st.MessageID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("check the Sent folder for an interrupted send: %w", err)
	}
	if !found {
		log.Warn("interrupted send not found in Sent; outcome unknown", "folder", ref.folder)
		return nil, &OutcomeUnknownError{MessageID: st.MessageID, Folder: ref.folder}
	}
	res := &Result{MessageID: st.MessageID, Key: st.Key, SentFolder: ref.folder, UID: ref.uid, UIDValidity: ref.uidValidity}
	st.Result = res
	prov := &sink.Provenance{Account: acct.ID, Folder: ref.folder, UIDValidity: ref.uidValidity, UID: ref.uid}
	if err := s.complete(acct.ID, idem, st, prov); err != nil {
		return nil, fmt.Errorf("record recovered send: %w", err)
	}
	log.Info("interrupted send found in Sent; marked done", "folder", ref.folder, "uid", ref.uid)
	r := *res
	return &r, nil
}

// Close refuses new sends (ErrClosed) and waits until those in progress
// have returned, or ctx ends. Call it before closing the store. A send
// cut short by the caller's cancelling its context stays in the state it
// reached and is resolved by its next retry.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.active == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
	}
	done := s.drained
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("outbound: sends still in progress: %w", ctx.Err())
	}
}

func (s *Sender) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active++
	return true
}

func (s *Sender) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// acquire marks a state key as being handled; ok is false if it already is.
func (s *Sender) acquire(key string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight[key] {
		return nil, false
	}
	s.inFlight[key] = true
	return func() {
		s.mu.Lock()
		delete(s.inFlight, key)
		s.mu.Unlock()
	}, true
}

// NewIMAPDialer returns a DialFunc like the sync workers': the account's
// host, TLS and CA, commandTimeout (zero means imapconn's default), and
// auth from the hook (nil means password login).
func NewIMAPDialer(commandTimeout time.Duration, auth func(acct *config.Account) (imapconn.Authenticator, error), log *slog.Logger) DialFunc {
	return func(ctx context.Context, acct *config.Account) (*imapconn.Conn, error) {
		var a imapconn.Authenticator = imapconn.Password(acct.Password)
		if auth != nil {
			var err error
			if a, err = auth(acct); err != nil {
				return nil, err
			}
		}
		var l *slog.Logger
		if log != nil {
			l = log.With("account", acct.ID)
		}
		return imapconn.Dial(ctx, imapconn.Options{
			Host: acct.Host, Port: acct.Port, TLS: acct.TLS, CAFile: acct.CAFile,
			Username: acct.Username, Auth: a, CommandTimeout: commandTimeout, Logger: l,
		})
	}
}
