package oauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/oauth/oauthtest"
)

// testUsers are the Dovecot accounts; passwords are user+"-pass", as
// testConfig writes them for password accounts.
var testUsers = map[string]string{"alice": "alice-pass", "bob": "bob-pass"}

func testMessage(n int, to, subject string) []byte {
	return fmt.Appendf(nil, "From: Customer <buyer%d@customer.example>\r\nTo: %s@acme.example\r\nSubject: %s\r\n"+
		"Message-ID: <m%d-%s@customer.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nHello %d\r\n", n, to, subject, n, to, n)
}

// imapEnv is a Dovecot that checks tokens with a fake IdP, plus a state
// file and config for accounts on it.
type imapEnv struct {
	idp  *oauthtest.IdP
	srv  *dovecottest.Server
	cfg  *config.Config
	logs *logBuffer
}

func newIMAPEnv(t *testing.T, accts ...acctSpec) *imapEnv {
	t.Helper()
	e := &imapEnv{idp: oauthtest.Start(t, oauthtest.Options{}), logs: &logBuffer{}}
	e.srv = dovecottest.Start(t, dovecottest.WithUsers(testUsers), dovecottest.WithOAuth2(e.idp.IntrospectionURL()))
	e.cfg = testConfig(t, t.TempDir(), e.idp, e.srv.Port(), accts...)
	return e
}

// dial logs acct in through imapconn with the manager's authenticator.
func (e *imapEnv) dial(t *testing.T, m *Manager, id string, trace *logBuffer) (*imapconn.Conn, error) {
	t.Helper()
	acct, _ := e.cfg.Account(id)
	auth, err := m.Authenticator(acct)
	if err != nil {
		t.Fatal(err)
	}
	opts := imapconn.Options{Host: acct.Host, Port: acct.Port, TLS: acct.TLS, Username: acct.Username, Auth: auth,
		CommandTimeout: 20 * time.Second, Logger: newTestLogger(e.logs)}
	if trace != nil {
		opts.Trace = trace
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return imapconn.Dial(ctx, opts)
}

// subjects selects INBOX and fetches every envelope subject.
func subjects(t *testing.T, conn *imapconn.Conn) []string {
	t.Helper()
	var out []string
	err := conn.Do(t.Context(), "fetch", func(c *imapclient.Client) error {
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil || sel.NumMessages == 0 {
			return err
		}
		var all imap.SeqSet
		all.AddRange(1, 0) // 1:*
		msgs, err := c.Fetch(all, &imap.FetchOptions{Envelope: true}).Collect()
		for _, m := range msgs {
			out = append(out, m.Envelope.Subject)
		}
		return err
	})
	if err != nil {
		t.Fatalf("select/fetch: %v", err)
	}
	return out
}

// TestDeviceLoginThenIMAP: a device-code login against the fake IdP is
// stored encrypted, and the stored token logs in to a real Dovecot with
// XOAUTH2, OAUTHBEARER, and the mechanism picked from the capabilities.
func TestDeviceLoginThenIMAP(t *testing.T) {
	e := newIMAPEnv(t,
		acctSpec{id: "xo", user: "alice", noLogin: true, extra: "mechanism: xoauth2"},
		acctSpec{id: "ob", user: "alice", noLogin: true, extra: "mechanism: oauthbearer"},
		acctSpec{id: "auto", user: "alice", noLogin: true})
	e.srv.Append(t, "alice", "INBOX", testMessage(1, "alice", "device login works"))
	st := openStore(t, e.cfg)
	vault, err := OpenVault(st, &e.cfg.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"xo", "ob", "auto"} {
		acct, _ := e.cfg.Account(id)
		prov, err := NewProvider(acct, nil)
		if err != nil {
			t.Fatal(err)
		}
		dc, err := prov.StartDevice(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if dc.UserCode == "" || !strings.HasPrefix(dc.VerificationURI, e.idp.URL()) {
			t.Fatalf("device code = %v", dc)
		}
		e.idp.ApproveAs("alice")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		g, err := prov.WaitDevice(ctx, dc)
		cancel()
		if err != nil {
			t.Fatalf("WaitDevice: %v", err)
		}
		if err := vault.Login(acct, g); err != nil {
			t.Fatal(err)
		}
	}
	m, err := New(e.cfg, Options{Store: st, Logger: newTestLogger(e.logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for id, mech := range map[string]string{"xo": "XOAUTH2", "ob": "OAUTHBEARER", "auto": "OAUTHBEARER"} {
		trace := &logBuffer{}
		conn, err := e.dial(t, m, id, trace)
		if err != nil {
			t.Fatalf("%s: dial: %v", id, err)
		}
		if got := subjects(t, conn); len(got) != 1 || got[0] != "device login works" {
			t.Fatalf("%s: subjects = %q", id, got)
		}
		_ = conn.Logout(t.Context())
		if !strings.Contains(trace.String(), "AUTHENTICATE "+mech) {
			t.Fatalf("%s: trace shows no AUTHENTICATE %s:\n%s", id, mech, trace)
		}
		e.logs.Write([]byte(trace.String()))
	}
	if e.idp.Introspections() < 3 {
		t.Fatalf("Dovecot asked the IdP %d times, want one per login", e.idp.Introspections())
	}
	// bbolt writes pages with pwrite, so the file on disk is current.
	raw := readFile(t, e.cfg.State)
	if !bytes.Contains(raw, []byte(kvPrefix+"auto")) {
		t.Fatal("state file holds no token record; the secrets check would prove nothing")
	}
	assertNoSecrets(t, e.idp, map[string][]byte{"logs and traces": []byte(e.logs.String()), "state file": raw})
}

// TestStaleTokenThenGoodOnRedial: the server refusing a cached access
// token is transient, and the next dial refreshes and gets in on a new
// connection; a token refused right after a refresh is an auth failure.
func TestStaleTokenThenGoodOnRedial(t *testing.T) {
	e := newIMAPEnv(t, acctSpec{id: "sales", user: "alice", extra: "mechanism: xoauth2"},
		acctSpec{id: "wrong", user: "bob", extra: "mechanism: oauthbearer"})
	st := openStore(t, e.cfg)
	loginAs(t, e.cfg, st, e.idp, "sales", "alice")
	// The token is alice's, the account logs in as bob.
	loginAs(t, e.cfg, st, e.idp, "wrong", "alice")
	m, err := New(e.cfg, Options{Store: st, Logger: newTestLogger(e.logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	conn, err := e.dial(t, m, "sales", nil)
	if err != nil {
		t.Fatalf("first dial: %v", err)
	}
	_ = conn.Logout(t.Context())

	e.idp.ExpireAccessTokens("alice")
	_, err = e.dial(t, m, "sales", nil)
	if err == nil || imapconn.IsAuthFailure(err) || !strings.Contains(err.Error(), "cached OAuth2 access token") {
		t.Fatalf("dial with a revoked cached token: error = %v, want a transient stale-token error", err)
	}
	conn, err = e.dial(t, m, "sales", nil)
	if err != nil {
		t.Fatalf("re-dial: %v", err)
	}
	subjects(t, conn) // the new connection is in sync: SELECT and FETCH work
	_ = conn.Logout(t.Context())

	_, err = e.dial(t, m, "wrong", nil)
	if err == nil || imapconn.IsAuthFailure(err) {
		t.Fatalf("first dial with another user's cached token: error = %v, want transient", err)
	}
	_, err = e.dial(t, m, "wrong", nil)
	var ie *imap.Error
	if !imapconn.IsAuthFailure(err) || !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("dial with another user's fresh token: error = %v, want AUTHENTICATIONFAILED auth failure", err)
	}
	if !strings.Contains(err.Error(), "OAUTHBEARER: server refused the token") {
		t.Fatalf("error %q does not carry the server's challenge", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := readFileErr(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefreshBeforeUseAndRestart: near expiry the token is refreshed
// before the login uses it (the old one is already dead at the IdP, and
// the first dial still gets in), the rotated refresh token is saved, and
// a new manager over the same state file (a restart) refreshes with it.
func TestRefreshBeforeUseAndRestart(t *testing.T) {
	e := newIMAPEnv(t, acctSpec{id: "sales", user: "alice"})
	st := openStore(t, e.cfg)
	loginAs(t, e.cfg, st, e.idp, "sales", "alice")
	clock := newClock()
	newManager := func() *Manager {
		m, err := New(e.cfg, Options{Store: st, Logger: newTestLogger(e.logs), Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	dialOK := func(m *Manager, what string) {
		t.Helper()
		conn, err := e.dial(t, m, "sales", nil)
		if err != nil {
			t.Fatalf("%s: dial: %v", what, err)
		}
		subjects(t, conn)
		_ = conn.Logout(t.Context())
	}
	m := newManager()
	dialOK(m, "first login")
	grants := e.idp.RefreshRequests("alice")

	clock.Add(57 * time.Minute)
	e.idp.ExpireAccessTokens("alice")
	dialOK(m, "near expiry")
	if got := e.idp.RefreshRequests("alice") - grants; got != 1 {
		t.Fatalf("refresh requests near expiry = %d, want 1", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: the state file holds the rotated refresh token (the IdP
	// retired the one from the login), and the next refresh uses it.
	clock.Add(57 * time.Minute)
	e.idp.ExpireAccessTokens("alice")
	m = newManager()
	defer m.Close()
	dialOK(m, "after restart")
	if got := e.idp.RefreshRequests("alice") - grants; got != 2 {
		t.Fatalf("refresh requests after restart = %d, want 2", got)
	}
	if s := m.Status()[0]; s.State != StateOK || s.RefreshAge > time.Minute {
		t.Fatalf("status after rotation = %+v, want ok with a fresh refresh token", s)
	}
}
