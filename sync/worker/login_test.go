package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
)

// TestOneLoginPerConnectionAndLogoutOnStop: an account with two IDLE
// folders logs in twice, not three times (the connection it listed its
// folders on becomes the first folder's IDLE connection), and a stop ends
// both sessions with LOGOUT, as Dovecot's log shows.
func TestOneLoginPerConnectionAndLogoutOnStop(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(3, 5, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}})
	seeding := strings.Count(srv.LogTail(500), "Login: user=<alice>")
	r.start()
	waitFor(t, 30*time.Second, "both folders idle", func() bool {
		s := r.sup.Status()
		return len(s) == 1 && len(s[0].Folders) == 2 && s[0].Folders[0].State == "idle" && s[0].Folders[1].State == "idle"
	})
	if got := len(r.jsonlKeys()); got != 5 {
		t.Fatalf("sink holds %d keys, want 5", got)
	}
	if got := strings.Count(srv.LogTail(500), "Login: user=<alice>") - seeding; got != 2 {
		t.Fatalf("Dovecot logged %d logins for two IDLE folders, want 2\n%s", got, srv.LogTail(50))
	}
	seeded := strings.Count(srv.LogTail(500), "Logged out")
	r.stop()
	waitFor(t, 5*time.Second, "sessions ended", func() bool {
		return strings.Count(srv.LogTail(500), "imap(alice)") >= seeding+2
	})
	log := srv.LogTail(500)
	if got := strings.Count(log, "Logged out") - seeded; got != 2 {
		t.Fatalf("%d sessions ended with LOGOUT on stop, want 2\n%s", got, log)
	}
}
