package worker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/worker"
)

// TestAuthFailureIsVisibleAndSlow: a wrong password puts the account in
// the auth-failed state with the server's reason, and the daemon does not
// hammer the server (one login attempt per auth_retry, not per backoff).
func TestAuthFailureIsVisibleAndSlow(t *testing.T) {
	srv := dovecottest.Start(t)
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		extra: "sync: {retry_min: 20ms, retry_max: 100ms, auth_retry: 1h}\n"})
	pw := filepath.Join(r.dir, "alice.password")
	if err := os.WriteFile(pw, []byte("wrong-password-123"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()
	waitFor(t, 15*time.Second, "auth failed state", func() bool {
		s := r.sup.Status()
		return len(s) == 1 && s[0].State == worker.StateAuthFailed
	})
	time.Sleep(2 * time.Second) // with a 20-100ms backoff a storm would be dozens of attempts
	st := r.sup.Status()[0]
	r.stop()
	if !strings.Contains(strings.ToLower(st.LastError), "auth") {
		t.Errorf("last error %q does not say authentication failed", st.LastError)
	}
	if strings.Contains(st.LastError, "wrong-password-123") {
		t.Fatal("status shows the password")
	}
	attempts := strings.Count(srv.LogTail(100000), "auth failed") + strings.Count(srv.LogTail(100000), "Disconnected: Connection closed (auth failed")
	if n := strings.Count(srv.LogTail(100000), "Login: user=<alice>"); n != 0 {
		t.Fatalf("%d successful logins with a wrong password", n)
	}
	if attempts > 2 {
		t.Fatalf("%d failed login attempts in 2s: the daemon hammers the server", attempts)
	}
	if attempts == 0 {
		t.Fatalf("no failed login in the server log; the test did not exercise authentication:\n%s", srv.LogTail(20))
	}
}
