package oauth

import (
	"context"
	"errors"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/oauth/oauthtest"
)

// mgrEnv is a manager over a fresh state file and fake IdP.
type mgrEnv struct {
	idp   *oauthtest.IdP
	clock *fakeClock
	logs  *logBuffer
	reg   *prometheus.Registry
	cfg   *config.Config
	st    *store.Store
	m     *Manager
}

func newMgrEnv(t *testing.T, idpOpts oauthtest.Options, accts ...acctSpec) *mgrEnv {
	t.Helper()
	e := &mgrEnv{idp: oauthtest.Start(t, idpOpts), clock: newClock(), logs: &logBuffer{}, reg: prometheus.NewRegistry()}
	e.cfg = testConfig(t, t.TempDir(), e.idp, 1, accts...)
	e.st = openStore(t, e.cfg)
	for _, a := range accts {
		if !a.password && !a.noLogin {
			loginAs(t, e.cfg, e.st, e.idp, a.id, a.user)
		}
	}
	e.m = e.newManager(t, e.reg)
	return e
}

// newManager starts a manager over the env's state file, as a daemon
// (re)start does; it is closed when the test ends.
func (e *mgrEnv) newManager(t *testing.T, reg prometheus.Registerer) *Manager {
	t.Helper()
	m, err := New(e.cfg, Options{Store: e.st, Logger: newTestLogger(e.logs), Registerer: reg, Now: e.clock.Now,
		RetryMin: time.Second, RetryMax: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func (e *mgrEnv) token(t *testing.T, id string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return e.m.AccessToken(ctx, id)
}

func TestCachedTokenNeedsNoRequest(t *testing.T) {
	e := newMgrEnv(t, oauthtest.Options{}, acctSpec{id: "sales", user: "alice"})
	before := e.idp.RefreshRequests("alice")
	a, err := e.token(t, "sales")
	if err != nil || a == "" {
		t.Fatalf("AccessToken() = %q, %v", a, err)
	}
	b, _ := e.token(t, "sales")
	if a != b {
		t.Fatal("second call returned another token without need")
	}
	if got := e.idp.RefreshRequests("alice"); got != before {
		t.Fatalf("refresh requests = %d, want %d (the login's token is still fresh)", got, before)
	}
}

func TestRefreshAheadOfExpiryRotatesAndPersists(t *testing.T) {
	e := newMgrEnv(t, oauthtest.Options{}, acctSpec{id: "sales", user: "alice"})
	old, _ := e.token(t, "sales")
	// 56 minutes into a 1-hour token: inside the 5-minute window.
	e.clock.Add(56 * time.Minute)
	before := e.idp.RefreshRequests("alice")
	var wg stdsync.WaitGroup
	toks := make([]string, 20)
	for i := range toks {
		wg.Add(1)
		go func() { defer wg.Done(); toks[i], _ = e.token(t, "sales") }()
	}
	wg.Wait()
	if got := e.idp.RefreshRequests("alice") - before; got != 1 {
		t.Fatalf("20 concurrent callers made %d refresh requests, want 1", got)
	}
	for _, tok := range toks {
		if tok == old || tok != toks[0] {
			t.Fatalf("callers got %q..., want one new token", tok[:8])
		}
	}
	// The rotated refresh token is in the state file: a new manager (a
	// restart) refreshes with it; the old one is dead at the IdP.
	if got := metricValue(t, e.reg, "mailsync_oauth_refresh_total", "sales", "ok"); got != 1 {
		t.Fatalf("refresh_total{result=ok} = %v, want 1", got)
	}
	e.clock.Add(56 * time.Minute)
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := e.newManager(t, nil)
	if tok, err := m2.AccessToken(t.Context(), "sales"); err != nil || tok == toks[0] {
		t.Fatalf("after restart AccessToken() = %v, want a new token from the rotated refresh token", err)
	}
}

func TestRevokedRefreshTokenStopsAfterMaxAttempts(t *testing.T) {
	e := newMgrEnv(t, oauthtest.Options{}, acctSpec{id: "sales", user: "alice"}, acctSpec{id: "support", user: "bob"})
	e.idp.RevokeRefreshTokens("alice")
	e.clock.Add(61 * time.Minute) // alice's token expired
	base := e.idp.RefreshRequests("alice")
	var last error
	for i := range 20 {
		_, last = e.token(t, "sales")
		if errors.Is(last, ErrReauthNeeded) {
			break
		}
		var re *RefreshError
		if !errors.As(last, &re) || imapconn.IsAuthFailure(last) {
			t.Fatalf("call %d: error = %v, want a transient *RefreshError", i, last)
		}
		// Calls inside the backoff reach nobody.
		n := e.idp.RefreshRequests("alice")
		if _, err := e.token(t, "sales"); err == nil || e.idp.RefreshRequests("alice") != n {
			t.Fatal("a call during backoff reached the IdP")
		}
		e.clock.Add(5 * time.Second)
	}
	if !errors.Is(last, ErrReauthNeeded) {
		t.Fatalf("error = %v, want ErrReauthNeeded", last)
	}
	if got, want := last.Error(), "OAuth2 refresh token revoked or expired; run: mailsync auth login --account sales"; got != want {
		t.Fatalf("error text = %q, want %q", got, want)
	}
	if !imapconn.IsAuthFailure(last) {
		t.Fatal("IsAuthFailure(reauth error) = false")
	}
	if got := e.idp.RefreshRequests("alice") - base; got != DefaultMaxAttempts {
		t.Fatalf("refresh requests = %d, want %d", got, DefaultMaxAttempts)
	}
	// No storm afterwards, however often and however late it is asked.
	for range 10 {
		e.clock.Add(time.Hour)
		if _, err := e.token(t, "sales"); !errors.Is(err, ErrReauthNeeded) {
			t.Fatalf("error = %v, want ErrReauthNeeded", err)
		}
	}
	if got := e.idp.RefreshRequests("alice") - base; got != DefaultMaxAttempts {
		t.Fatalf("refresh requests after reauth = %d, want %d", got, DefaultMaxAttempts)
	}
	// The other account is unaffected.
	if _, err := e.token(t, "support"); err != nil {
		t.Fatalf("support: %v", err)
	}
	// One log line per state change, a metric.
	if got := e.logs.count("needs a new login"); got != 1 {
		t.Fatalf("%d 'needs a new login' log lines, want 1:\n%s", got, e.logs)
	}
	if got := e.logs.count("refresh failing"); got != 1 {
		t.Fatalf("%d 'refresh failing' log lines, want 1", got)
	}
	if got := metricValue(t, e.reg, "mailsync_oauth_refresh_total", "sales", "invalid_grant"); got != DefaultMaxAttempts {
		t.Fatalf("refresh_total{invalid_grant} = %v", got)
	}
	if got := metricValue(t, e.reg, "mailsync_oauth_reauth_needed", "sales", ""); got != 1 {
		t.Fatalf("reauth_needed{sales} = %v, want 1", got)
	}
	if got := metricValue(t, e.reg, "mailsync_oauth_reauth_needed", "support", ""); got != 0 {
		t.Fatalf("reauth_needed{support} = %v, want 0", got)
	}
	if got := metricValue(t, e.reg, "mailsync_oauth_token_expiry_seconds", "support", ""); got <= 0 {
		t.Fatalf("token_expiry_seconds{support} = %v, want > 0", got)
	}
	st := e.m.Status()
	if st[0].Account != "sales" || st[0].State != StateReauthNeeded || st[1].State != StateOK {
		t.Fatalf("Status() = %+v", st)
	}

	// A restart remembers: no request to the IdP.
	_ = e.m.Close()
	m2 := e.newManager(t, nil)
	if _, err := m2.AccessToken(t.Context(), "sales"); !errors.Is(err, ErrReauthNeeded) {
		t.Fatalf("after restart: error = %v, want ErrReauthNeeded", err)
	}
	if got := e.idp.RefreshRequests("alice") - base; got != DefaultMaxAttempts {
		t.Fatalf("refresh requests after restart = %d, want %d", got, DefaultMaxAttempts)
	}
	// A reload (Reset) tries once more.
	m2.Reset("sales")
	if _, err := m2.AccessToken(t.Context(), "sales"); err == nil {
		t.Fatal("revoked token worked after Reset")
	}
	if got := e.idp.RefreshRequests("alice") - base; got != DefaultMaxAttempts+1 {
		t.Fatalf("refresh requests after Reset = %d, want %d", got, DefaultMaxAttempts+1)
	}
}

func TestNetworkFailureIsTransientAndBacksOff(t *testing.T) {
	e := newMgrEnv(t, oauthtest.Options{}, acctSpec{id: "sales", user: "alice"})
	tok, _ := e.token(t, "sales")
	// Unreachable IdP: point the provider at a closed port.
	a := e.m.accounts["sales"]
	a.prov.oc.Endpoint.TokenURL = "http://127.0.0.1:1/token"
	e.clock.Add(56 * time.Minute)
	got, err := e.token(t, "sales")
	if err != nil || got != tok {
		t.Fatalf("inside the window with the IdP down: AccessToken() = %v; want the still-valid token", err)
	}
	e.clock.Add(5 * time.Minute) // expired now
	_, err = e.token(t, "sales")
	var re *RefreshError
	if !errors.As(err, &re) || imapconn.IsAuthFailure(err) {
		t.Fatalf("error = %v, want transient *RefreshError", err)
	}
	if n := metricValue(t, e.reg, "mailsync_oauth_refresh_total", "sales", "network"); n < 1 {
		t.Fatalf("refresh_total{network} = %v", n)
	}
	if s := e.m.Status()[0]; s.State != StateExpiring {
		t.Fatalf("Status().State = %q, want %q", s.State, StateExpiring)
	}
}

func TestMissingTokenAsksNobody(t *testing.T) {
	e := newMgrEnv(t, oauthtest.Options{}, acctSpec{id: "sales", user: "alice", noLogin: true})
	_, err := e.token(t, "sales")
	if !errors.Is(err, ErrNoToken) || !imapconn.IsAuthFailure(err) {
		t.Fatalf("error = %v, want ErrNoToken auth failure", err)
	}
	if !strings.Contains(err.Error(), "run: mailsync auth login --account sales") {
		t.Fatalf("error %q does not say what to run", err)
	}
	if n := e.idp.Grants(oauthtest.GrantRefreshToken); n != 0 {
		t.Fatalf("%d refresh requests for an account without a token", n)
	}
}

func TestClientCredentials(t *testing.T) {
	t.Setenv("TEST_APP_SECRET", "app-secret")
	e := newMgrEnv(t, oauthtest.Options{ClientSecret: "app-secret", AppUser: "alice"},
		acctSpec{id: "app", user: "alice", noLogin: true, extra: "grant: client_credentials\n      client_secret_env: TEST_APP_SECRET"})
	a, err := e.token(t, "app")
	if err != nil || a == "" {
		t.Fatalf("AccessToken() = %v", err)
	}
	if n := e.idp.Grants(oauthtest.GrantClientCredentials); n != 1 {
		t.Fatalf("client_credentials requests = %d, want 1", n)
	}
	e.clock.Add(59 * time.Minute)
	if b, err := e.token(t, "app"); err != nil || b == a {
		t.Fatalf("near expiry: AccessToken() = %v, want a new token", err)
	}
	if s := e.m.Status()[0]; s.State != StateOK || s.Grant != "client_credentials" {
		t.Fatalf("Status() = %+v", s)
	}
}

func TestClientRejectedIsAuthFailure(t *testing.T) {
	e := newMgrEnv(t, oauthtest.Options{}, acctSpec{id: "sales", user: "alice"})
	e.m.accounts["sales"].prov.oc.ClientID = "someone-else"
	e.clock.Add(61 * time.Minute)
	_, err := e.token(t, "sales")
	if !errors.Is(err, ErrClientRejected) || !imapconn.IsAuthFailure(err) {
		t.Fatalf("error = %v, want ErrClientRejected auth failure", err)
	}
	if s := e.m.Status()[0]; s.State != StateClientRejected {
		t.Fatalf("Status().State = %q", s.State)
	}
}

func TestTokenContextCancelled(t *testing.T) {
	e := newMgrEnv(t, oauthtest.Options{}, acctSpec{id: "sales", user: "alice"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.clock.Add(61 * time.Minute)
	if _, err := e.m.AccessToken(ctx, "sales"); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

// metricValue gathers reg and returns the value of the series name with
// the account label (and result label, if given); it fails if absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name, account, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "account" && l.GetValue() != account || l.GetName() == "result" && l.GetValue() != result {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{account=%q,result=%q} not found", name, account, result)
	return 0
}

// BenchmarkAccessTokenCached is the per-dial cost when no refresh is due.
func BenchmarkAccessTokenCached(b *testing.B) {
	idp := oauthtest.Start(b, oauthtest.Options{})
	cfg := testConfig(b, b.TempDir(), idp, 1, acctSpec{id: "sales", user: "alice"})
	st := openStore(b, cfg)
	loginAs(b, cfg, st, idp, "sales", "alice")
	m, err := New(cfg, Options{Store: st, Logger: newTestLogger(&logBuffer{})})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.AccessToken(ctx, "sales"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
