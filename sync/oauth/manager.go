package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
)

// Defaults for zero Options fields.
const (
	DefaultMaxAttempts    = 3
	DefaultRetryMin       = 2 * time.Second
	DefaultRetryMax       = 5 * time.Minute
	DefaultRefreshTimeout = 30 * time.Second
	// DefaultRefreshBefore is the longest time before expiry at which an
	// access token is renewed; shorter-lived tokens renew at 80% of their
	// lifetime.
	DefaultRefreshBefore = 5 * time.Minute
)

// Options configure a Manager.
type Options struct {
	// Store is the open state file that keeps the tokens. Required when
	// the config has oauth2 accounts.
	Store *store.Store
	// Logger receives one line per token state change; slog.Default() if nil.
	Logger *slog.Logger
	// Registerer receives the mailsync_oauth_* metrics; nil keeps them
	// private.
	Registerer prometheus.Registerer
	// HTTPClient talks to the identity providers; nil means one with
	// DefaultHTTPTimeout.
	HTTPClient *http.Client
	// Now replaces the clock in tests.
	Now func() time.Time
	// MaxAttempts is how many invalid_grant answers in a row put an
	// account into "reauth needed"; default 3.
	MaxAttempts int
	// RetryMin and RetryMax bound the backoff between failed refreshes;
	// at most one request per step reaches the identity provider.
	RetryMin, RetryMax time.Duration
	// RefreshTimeout bounds one refresh; default 30 s.
	RefreshTimeout time.Duration
}

// Manager keeps the OAuth2 tokens of every oauth2 account: loads them
// from the state file, refreshes them ahead of expiry (one refresh at a
// time per account, however many folder workers ask), persists rotated
// refresh tokens, and stops asking the identity provider once a refresh
// token is dead. It is safe for concurrent use.
type Manager struct {
	opts     Options
	log      *slog.Logger
	vault    *Vault
	accounts map[string]*tokenAccount
	ids      []string // sorted
	metrics  *metrics

	ctx    context.Context // ends at Close; bounds refreshes in flight
	cancel context.CancelFunc
	wg     stdsync.WaitGroup
}

// Account states inside the manager.
const (
	stateOK         = iota
	stateFailing    // refreshes fail and are retried with backoff
	stateReauth     // ErrReauthNeeded: no more requests until login or Reset
	stateMissing    // nothing stored
	stateRejected   // the token endpoint refuses the client; retried with backoff
	stateUnreadable // the stored token cannot be decrypted; until Reset
)

// tokenAccount is one account's token state.
type tokenAccount struct {
	id     string
	acct   config.Account
	prov   *Provider
	client string // clientID(acct)
	log    *slog.Logger

	mu           stdsync.Mutex
	loaded       bool
	ignoreStale  bool // Reset: a persisted reauth mark no longer counts
	resetPending bool // Reset during a refresh, applied when it ends
	rec          *record
	dirty        bool          // rec holds a rotated refresh token not yet saved
	flight       chan struct{} // closed when the refresh in progress ends
	state        int
	fails        int // consecutive failed refreshes
	grantFails   int // consecutive invalid_grant answers
	nextTry      time.Time
	lastErr      error
}

// New returns a manager for the oauth2 accounts of cfg. It reads every
// client secret and the token key now, so a missing one stops the daemon
// at start with the key that names it. With no oauth2 account it needs no
// store and does nothing.
func New(cfg *config.Config, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(DefaultRetryMax, opts.RetryMin)
	}
	if opts.RefreshTimeout <= 0 {
		opts.RefreshTimeout = DefaultRefreshTimeout
	}
	m := &Manager{opts: opts, log: opts.Logger, accounts: map[string]*tokenAccount{}}
	for i := range cfg.Accounts {
		acct := cfg.Accounts[i]
		if acct.Auth != "oauth2" {
			continue
		}
		prov, err := NewProvider(&acct, opts.HTTPClient)
		if err != nil {
			return nil, err
		}
		m.accounts[acct.ID] = &tokenAccount{
			id: acct.ID, acct: acct, prov: prov, client: clientID(&acct),
			log: opts.Logger.With("account", acct.ID),
		}
		m.ids = append(m.ids, acct.ID)
	}
	slices.Sort(m.ids)
	if len(m.ids) > 0 {
		if opts.Store == nil {
			return nil, errors.New("oauth: a state file is required for oauth2 accounts")
		}
		v, err := OpenVault(opts.Store, &cfg.Tokens)
		if err != nil {
			if strings.HasPrefix(err.Error(), "tokens.") {
				return nil, err // names its key already
			}
			return nil, fmt.Errorf("tokens: %w", err)
		}
		if v.Plaintext() {
			m.log.Warn("OAuth2 tokens are stored unencrypted (tokens.allow_plaintext); set tokens.key_file to encrypt them")
		}
		m.vault = v
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	var err error
	if m.metrics, err = newMetrics(m, opts.Registerer); err != nil {
		m.cancel()
		return nil, err
	}
	return m, nil
}

// Close ends refreshes in flight, waits for them, saves rotated refresh
// tokens that could not be saved before, and unregisters the metrics.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	var errs []error
	for _, id := range m.ids {
		a := m.accounts[id]
		a.mu.Lock()
		rec, dirty := a.rec, a.dirty
		a.mu.Unlock()
		if dirty {
			errs = append(errs, m.vault.save(a.id, rec))
		}
	}
	m.metrics.unregister()
	return errors.Join(errs...)
}

// Reset forgets that the account needs a new login and reloads its token
// from the state file at the next use: for a config reload, or after
// `mailsync auth login` wrote a new token. Unknown ids are ignored.
func (m *Manager) Reset(id string) {
	a := m.accounts[id]
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.flight != nil {
		a.resetPending = true // applied when the refresh ends
		return
	}
	a.resetLocked()
}

// resetLocked forgets the in-memory state so the next use reloads it.
func (a *tokenAccount) resetLocked() {
	if a.dirty {
		// A rotated refresh token only memory holds is worth more than a
		// reload: keep it.
		a.state, a.fails, a.grantFails, a.nextTry, a.lastErr = stateOK, 0, 0, time.Time{}, nil
		return
	}
	a.loaded, a.ignoreStale, a.rec, a.resetPending = false, true, nil, false
	a.state, a.fails, a.grantFails, a.nextTry, a.lastErr = stateOK, 0, 0, time.Time{}, nil
}

// AccessToken returns a valid access token for the account, refreshing it
// first when it is within the refresh window. Errors: *TokenError when a
// person must act (imapconn.IsAuthFailure is true for it), *RefreshError
// when a refresh failed and is retried later, ctx's error.
func (m *Manager) AccessToken(ctx context.Context, id string) (string, error) {
	a := m.accounts[id]
	if a == nil {
		return "", fmt.Errorf("account %s is not an oauth2 account", id)
	}
	tok, _, err := m.token(ctx, a)
	return tok, err
}

// token returns an access token and whether it was fetched by this call's
// refresh (rather than taken from the cache).
func (m *Manager) token(ctx context.Context, a *tokenAccount) (tok string, fresh bool, err error) {
	sawFlight := false
	// Each turn either returns or waits for a refresh to end, after which
	// the state has an answer; four turns cover waiting for someone
	// else's refresh and then our own.
	for range 4 {
		a.mu.Lock()
		if !a.loaded {
			if err := m.loadLocked(a); err != nil {
				a.mu.Unlock()
				return "", false, err
			}
		}
		now := m.opts.Now()
		switch {
		case a.state == stateReauth, a.state == stateMissing, a.state == stateUnreadable:
			err := a.lastErr
			a.mu.Unlock()
			return "", false, err
		case a.rec != nil && a.rec.Access != "" && !m.needsRefresh(a.rec, now):
			tok := a.rec.Access
			a.mu.Unlock()
			return tok, sawFlight, nil
		case a.flight == nil && now.Before(a.nextTry):
			// Backing off: a token that still works is better than none.
			if a.rec != nil && a.rec.Access != "" && (a.rec.Expiry.IsZero() || now.Before(a.rec.Expiry)) {
				tok := a.rec.Access
				a.mu.Unlock()
				return tok, false, nil
			}
			err := a.lastErr
			a.mu.Unlock()
			return "", false, err
		case a.flight == nil && m.ctx.Err() != nil:
			a.mu.Unlock()
			return "", false, fmt.Errorf("account %s: OAuth2 token manager is closed", a.id)
		case a.flight == nil && ctx.Err() != nil:
			// A caller that has given up starts no refresh (and must not
			// win a race against its own cancellation).
			a.mu.Unlock()
			return "", false, context.Cause(ctx)
		case a.flight == nil:
			a.flight = make(chan struct{})
			rt := ""
			if a.rec != nil {
				rt = a.rec.Refresh
			}
			m.wg.Add(1)
			go func() { defer m.wg.Done(); m.refresh(a, rt) }()
		}
		ch := a.flight
		a.mu.Unlock()
		select {
		case <-ch:
			sawFlight = true
		case <-ctx.Done():
			return "", false, context.Cause(ctx)
		}
	}
	return "", false, fmt.Errorf("account %s: OAuth2 token still being refreshed", a.id)
}

// needsRefresh reports whether r's access token is inside the refresh
// window: DefaultRefreshBefore before expiry, or the last 20% of its
// lifetime when that is shorter, so a 1-hour token renews 5 minutes early
// and a 60-second one 12 seconds early.
func (m *Manager) needsRefresh(r *record, now time.Time) bool {
	if r.Expiry.IsZero() {
		return false
	}
	window := DefaultRefreshBefore
	if life := r.Expiry.Sub(r.Obtained); !r.Obtained.IsZero() && life > 0 && life/5 < window {
		window = life / 5
	}
	return !now.Before(r.Expiry.Add(-window))
}

// loadLocked reads the account's record from the state file.
func (m *Manager) loadLocked(a *tokenAccount) error {
	rec, err := m.vault.load(a.id)
	if err != nil && !errors.Is(err, ErrUnreadable) {
		return err // the store: transient
	}
	a.loaded = true
	prev := a.state
	switch {
	case err != nil:
		a.state, a.lastErr = stateUnreadable, &TokenError{Account: a.id, Err: ErrUnreadable, Detail: err.Error()}
	case (rec == nil || rec.Refresh == "") && a.acct.OAuth2.EffectiveGrant() == config.GrantRefreshToken:
		a.state, a.lastErr = stateMissing, &TokenError{Account: a.id, Err: ErrNoToken}
	case rec != nil && rec.Reauth != "" && rec.Client == a.client && !a.ignoreStale:
		a.state, a.lastErr = stateReauth, &TokenError{Account: a.id, Err: ErrReauthNeeded}
	default:
		a.state = stateOK
	}
	a.rec = rec
	m.noteState(a, prev)
	return nil
}

// refresh runs one request to the token endpoint for a and publishes the
// outcome. It owns a.flight and closes it.
func (m *Manager) refresh(a *tokenAccount, refreshToken string) {
	ctx, cancel := context.WithTimeout(m.ctx, m.opts.RefreshTimeout)
	defer cancel()
	g, err := a.prov.fetch(ctx, refreshToken)
	result, clientRejected := classify(err)
	if m.ctx.Err() != nil {
		result = "" // shutting down: not the provider's doing
	}
	now := m.opts.Now()

	var saved *record
	var saveErr error
	if err == nil {
		a.mu.Lock()
		base := a.rec
		a.mu.Unlock()
		// Only the flight changes rec, so base is current; saving before
		// publishing keeps the lock free during the fsync.
		saved = base.withGrant(g, a.client, now)
		saveErr = m.vault.save(a.id, saved)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	defer func() {
		close(a.flight)
		a.flight = nil
		if a.resetPending {
			a.resetLocked()
		}
	}()
	if result != "" {
		m.metrics.refreshed(a.id, result)
	}
	prev := a.state
	if err == nil {
		a.rec, a.dirty = saved, saveErr != nil
		a.state, a.fails, a.grantFails, a.nextTry, a.lastErr = stateOK, 0, 0, time.Time{}, nil
		if saveErr != nil {
			a.log.Error("cannot save the refreshed OAuth2 token; it is kept in memory and saved again at the next refresh or at shutdown", "error", saveErr)
		}
		a.log.Debug("OAuth2 token refreshed", "expiry", saved.Expiry)
		m.noteState(a, prev)
		return
	}
	if result == "" {
		a.lastErr = fmt.Errorf("account %s: OAuth2 refresh cancelled: %w", a.id, err)
		return
	}
	a.fails++
	d := m.opts.RetryMin << min(a.fails-1, 20)
	if d > m.opts.RetryMax || d <= 0 {
		d = m.opts.RetryMax
	}
	a.nextTry = now.Add(d/2 + rand.N(d/2+1)) // jitter: accounts sharing a provider spread out
	switch {
	case result == resultInvalidGrant:
		a.grantFails++
		if a.grantFails >= m.opts.MaxAttempts {
			m.markReauthLocked(a, err)
			break
		}
		a.state, a.lastErr = stateFailing, &RefreshError{Account: a.id, Attempt: a.grantFails, MaxAttempts: m.opts.MaxAttempts, RetryAt: a.nextTry, Err: err}
	case clientRejected:
		a.state, a.lastErr = stateRejected, &TokenError{Account: a.id, Err: ErrClientRejected, Detail: err.Error()}
	default:
		a.state, a.lastErr = stateFailing, &RefreshError{Account: a.id, Attempt: a.fails, MaxAttempts: m.opts.MaxAttempts, RetryAt: a.nextTry, Err: err}
	}
	m.noteState(a, prev)
}

// markReauthLocked stops refreshing a and records why in the state file,
// so `auth status` and a restarted daemon know without asking the
// provider again.
func (m *Manager) markReauthLocked(a *tokenAccount, cause error) {
	a.state, a.lastErr = stateReauth, &TokenError{Account: a.id, Err: ErrReauthNeeded}
	a.ignoreStale = false
	if a.rec == nil {
		return
	}
	rec := *a.rec
	rec.Reauth = fmt.Sprintf("refresh refused %d times: %v", a.grantFails, cause)
	rec.Access, rec.Expiry = "", time.Time{}
	a.rec = &rec
	if err := m.vault.save(a.id, &rec); err != nil {
		a.log.Warn("cannot record 'reauth needed' in the state file", "error", err)
	}
}

// invalidate drops tok from the cache after a server refused it, so the
// next use refreshes.
func (m *Manager) invalidate(a *tokenAccount, tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rec != nil && a.rec.Access == tok {
		rec := *a.rec
		rec.Access, rec.Expiry = "", time.Time{}
		a.rec = &rec
	}
}

// noteState logs a change of a's state, once per change.
func (m *Manager) noteState(a *tokenAccount, prev int) {
	if a.state == prev {
		return
	}
	switch a.state {
	case stateOK:
		if prev == stateFailing || prev == stateRejected {
			a.log.Info("OAuth2 token refresh works again")
		}
	case stateFailing:
		a.log.Warn("OAuth2 token refresh failing; retrying with backoff", "error", a.lastErr)
	case stateReauth:
		a.log.Error("OAuth2 account needs a new login; no more refresh attempts until then", "error", a.lastErr)
	case stateMissing:
		a.log.Error("OAuth2 account has no token", "error", a.lastErr)
	case stateRejected:
		a.log.Error("OAuth2 client rejected; retrying with backoff", "error", a.lastErr)
	case stateUnreadable:
		a.log.Error("stored OAuth2 token unreadable", "error", a.lastErr)
	}
}

// Status describes every oauth2 account's token as the running manager
// sees it, sorted by account.
func (m *Manager) Status() []TokenStatus {
	out := make([]TokenStatus, 0, len(m.ids))
	now := m.opts.Now()
	for _, id := range m.ids {
		a := m.accounts[id]
		a.mu.Lock()
		if !a.loaded {
			_ = m.loadLocked(a)
		}
		s := statusOf(&a.acct, a.rec, nil, now)
		switch a.state {
		case stateFailing:
			s.State, s.Detail = StateExpiring, a.lastErr.Error()
		case stateReauth:
			s.State, s.Detail = StateReauthNeeded, a.lastErr.Error()
		case stateRejected:
			s.State, s.Detail = StateClientRejected, a.lastErr.Error()
		case stateUnreadable:
			s.State, s.Detail = StateUnreadable, a.lastErr.Error()
		}
		a.mu.Unlock()
		out = append(out, s)
	}
	return out
}
