package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/worker"
)

func logins(srv *dovecottest.Server, user string) int {
	return strings.Count(srv.LogTail(100000), "Login: user=<"+user+">")
}

func allIdle(r *rig, ids ...string) bool {
	st := map[string]worker.AccountStatus{}
	for _, a := range r.sup.Status() {
		st[a.Account] = a
	}
	for _, id := range ids {
		a, ok := st[id]
		if !ok || len(a.Folders) == 0 {
			return false
		}
		for _, f := range a.Folders {
			if f.State != worker.StateIdle {
				return false
			}
		}
	}
	return true
}

// TestReloadTouchesOnlyWhatChanged: an added account starts, a removed one
// stops, a changed one restarts, and the untouched one keeps its IMAP
// session (Dovecot's log shows no new login for it).
func TestReloadTouchesOnlyWhatChanged(t *testing.T) {
	users := map[string]string{}
	for _, u := range []string{"keep", "change", "gone", "added"} {
		users[u] = dovecottest.DefaultPassword
	}
	srv := dovecottest.Start(t, dovecottest.WithUsers(users))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"keep": "keep", "change": "change", "gone": "gone", "added": "added"}, folders: []string{"inbox"}})
	full := r.cfg
	initial := *full
	initial.Accounts = nil
	for _, a := range full.Accounts {
		if a.ID != "added" {
			initial.Accounts = append(initial.Accounts, a)
		}
	}
	r.cfg = &initial
	r.start()
	waitFor(t, 15*time.Second, "accounts idle", func() bool { return allIdle(r, "keep", "change", "gone") })
	keepBefore, changeBefore := logins(srv, "keep"), logins(srv, "change")

	next := *full
	next.Accounts = nil
	for _, a := range full.Accounts {
		switch a.ID {
		case "gone":
			continue
		case "change":
			a.MaxConnections = 2
		}
		next.Accounts = append(next.Accounts, a)
	}
	added, removed, restarted, unchanged, err := r.sup.Reload(&next, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(added, ",") != "added" || strings.Join(removed, ",") != "gone" ||
		strings.Join(restarted, ",") != "change" || strings.Join(unchanged, ",") != "keep" {
		t.Fatalf("reload: added %v removed %v restarted %v unchanged %v", added, removed, restarted, unchanged)
	}
	waitFor(t, 15*time.Second, "accounts idle after reload", func() bool { return allIdle(r, "keep", "change", "added") })
	for _, a := range r.sup.Status() {
		if a.Account == "gone" {
			t.Fatal("removed account still runs")
		}
	}
	// The added account delivers.
	srv.Append(t, "added", "INBOX", []byte(customerMail))
	waitFor(t, 15*time.Second, "delivery for the added account", func() bool { return len(r.jsonlKeys()) == 1 })
	if got := logins(srv, "keep"); got != keepBefore {
		t.Errorf("untouched account logged in %d more times: its connection was dropped", got-keepBefore)
	}
	if got := logins(srv, "change"); got <= changeBefore {
		t.Errorf("changed account did not reconnect (logins %d, before %d)", got, changeBefore)
	}
	r.stop()
}

// TestReloadRefusesStateOrSinkChange: settings that cannot change while
// running are refused, and the running configuration stays.
func TestReloadRefusesStateOrSinkChange(t *testing.T) {
	srv := dovecottest.Start(t)
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	bad := *r.cfg
	bad.State = bad.State + ".other"
	if _, _, _, _, err := r.sup.Reload(&bad, nil); err == nil || !strings.Contains(err.Error(), "state") {
		t.Fatalf("Reload(changed state) error = %v, want a refusal naming state", err)
	}
	bad = *r.cfg
	bad.Sink = config.Sink{Type: "webhook"}
	if _, _, _, _, err := r.sup.Reload(&bad, nil); err == nil || !strings.Contains(err.Error(), "sink") {
		t.Fatalf("Reload(changed sink) error = %v, want a refusal naming sink", err)
	}
	if r.sup.Config() != r.cfg {
		t.Fatal("a refused reload replaced the running configuration")
	}
	r.stop()
}
