package worker_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
)

func events(t *testing.T, r *rig) map[string][]jsonlLine {
	t.Helper()
	out := map[string][]jsonlLine{}
	readJSONL(t, r.dir+"/messages.jsonl", func(l jsonlLine) { out[l.Event] = append(out[l.Event], l) })
	return out
}

func storeFlags(t *testing.T, srv *dovecottest.Server, folder string, uid imap.UID, op imap.StoreFlagsOp, flags ...imap.Flag) {
	t.Helper()
	c := srv.Dial(t, dovecottest.DefaultUser)
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: op, Flags: flags}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
}

// TestLoggedKeywordAndUserActions: after delivery another client sees
// $CRMLogged and the daemon's own STORE causes no re-delivery; marking a
// logged message $CRMPrivate sends one retract; \Flagged sends one flags
// event.
func TestLoggedKeywordAndUserActions(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(31, 5, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	waitFor(t, 30*time.Second, "5 deliveries", func() bool { return len(events(t, r)["message"]) == 5 })
	waitFor(t, 10*time.Second, "$CRMLogged on every message", func() bool {
		for _, fl := range srv.Flags(t, dovecottest.DefaultUser, "INBOX") {
			if !slices.Contains(fl, "$CRMLogged") {
				return false
			}
		}
		return true
	})
	if got := r.sup.Status()[0].Folders[0].WriteBack; got != "on" {
		t.Fatalf("write-back = %q, want on", got)
	}

	storeFlags(t, srv, "INBOX", 2, imap.StoreFlagsAdd, "$CRMPrivate")
	waitFor(t, 15*time.Second, "retract event", func() bool { return len(events(t, r)["retract"]) == 1 })
	storeFlags(t, srv, "INBOX", 3, imap.StoreFlagsAdd, imap.FlagFlagged)
	waitFor(t, 15*time.Second, "flags event", func() bool { return len(events(t, r)["flags"]) == 1 })
	waitFor(t, 10*time.Second, "$CRMLogged removed from the retracted message", func() bool {
		return !slices.Contains(srv.Flags(t, dovecottest.DefaultUser, "INBOX")[2], "$CRMLogged")
	})
	r.stop()

	// After a restart nothing is logged again, retracted or not.
	r.start()
	time.Sleep(1500 * time.Millisecond)
	r.stop()
	ev := events(t, r)
	if got := len(ev["message"]); got != 5 {
		t.Errorf("%d message events after restart, want 5 (no re-delivery)", got)
	}
	if got := len(ev["retract"]); got != 1 {
		t.Errorf("%d retract events, want 1", got)
	}
	if got := len(ev["flags"]); got != 1 {
		t.Errorf("%d flags events, want 1 (the daemon's own STORE is not a user change)", got)
	}
	if fl := ev["flags"][0]; !strings.Contains(fl.Key, ":flags:") {
		t.Errorf("flags event key %q is not derived from the message key", fl.Key)
	}
}

// TestSelectiveCaptureByKeyword: in selective mode nothing is logged until
// the user sets $CRMLog in any mail client; then exactly that message is.
func TestSelectiveCaptureByKeyword(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(41, 6, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.cfg.Accounts[0].Matcher.Capture = "selective"
	r.start()
	waitFor(t, 30*time.Second, "catch-up", func() bool { return r.cursor("alice", "INBOX").LastUID == 6 })
	if got := len(r.jsonlKeys()); got != 0 {
		t.Fatalf("selective mode delivered %d messages before any was marked", got)
	}
	storeFlags(t, srv, "INBOX", 4, imap.StoreFlagsAdd, "$CRMLog")
	waitFor(t, 15*time.Second, "the marked message", func() bool { return len(r.jsonlKeys()) == 1 })
	time.Sleep(500 * time.Millisecond)
	r.stop()
	var uid uint32
	readJSONL(t, r.dir+"/messages.jsonl", func(l jsonlLine) { uid = l.Provenance[0].UID })
	if got := len(r.jsonlKeys()); got != 1 || uid != 4 {
		t.Fatalf("sink holds %d messages (uid %d), want exactly uid 4", got, uid)
	}
}

// TestMoveAndDelete: another client MOVEs a logged message from INBOX to
// Archive (both synced): no second activity, provenance follows it. It then
// deletes and expunges it: one deleted event.
func TestMoveAndDelete(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(51, 3, "alice"))
	srv.CreateFolder(t, dovecottest.DefaultUser, "Archive")
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox", "archive"},
		extra: "sync: {retry_min: 50ms, retry_max: 1s, expunge_grace: 1s}\n"})
	r.start()
	waitFor(t, 30*time.Second, "3 deliveries", func() bool { return len(events(t, r)["message"]) == 3 })
	moved := events(t, r)["message"][0]
	if moved.Provenance[0].Folder != "INBOX" {
		t.Fatalf("first message came from %s", moved.Provenance[0].Folder)
	}

	c := srv.Dial(t, dovecottest.DefaultUser)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(imap.UID(moved.Provenance[0].UID)), "Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "provenance follows the move", func() bool {
		var e store.LedgerEntry
		r.store.View(func(tx *store.Tx) error { e, _, _ = tx.Ledger(moved.Key); return nil })
		return len(e.Provenance) == 1 && e.Provenance[0].Folder == "Archive"
	})
	ev := events(t, r)
	if got := len(ev["message"]); got != 3 {
		t.Fatalf("%d message events after the move, want 3 (no second activity)", got)
	}
	if got := len(ev["deleted"]); got != 0 {
		t.Fatalf("a move produced %d deleted events", got)
	}

	if _, err := c.Select("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "deleted event", func() bool { return len(events(t, r)["deleted"]) == 1 })
	time.Sleep(1500 * time.Millisecond)
	r.stop()
	ev = events(t, r)
	if got := len(ev["deleted"]); got != 1 || ev["deleted"][0].Key != moved.Key+":deleted" {
		t.Fatalf("deleted events %+v, want one for %s", ev["deleted"], moved.Key)
	}
	if got := len(ev["message"]); got != 3 {
		t.Fatalf("%d message events, want 3", got)
	}
}

// TestUnlinkInCRMRemovesKeywordOnly: an activity unlinked in the CRM loses
// $CRMLogged on the server; the mail stays, and it is not logged again
// after a restart.
func TestUnlinkInCRMRemovesKeywordOnly(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(91, 2, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	waitFor(t, 30*time.Second, "2 deliveries", func() bool { return len(events(t, r)["message"]) == 2 })
	waitFor(t, 10*time.Second, "$CRMLogged", func() bool {
		return slices.Contains(srv.Flags(t, dovecottest.DefaultUser, "INBOX")[1], "$CRMLogged")
	})
	key := events(t, r)["message"][0].Key
	uid := imap.UID(events(t, r)["message"][0].Provenance[0].UID)
	if err := r.sup.Unlink(key); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "keyword removed", func() bool {
		return !slices.Contains(srv.Flags(t, dovecottest.DefaultUser, "INBOX")[uid], "$CRMLogged")
	})
	r.stop()
	if got := len(srv.Flags(t, dovecottest.DefaultUser, "INBOX")); got != 2 {
		t.Fatalf("INBOX holds %d messages after the unlink, want 2 (mail is never deleted)", got)
	}
	r.start()
	time.Sleep(time.Second)
	r.stop()
	if got := len(events(t, r)["message"]); got != 2 {
		t.Fatalf("%d message events after restart, want 2", got)
	}
}

// TestNoKeywordSupport: where PERMANENTFLAGS has no \*, status says the
// write-back is off for that folder, and sync goes on.
func TestNoKeywordSupport(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithKeywordsDisabled())
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(95, 3, "alice"))
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"}})
	r.start()
	waitFor(t, 30*time.Second, "3 deliveries", func() bool { return len(r.jsonlKeys()) == 3 })
	wb := r.sup.Status()[0].Folders[0].WriteBack
	srv.Append(t, dovecottest.DefaultUser, "INBOX", []byte(customerMail))
	waitFor(t, 15*time.Second, "live delivery continues", func() bool { return len(r.jsonlKeys()) == 4 })
	r.stop()
	if !strings.HasPrefix(wb, "off:") || !strings.Contains(wb, `\*`) {
		t.Fatalf("write-back status %q, want off with the PERMANENTFLAGS reason", wb)
	}
	for uid, fl := range srv.Flags(t, dovecottest.DefaultUser, "INBOX") {
		if slices.Contains(fl, "$CRMLogged") {
			t.Fatalf("uid %d got the keyword on a server that refuses keywords", uid)
		}
	}
}

// TestSelectiveCaptureByFolder: in selective mode, copying a message into
// the log folder (CRM/Log) logs it, once; the others are not logged.
func TestSelectiveCaptureByFolder(t *testing.T) {
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(97, 4, "alice"))
	srv.CreateFolder(t, dovecottest.DefaultUser, "CRM/Log")
	r := newRig(t, srv, rigOptions{accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox", `"CRM/Log"`}})
	r.cfg.Accounts[0].Matcher.Capture = "selective"
	r.cfg.Accounts[0].Matcher.LogFolders = []string{"CRM/Log"}
	r.start()
	waitFor(t, 30*time.Second, "catch-up", func() bool { return r.cursor("alice", "INBOX").LastUID == 4 })
	c := srv.Dial(t, dovecottest.DefaultUser)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(imap.UIDSetNum(3), "CRM/Log").Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the copied message", func() bool { return len(r.jsonlKeys()) == 1 })
	time.Sleep(500 * time.Millisecond)
	r.stop()
	var got jsonlLine
	readJSONL(t, r.dir+"/messages.jsonl", func(l jsonlLine) { got = l })
	if n := len(r.jsonlKeys()); n != 1 || got.Provenance[0].Folder != "CRM/Log" {
		t.Fatalf("sink holds %d messages (last from %+v), want exactly the one copied into CRM/Log", n, got.Provenance)
	}
}
