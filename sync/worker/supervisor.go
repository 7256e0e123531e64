// Package worker runs the sync: a Supervisor owns one account worker per
// configured mailbox; each account worker owns its folder workers, which
// catch up by UID, hold IDLE, and hand matched mail to the sink with the
// cursor advanced only over what the sink acknowledged.
package worker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/sink"
)

// Deps are what the supervisor needs from outside; the caller owns them and
// closes them after Stop.
type Deps struct {
	Store   *store.Store
	Sink    sink.Sink
	Matcher *matcher.Matcher
	Logger  *slog.Logger
	// Registerer receives the Prometheus metrics; nil keeps them private.
	Registerer prometheus.Registerer
	// Authenticator builds the login method of an account; nil means
	// password login from the account's secret source. OAuth2 accounts
	// need one (see package oauth).
	Authenticator func(acct *config.Account) (imapconn.Authenticator, error)
	// Observer, when set, is called once per message after its outcome is
	// committed. It runs on a worker goroutine, one call at a time per
	// folder: keep it quick.
	Observer func(Event)
	// MaxConnections bounds the IMAP connections open at once over all
	// accounts, so they cannot take the descriptors the control socket
	// and admin listener need (see mailsync's fdBudget); a dial beyond it
	// waits for a connection to close. 0 means no bound.
	MaxConnections int
}

// Supervisor runs one worker per account.
type Supervisor struct {
	cfgPtr     atomic.Pointer[config.Config] // replaced on reload
	store      *store.Store
	sink       sink.Sink
	matcherPtr atomic.Pointer[matcher.Matcher] // replaced on reload
	log        *slog.Logger
	metrics    *metrics
	observer   func(Event)
	auth       func(acct *config.Account) (imapconn.Authenticator, error)
	// claims hold a message's key from its hand-off to the sink until its
	// ledger commit, across every account (see claims).
	claims claims
	// lastAccepted is when the sink last acknowledged a message (Unix
	// nanoseconds), from any folder: a message failing alone while this
	// moves is parked (sync.park_after).
	lastAccepted atomic.Int64

	// hardCtx bounds deliveries in flight: a graceful stop cancels the
	// workers' own context first (no new work) and this one only after the
	// grace period, so a batch that reached the sink can be committed.
	hardCtx    context.Context
	hardCancel context.CancelFunc

	// runCtx is the workers' context (set by Start); wg owns the
	// goroutines that are not account workers (backfill jobs).
	runCtx    context.Context
	wg        stdsync.WaitGroup
	mu        stdsync.Mutex
	accounts  map[string]*accountWorker
	backfills map[string]*backfill

	// dialSlots limits the connections being opened at once per server
	// host:port (sync.dial_concurrency): see dialSlot.
	dialMu    stdsync.Mutex
	dialSlots map[string]chan struct{}
	// connBudget holds a token per open IMAP connection (Deps.MaxConnections);
	// nil means unbounded.
	connBudget chan struct{}
}

// New builds a supervisor for cfg. It starts nothing.
func New(cfg *config.Config, deps Deps) (*Supervisor, error) {
	if deps.Store == nil || deps.Sink == nil || deps.Matcher == nil {
		return nil, errors.New("worker: store, sink and matcher are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	hardCtx, hardCancel := context.WithCancel(context.Background())
	s := &Supervisor{
		store: deps.Store, sink: deps.Sink, log: log,
		backfills: map[string]*backfill{},
		metrics:   newMetrics(deps.Registerer),
		observer:  deps.Observer,
		auth:      deps.Authenticator,
		accounts:  map[string]*accountWorker{},
		dialSlots: map[string]chan struct{}{},
		hardCtx:   hardCtx, hardCancel: hardCancel,
	}
	if deps.MaxConnections > 0 {
		s.connBudget = make(chan struct{}, deps.MaxConnections)
	}
	s.matcherPtr.Store(deps.Matcher)
	s.cfgPtr.Store(cfg)
	return s, nil
}

func (s *Supervisor) matcher() *matcher.Matcher { return s.matcherPtr.Load() }

// Config returns the configuration in force (it changes on Reload).
func (s *Supervisor) Config() *config.Config { return s.cfgPtr.Load() }

func (s *Supervisor) conf() *config.Config { return s.cfgPtr.Load() }

// Start starts every account. Workers run until ctx ends or Stop.
func (s *Supervisor) Start(ctx context.Context) {
	s.mu.Lock()
	s.runCtx = ctx
	for _, a := range s.conf().Accounts {
		w := newAccountWorker(s, a)
		s.accounts[a.ID] = w
		w.start(ctx)
	}
	s.mu.Unlock()
	s.resumeBackfills()
	if u, ok := s.sink.(sink.Unlinker); ok {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.pollUnlinks(ctx, u) }()
	}
	s.log.Info("started", "accounts", len(s.conf().Accounts))
}

// Stop stops every account in two phases (as mox does): workers stop
// taking new work at once, deliveries in flight get up to grace to finish
// and commit, then everything is cancelled. It returns when every goroutine
// has ended. What was not committed stays behind the cursor and is
// delivered, once by key, on the next start. Closing hard (a second
// signal) skips the wait.
func (s *Supervisor) Stop(grace time.Duration, hard <-chan struct{}) {
	s.mu.Lock()
	accounts := make([]*accountWorker, 0, len(s.accounts))
	for _, a := range s.accounts {
		accounts = append(accounts, a)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg stdsync.WaitGroup
		for _, a := range accounts {
			wg.Add(1)
			go func() { defer wg.Done(); a.stop() }()
		}
		wg.Wait()
		s.wg.Wait() // backfills end with the workers' context
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("deliveries did not finish within the grace period; cancelling them", "grace", grace)
	case <-hard:
		s.log.Warn("second signal: cancelling deliveries in flight")
	}
	s.hardCancel()
	<-done
}

// Status returns a snapshot of every account, sorted by id.
func (s *Supervisor) Status() []AccountStatus {
	s.mu.Lock()
	accounts := make([]*accountWorker, 0, len(s.accounts))
	for _, a := range s.accounts {
		accounts = append(accounts, a)
	}
	s.mu.Unlock()
	out := make([]AccountStatus, 0, len(accounts))
	for _, a := range accounts {
		out = append(out, a.snapshot())
	}
	slices.SortFunc(out, func(x, y AccountStatus) int {
		if x.Account < y.Account {
			return -1
		}
		if x.Account > y.Account {
			return 1
		}
		return 0
	})
	return out
}

// dialSlot waits for one of the server's dial slots and returns the
// function that gives it back. A slot is held from TCP connect through TLS
// handshake and login: that is the part that costs the server (and us)
// CPU, and that must finish within the dial timeout. Waiting is counted in
// waiting for status. Backoff happens outside the slot, so the retries
// after a server restart stay spread by their jitter.
func (s *Supervisor) dialSlot(ctx context.Context, acct *config.Account, waiting *atomic.Int32) (func(), error) {
	slots := s.dialSlotsOf(acct)
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
	}
	waiting.Add(1)
	s.metrics.dialWaiting.Inc()
	defer func() { waiting.Add(-1); s.metrics.dialWaiting.Dec() }()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tryDialSlot takes a dial slot of acct's server if one is free now.
func (s *Supervisor) tryDialSlot(acct *config.Account) (func(), bool) {
	slots := s.dialSlotsOf(acct)
	if !trySend(slots) {
		return nil, false
	}
	return func() { <-slots }, true
}

func (s *Supervisor) dialSlotsOf(acct *config.Account) chan struct{} {
	key := net.JoinHostPort(acct.Host, strconv.Itoa(acct.Port))
	n := s.conf().Sync.DialConcurrency
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	slots := s.dialSlots[key]
	if slots == nil || cap(slots) != n { // first use, or changed by a reload
		slots = make(chan struct{}, max(n, 1))
		s.dialSlots[key] = slots
	}
	return slots
}

// connSlot takes one token of the descriptor budget for a connection
// about to be opened and returns the function that gives it back; waiting
// is counted as for dialSlot. Without a budget it returns at once.
func (s *Supervisor) connSlot(ctx context.Context, waiting *atomic.Int32) (func(), error) {
	if s.connBudget == nil {
		return func() {}, nil
	}
	select {
	case s.connBudget <- struct{}{}:
		return func() { <-s.connBudget }, nil
	default:
	}
	waiting.Add(1)
	s.metrics.dialWaiting.Inc()
	defer func() { waiting.Add(-1); s.metrics.dialWaiting.Dec() }()
	select {
	case s.connBudget <- struct{}{}:
		return func() { <-s.connBudget }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tryHelperConnSlot takes a token of the descriptor budget for a
// catch-up helper if one is free now and the budget is less than half
// used: where descriptors run short, the folders' own connections need
// them more than a catch-up needs speed.
func (s *Supervisor) tryHelperConnSlot() (func(), bool) {
	if s.connBudget == nil {
		return func() {}, true
	}
	if 2*len(s.connBudget) >= cap(s.connBudget) || !trySend(s.connBudget) {
		return nil, false
	}
	return func() { <-s.connBudget }, true
}

// dial opens an authenticated, deadline-guarded connection for acct.
func (s *Supervisor) dial(ctx context.Context, acct *config.Account, h *imapclient.UnilateralDataHandler) (*imapconn.Conn, error) {
	var auth imapconn.Authenticator = imapconn.Password(acct.Password)
	if s.auth != nil {
		a, err := s.auth(acct)
		if err != nil {
			return nil, err
		}
		auth = a
	}
	opts := imapconn.Options{
		Host: acct.Host, Port: acct.Port, TLS: acct.TLS, CAFile: acct.CAFile,
		Username:              acct.Username,
		Auth:                  auth,
		CommandTimeout:        s.conf().Sync.CommandTimeout,
		MaxLiteralBytes:       s.conf().Sync.MaxBodyBytes + 1<<20,
		UnilateralDataHandler: h,
		Logger:                s.log.With("account", acct.ID),
	}
	if s.conf().Log.TraceIMAP {
		// imapconn redacts LOGIN and AUTHENTICATE before the writer sees them.
		opts.Trace = &traceWriter{log: s.log.With("account", acct.ID)}
	}
	conn, err := imapconn.Dial(ctx, opts)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// bodyTimeout scales the command deadline with the bytes a body fetch
// moves, so a large batch over a slow link is not cut off as "silent".
func (s *Supervisor) bodyTimeout(items []*item) time.Duration {
	var n int64
	for _, it := range items {
		n += it.size
	}
	// Assume a floor of 1 MB/s.
	return s.conf().Sync.CommandTimeout + time.Duration(n/(1<<20))*time.Second
}

// ackGroup is how many messages go to one Deliver call and one commit:
// what the sink asks for (sink.Grouper), else the default.
func (s *Supervisor) ackGroup() int {
	if g, ok := s.sink.(sink.Grouper); ok && g.DeliverGroup() > 0 {
		return g.DeliverGroup()
	}
	return ackGroup
}

func (s *Supervisor) sinkAccepted(at time.Time) { s.lastAccepted.Store(at.UnixNano()) }

// sinkAcceptedSince reports whether the sink acknowledged any message
// after t.
func (s *Supervisor) sinkAcceptedSince(t time.Time) bool {
	return s.lastAccepted.Load() > t.UnixNano()
}
