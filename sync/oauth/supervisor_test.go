package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
	_ "github.com/mailsync/mailsync/sync/sink/jsonl" // registers "jsonl"
	"github.com/mailsync/mailsync/sync/worker"
)

type noDirectory struct{}

func (noDirectory) LookupEmails(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}
func (noDirectory) LookupDomains(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}

// sinkSubjects reads the JSONL sink: subject → deliveries.
func sinkSubjects(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m struct {
			Subject string `json:"subject"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("sink line %q: %v", line, err)
		}
		out[m.Subject]++
	}
	return out
}

// waitUntil polls cond every 50 ms for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSupervisorOAuth2: the real pipeline (worker.Supervisor with
// Deps.Authenticator) logs an OAuth2 account in to Dovecot and delivers
// its mail to the JSONL sink next to a password account. When the IdP
// revokes the refresh token and the connections drop, the account ends in
// "reauth needed" after at most MaxAttempts refresh requests while the
// other account keeps delivering; no token value reaches the logs, the
// sink or the state file.
func TestSupervisorOAuth2(t *testing.T) {
	e := newIMAPEnv(t, acctSpec{id: "sales", user: "alice"}, acctSpec{id: "support", user: "bob", password: true})
	e.srv.Append(t, "alice", "INBOX", testMessage(1, "alice", "for sales via oauth2"))
	e.srv.Append(t, "bob", "INBOX", testMessage(2, "bob", "for support via password"))
	st := openStore(t, e.cfg)
	loginAs(t, e.cfg, st, e.idp, "sales", "alice")

	reg := prometheus.NewRegistry()
	log := newTestLogger(e.logs)
	m, err := New(e.cfg, Options{Store: st, Logger: log, Registerer: reg, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	snk, err := sink.Open(context.Background(), e.cfg.Sink.Type, e.cfg.SinkSettings(), sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	mt, err := matcher.New(e.cfg.Matcher.Config, noDirectory{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := worker.New(e.cfg, worker.Deps{Store: st, Sink: snk, Matcher: mt, Logger: log, Registerer: reg, Authenticator: m.Authenticator})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sup.Start(ctx)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			sup.Stop(5*time.Second, nil)
			_ = snk.Close()
		}
	}
	defer stop()

	sinkPath := filepath.Join(filepath.Dir(e.cfg.State), "messages.jsonl")
	waitUntil(t, 30*time.Second, "both first messages in the sink", func() bool {
		s := sinkSubjects(t, sinkPath)
		return s["for sales via oauth2"] == 1 && s["for support via password"] == 1
	})

	// Revoke alice's grant and kill every connection, so the workers must
	// log in again.
	e.idp.RevokeRefreshTokens("alice")
	e.idp.ExpireAccessTokens("alice")
	base := e.idp.RefreshRequests("alice")
	e.srv.Restart(t)
	waitUntil(t, 30*time.Second, "sales in reauth needed", func() bool {
		return m.Status()[0].State == StateReauthNeeded
	})
	e.srv.Append(t, "bob", "INBOX", testMessage(3, "bob", "support still works"))
	waitUntil(t, 30*time.Second, "support's new message in the sink", func() bool {
		return sinkSubjects(t, sinkPath)["support still works"] == 1
	})
	// The worker keeps retrying slowly (auth_retry 300ms); none of it
	// reaches the IdP.
	time.Sleep(1500 * time.Millisecond)
	if got := e.idp.RefreshRequests("alice") - base; got != DefaultMaxAttempts {
		t.Fatalf("refresh requests after revocation = %d, want %d", got, DefaultMaxAttempts)
	}
	var salesState, salesErr string
	for _, a := range sup.Status() {
		if a.Account == "sales" {
			salesState, salesErr = a.State, a.LastError
		}
	}
	if salesState != worker.StateAuthFailed || !strings.Contains(salesErr, "OAuth2 refresh token revoked or expired; run: mailsync auth login --account sales") {
		t.Fatalf("supervisor status for sales = %q, %q", salesState, salesErr)
	}
	if got := metricValue(t, reg, "mailsync_oauth_reauth_needed", "sales", ""); got != 1 {
		t.Fatalf("mailsync_oauth_reauth_needed{sales} = %v", got)
	}
	if n := strings.Count(e.logs.String(), "needs a new login"); n != 1 {
		t.Fatalf("%d 'needs a new login' lines, want 1", n)
	}
	stop()
	if s := sinkSubjects(t, sinkPath); s["for sales via oauth2"] != 1 {
		t.Fatalf("sink = %v", s)
	}
	assertNoSecrets(t, e.idp, map[string][]byte{
		"logs": []byte(e.logs.String()), "sink": readFile(t, sinkPath), "state file": readFile(t, e.cfg.State),
	})
	if err := m.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
