package worker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/worker"
)

// TestBackfillAndResyncResolveRoles: backfill and resync take a folder the
// way the folders list does, by role or by name. Backfilling "inbox" after
// INBOX was synced works on INBOX (no phantom folder, no provenance event
// for copies already logged), so does "INBOX", and "archive" finds the
// folder with SPECIAL-USE \Archive; resync accepts the role and the name.
func TestBackfillAndResyncResolveRoles(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(81, 6, "alice"))
	srv.SeedMaildir(t, dovecottest.DefaultUser, "Archive", generate(82, 4, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	waitFor(t, 20*time.Second, "INBOX delivered", func() bool { return len(events(t, r)["message"]) == 6 })

	for _, folder := range []string{"inbox", "INBOX", "archive"} {
		job, err := r.sup.StartBackfill(worker.BackfillRequest{Account: "alice", Folder: folder})
		if err != nil {
			t.Fatalf("backfill %s: %v", folder, err)
		}
		waitFor(t, 20*time.Second, "backfill "+folder, func() bool {
			s := backfillJob(t, r, job.ID).State
			return s == store.BackfillDone || s == store.BackfillFailed
		})
		j := backfillJob(t, r, job.ID)
		want := map[string]string{"inbox": "INBOX", "INBOX": "INBOX", "archive": "Archive"}[folder]
		if j.State != store.BackfillDone || j.Folder != want {
			t.Errorf("backfill %q: job %s on folder %q (%s), want done on %q", folder, j.State, j.Folder, j.Error, want)
		}
	}
	for _, folder := range []string{"inbox", "INBOX"} {
		if err := r.sup.Resync("alice", folder); err != nil {
			t.Errorf("resync %q: %v", folder, err)
		}
	}
	if err := r.sup.Resync("alice", "archive"); err == nil {
		t.Errorf("resync of the unsynced archive folder succeeded")
	}
	time.Sleep(time.Second) // a resync that sent anything would show now
	waitFor(t, 20*time.Second, "INBOX idle after resync", func() bool {
		s := r.sup.Status()
		return len(s) == 1 && len(s[0].Folders) == 1 && s[0].Folders[0].State == worker.StateIdle
	})
	var folders []string
	r.store.View(func(tx *store.Tx) error { folders, _ = tx.Folders("alice"); return nil })
	r.stop()

	ev := events(t, r)
	if got, want := len(ev["message"]), 10; got != want {
		t.Errorf("%d message events, want %d (6 INBOX + 4 Archive)", got, want)
	}
	if got := len(ev["provenance"]); got != 0 {
		t.Errorf("%d provenance events for copies already logged: %+v", got, ev["provenance"])
	}
	slices.Sort(folders)
	if !slices.Equal(folders, []string{"Archive", "INBOX"}) {
		t.Errorf("state file folders %q, want [Archive INBOX]", folders)
	}
	for _, m := range ev["message"] {
		if f := m.Provenance[0].Folder; f != "INBOX" && f != "Archive" {
			t.Errorf("message %s provenance folder %q", m.Key, f)
		}
	}
}
