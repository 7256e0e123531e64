package worker_test

import (
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
)

// TestFoldersBeyondTheBudgetArePolled: with one connection for three
// folders, all three are polled on it (STATUS, then a sync only when
// something changed), and new mail in each is delivered.
func TestFoldersBeyondTheBudgetArePolled(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.CreateFolder(t, dovecottest.DefaultUser, "Archive")
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(111, 3, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox", "sent", "archive"},
		extra: "sync: {retry_min: 50ms, retry_max: 1s, poll_interval: 200ms}\n"})
	r.cfg.Accounts[0].MaxConnections = 1
	r.start()
	waitFor(t, 20*time.Second, "catch-up", func() bool { return len(r.jsonlKeys()) == 3 })
	g := generate(112, 2, "alice")
	srv.Append(t, dovecottest.DefaultUser, "Sent", g[0])
	srv.Append(t, dovecottest.DefaultUser, "Archive", g[1])
	waitFor(t, 20*time.Second, "polled deliveries", func() bool { return len(r.jsonlKeys()) == 5 })
	// The sink has the lines before the commit and the state change.
	waitFor(t, 5*time.Second, "every folder back to polling", func() bool {
		for _, f := range r.sup.Status()[0].Folders {
			if f.State != "polling" {
				return false
			}
		}
		return true
	})
	st := r.sup.Status()[0]
	r.stop()
	if st.Connections != 1 {
		t.Errorf("%d connections, want 1 (the budget)", st.Connections)
	}
	for _, f := range st.Folders {
		if f.State != "polling" {
			t.Errorf("folder %s is %q, want polling", f.Folder, f.State)
		}
	}
}
