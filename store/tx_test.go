package store

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// at returns a fixed UTC time with nanoseconds, as the store reads times back.
func at(sec int64) time.Time { return time.Unix(1_700_000_000+sec, 123456789).UTC() }

func update(t *testing.T, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update() = %v", err)
	}
}

func view(t *testing.T, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View() = %v", err)
	}
}

func TestFolderStateRoundTrip(t *testing.T) {
	s := openTest(t)
	want := FolderState{UIDValidity: 1, LastUID: 2, HighestModSeq: math.MaxUint64, UIDNext: math.MaxUint32, UpdatedAt: at(1), LastSyncAt: at(2)}
	update(t, s, func(tx *Tx) error { return tx.PutFolder("acct", "INBOX", want) })
	view(t, s, func(tx *Tx) error {
		got, err := tx.Folder("acct", "INBOX")
		if err != nil {
			return err
		}
		if got != want {
			t.Fatalf("Folder() = %+v, want %+v", got, want)
		}
		if got, err := tx.Folder("acct", "Sent"); err != nil || got != (FolderState{}) {
			t.Fatalf("Folder(missing) = %+v, %v, want zero", got, err)
		}
		if got, err := tx.Folder("other", "INBOX"); err != nil || got != (FolderState{}) {
			t.Fatalf("Folder(missing account) = %+v, %v, want zero", got, err)
		}
		return nil
	})
}

func TestAccountsFoldersDelete(t *testing.T) {
	s := openTest(t)
	update(t, s, func(tx *Tx) error {
		for _, af := range [][2]string{{"b", "INBOX"}, {"a", "Sent"}, {"a", "INBOX"}} {
			if err := tx.PutFolder(af[0], af[1], FolderState{LastUID: 1}); err != nil {
				return err
			}
		}
		return tx.PutLedger("k1", LedgerEntry{Status: StatusDelivered})
	})
	view(t, s, func(tx *Tx) error {
		accts, err := tx.Accounts()
		if err != nil {
			return err
		}
		if want := []string{"a", "b"}; !slices.Equal(accts, want) {
			t.Fatalf("Accounts() = %v, want %v", accts, want)
		}
		fs, err := tx.Folders("a")
		if err != nil {
			return err
		}
		if want := []string{"INBOX", "Sent"}; !slices.Equal(fs, want) {
			t.Fatalf("Folders(a) = %v, want %v", fs, want)
		}
		if fs, err := tx.Folders("zzz"); err != nil || fs != nil {
			t.Fatalf("Folders(missing) = %v, %v, want nil", fs, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.DeleteAccount("a"); err != nil {
			return err
		}
		return tx.DeleteAccount("never-existed")
	})
	view(t, s, func(tx *Tx) error {
		accts, _ := tx.Accounts()
		if want := []string{"b"}; !slices.Equal(accts, want) {
			t.Fatalf("Accounts() after delete = %v, want %v", accts, want)
		}
		if _, ok, _ := tx.Ledger("k1"); !ok {
			t.Fatal("DeleteAccount removed a global ledger entry")
		}
		return nil
	})
}

func TestLedgerRoundTripAndProvenance(t *testing.T) {
	s := openTest(t)
	p1 := sink.Provenance{Account: "a", Folder: "INBOX", UIDValidity: 5, UID: 10}
	p2 := sink.Provenance{Account: "b", Folder: "INBOX", UIDValidity: 7, UID: 10}
	want := LedgerEntry{
		Status: StatusDelivered, Activity: "act-1", Reason: "matched", MessageID: "m@x",
		ContentHash: "sha256:abc", Records: []sink.Record{{Kind: "contact", ID: "c1", Name: "C"}},
		Provenance: []sink.Provenance{p1}, FirstSeen: at(1), UpdatedAt: at(2),
		Events: map[string]string{"k:retract": "r1"},
	}
	update(t, s, func(tx *Tx) error { return tx.PutLedger("k", want) })
	view(t, s, func(tx *Tx) error {
		got, ok, err := tx.Ledger("k")
		if err != nil || !ok {
			t.Fatalf("Ledger(k) = _, %v, %v", ok, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Ledger(k) = %+v, want %+v", got, want)
		}
		if _, ok, err := tx.Ledger("missing"); ok || err != nil {
			t.Fatalf("Ledger(missing) = _, %v, %v, want false, nil", ok, err)
		}
		return nil
	})

	update(t, s, func(tx *Tx) error {
		for _, c := range []struct {
			p    sink.Provenance
			want bool
		}{{p1, false}, {p2, true}, {p2, false}, {sink.Provenance{Account: "a", Folder: "INBOX", UIDValidity: 6, UID: 10}, true}} {
			added, err := tx.AddProvenance("k", c.p)
			if err != nil {
				return err
			}
			if added != c.want {
				t.Errorf("AddProvenance(%+v) = %v, want %v", c.p, added, c.want)
			}
		}
		if _, err := tx.AddProvenance("nope", p1); !errors.Is(err, ErrNotFound) {
			t.Errorf("AddProvenance(missing key) = %v, want ErrNotFound", err)
		}
		// Removes both a/INBOX/10 copies (validities 5 and 6).
		removed, remaining, err := tx.RemoveProvenance("k", "a", "INBOX", 10)
		if err != nil || !removed || remaining != 1 {
			t.Errorf("RemoveProvenance(a) = %v, %d, %v, want true, 1, nil", removed, remaining, err)
		}
		removed, remaining, err = tx.RemoveProvenance("k", "a", "INBOX", 10)
		if err != nil || removed || remaining != 1 {
			t.Errorf("RemoveProvenance(a) again = %v, %d, %v, want false, 1, nil", removed, remaining, err)
		}
		removed, remaining, err = tx.RemoveProvenance("k", "b", "INBOX", 10)
		if err != nil || !removed || remaining != 0 {
			t.Errorf("RemoveProvenance(b) = %v, %d, %v, want true, 0, nil", removed, remaining, err)
		}
		if _, _, err := tx.RemoveProvenance("nope", "a", "INBOX", 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("RemoveProvenance(missing key) = %v, want ErrNotFound", err)
		}
		return nil
	})
	view(t, s, func(tx *Tx) error {
		got, _, _ := tx.Ledger("k")
		if len(got.Provenance) != 0 || got.Activity != "act-1" {
			t.Fatalf("Ledger(k) after removals = %+v, want no provenance and the receipt kept", got)
		}
		return nil
	})
}

func TestUIDMap(t *testing.T) {
	s := openTest(t)
	update(t, s, func(tx *Tx) error {
		for _, uid := range []uint32{300, 1, 256, 2, math.MaxUint32} {
			if err := tx.PutUID("a", "INBOX", uid, "key-"+string(rune('a'+uid%26))); err != nil {
				return err
			}
		}
		return tx.DeleteUID("a", "INBOX", 2)
	})
	view(t, s, func(tx *Tx) error {
		if k, ok, err := tx.UIDKey("a", "INBOX", 256); err != nil || !ok || k != "key-w" {
			t.Fatalf("UIDKey(256) = %q, %v, %v", k, ok, err)
		}
		if _, ok, err := tx.UIDKey("a", "INBOX", 2); err != nil || ok {
			t.Fatalf("UIDKey(deleted) = _, %v, %v, want false", ok, err)
		}
		var got []uint32
		collect := func(uid uint32, _ string) error { got = append(got, uid); return nil }
		if err := tx.UIDRange("a", "INBOX", 1, math.MaxUint32, collect); err != nil {
			return err
		}
		if want := []uint32{1, 256, 300, math.MaxUint32}; !slices.Equal(got, want) {
			t.Fatalf("UIDRange(all) = %v, want %v", got, want)
		}
		got = nil
		if err := tx.UIDRange("a", "INBOX", 2, 300, collect); err != nil {
			return err
		}
		if want := []uint32{256, 300}; !slices.Equal(got, want) {
			t.Fatalf("UIDRange(2,300) = %v, want %v", got, want)
		}
		stop := errors.New("stop")
		n := 0
		err := tx.UIDRange("a", "INBOX", 1, math.MaxUint32, func(uint32, string) error { n++; return stop })
		if err != stop || n != 1 {
			t.Fatalf("UIDRange with stopping fn = %v after %d calls, want stop after 1", err, n)
		}
		return tx.UIDRange("a", "Missing", 1, 10, func(uint32, string) error { t.Fatal("called for missing folder"); return nil })
	})
}

func TestOutboxAndDeadLetters(t *testing.T) {
	s := openTest(t)
	o := OutboxEntry{Key: "k5", Attempts: 3, NextAttempt: at(10), LastError: "503", FirstSeen: at(1)}
	d := DeadLetter{Key: "k9", Provenance: sink.Provenance{Account: "a", Folder: "INBOX", UIDValidity: 1, UID: 9},
		Reason: "permanent: 400", At: at(3), Attempts: 5, Subject: "hi", MessageID: "m@x"}
	update(t, s, func(tx *Tx) error {
		for _, uid := range []uint32{7, 5, 6} {
			e := o
			e.Attempts = int(uid)
			if err := tx.PutOutbox("a", "INBOX", uid, e); err != nil {
				return err
			}
		}
		if err := tx.DeleteOutbox("a", "INBOX", 6); err != nil {
			return err
		}
		return tx.PutDeadLetter("a", "INBOX", 9, d)
	})
	view(t, s, func(tx *Tx) error {
		var uids []uint32
		err := tx.Outbox("a", "INBOX", func(uid uint32, e OutboxEntry) error {
			uids = append(uids, uid)
			want := o
			want.Attempts = int(uid)
			if e != want {
				t.Errorf("Outbox entry %d = %+v, want %+v", uid, e, want)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if want := []uint32{5, 7}; !slices.Equal(uids, want) {
			t.Fatalf("Outbox uids = %v, want %v", uids, want)
		}
		if n, err := tx.OutboxCount("a", "INBOX"); err != nil || n != 2 {
			t.Fatalf("OutboxCount() = %d, %v, want 2", n, err)
		}
		if n, err := tx.OutboxCount("a", "Other"); err != nil || n != 0 {
			t.Fatalf("OutboxCount(missing) = %d, %v, want 0", n, err)
		}
		var got []DeadLetter
		if err := tx.DeadLetters("a", "INBOX", func(uid uint32, dl DeadLetter) error { got = append(got, dl); return nil }); err != nil {
			return err
		}
		if len(got) != 1 || got[0] != d {
			t.Fatalf("DeadLetters() = %+v, want [%+v]", got, d)
		}
		if n, err := tx.DeadLetterCount("a", "INBOX"); err != nil || n != 1 {
			t.Fatalf("DeadLetterCount() = %d, %v, want 1", n, err)
		}
		return nil
	})
	// fn may write to the map it is scanning.
	update(t, s, func(tx *Tx) error {
		err := tx.Outbox("a", "INBOX", func(uid uint32, _ OutboxEntry) error { return tx.DeleteOutbox("a", "INBOX", uid) })
		if err != nil {
			return err
		}
		return tx.DeadLetters("a", "INBOX", func(uid uint32, _ DeadLetter) error { return tx.DeleteDeadLetter("a", "INBOX", uid) })
	})
	view(t, s, func(tx *Tx) error {
		n, _ := tx.OutboxCount("a", "INBOX")
		m, _ := tx.DeadLetterCount("a", "INBOX")
		if n != 0 || m != 0 {
			t.Fatalf("after deleting while scanning: outbox %d, dead letters %d, want 0, 0", n, m)
		}
		return nil
	})
}

func TestThreads(t *testing.T) {
	s := openTest(t)
	c1 := sink.Record{Kind: "contact", ID: "1", Name: "One"}
	c2 := sink.Record{Kind: "contact", ID: "2"}
	d1 := sink.Record{Kind: "deal", ID: "1"}
	update(t, s, func(tx *Tx) error {
		if err := tx.PutThread("<a@x>", []sink.Record{c1, c2}); err != nil {
			return err
		}
		if err := tx.PutThread("a@x", []sink.Record{{Kind: "contact", ID: "1", Name: "renamed"}, d1}); err != nil {
			return err
		}
		if err := tx.PutThread(" <b@x> ", []sink.Record{c2}); err != nil {
			return err
		}
		// No usable Message-ID: nothing to index, and no error.
		for _, id := range []string{"", "<>", string(make([]byte, 40000))} {
			if err := tx.PutThread(id, []sink.Record{d1}); err != nil {
				t.Errorf("PutThread(%.10q) = %v, want nil", id, err)
			}
		}
		return tx.PutThread("c@x", nil)
	})
	got, err := s.ThreadRecords([]string{"b@x", "", "<a@x>", "unknown@x", "c@x", "<>"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []sink.Record{c2, c1, d1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ThreadRecords() = %+v, want %+v", got, want)
	}
	if got, err := s.ThreadRecords(nil); err != nil || got != nil {
		t.Fatalf("ThreadRecords(nil) = %v, %v, want nil", got, err)
	}
}

func TestCounters(t *testing.T) {
	s := openTest(t)
	update(t, s, func(tx *Tx) error {
		if err := tx.AddCounters("a", "INBOX", Counters{Delivered: 3, Excluded: 1}); err != nil {
			return err
		}
		if err := tx.AddCounters("a", "INBOX", Counters{Delivered: 1, DeadLettered: -1, Skipped: 2, Retracted: 4}); err != nil {
			return err
		}
		return tx.AddCounters("a", "Sent", Counters{Delivered: 10})
	})
	view(t, s, func(tx *Tx) error {
		got, err := tx.Counters("a", "INBOX")
		if want := (Counters{Delivered: 4, Excluded: 1, Skipped: 2, DeadLettered: -1, Retracted: 4}); err != nil || got != want {
			t.Fatalf("Counters(INBOX) = %+v, %v, want %+v", got, err, want)
		}
		got, err = tx.AccountCounters("a")
		if want := (Counters{Delivered: 14, Excluded: 1, Skipped: 2, DeadLettered: -1, Retracted: 4}); err != nil || got != want {
			t.Fatalf("AccountCounters(a) = %+v, %v, want %+v", got, err, want)
		}
		if got, err := tx.Counters("b", "INBOX"); err != nil || got != (Counters{}) {
			t.Fatalf("Counters(missing) = %+v, %v, want zero", got, err)
		}
		return nil
	})
}

func TestBackfillJobs(t *testing.T) {
	s := openTest(t)
	var ids []string
	update(t, s, func(tx *Tx) error {
		for i := 0; i < 3; i++ {
			id, err := tx.NextBackfillID()
			if err != nil {
				return err
			}
			ids = append(ids, id)
			job := BackfillJob{ID: id, Account: "a", Folder: "INBOX", Since: at(0), Until: at(100), DryRun: i == 1,
				Rate: 2.5, NewestFirst: true, State: BackfillRunning, Total: 100, Done: 10, Delivered: 8, Skipped: 2,
				Position: 77, UIDValidity: 5, Error: "", Created: at(int64(10 - i)), Updated: at(20)}
			if err := tx.PutBackfill(job); err != nil {
				return err
			}
		}
		return nil
	})
	if want := []string{"bf-1", "bf-2", "bf-3"}; !slices.Equal(ids, want) {
		t.Fatalf("NextBackfillID() gave %v, want %v", ids, want)
	}
	view(t, s, func(tx *Tx) error {
		got, ok, err := tx.Backfill("bf-2")
		want := BackfillJob{ID: "bf-2", Account: "a", Folder: "INBOX", Since: at(0), Until: at(100), DryRun: true,
			Rate: 2.5, NewestFirst: true, State: BackfillRunning, Total: 100, Done: 10, Delivered: 8, Skipped: 2,
			Position: 77, UIDValidity: 5, Created: at(9), Updated: at(20)}
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("Backfill(bf-2) = %+v, %v, %v, want %+v", got, ok, err, want)
		}
		if _, ok, err := tx.Backfill("bf-9"); ok || err != nil {
			t.Fatalf("Backfill(missing) = _, %v, %v", ok, err)
		}
		var order []string
		if err := tx.Backfills(func(j BackfillJob) error { order = append(order, j.ID); return nil }); err != nil {
			return err
		}
		if want := []string{"bf-3", "bf-2", "bf-1"}; !slices.Equal(order, want) {
			t.Fatalf("Backfills() order = %v, want %v (oldest Created first)", order, want)
		}
		if _, err := tx.NextBackfillID(); err == nil {
			t.Fatal("NextBackfillID() in a View succeeded")
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteBackfill("bf-1") })
	view(t, s, func(tx *Tx) error {
		if _, ok, _ := tx.Backfill("bf-1"); ok {
			t.Fatal("Backfill(bf-1) found after DeleteBackfill")
		}
		return nil
	})
}

func TestKV(t *testing.T) {
	s := openTest(t)
	buf := []byte("secret-token")
	update(t, s, func(tx *Tx) error {
		if err := tx.PutKV("oauth/a", buf); err != nil {
			return err
		}
		// The caller reusing its buffer before commit must not change what is stored.
		copy(buf, "XXXXXX")
		return tx.PutKV("gone", []byte("x"))
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteKV("gone") })
	var got []byte
	view(t, s, func(tx *Tx) (err error) {
		var ok bool
		got, ok, err = tx.GetKV("oauth/a")
		if !ok {
			t.Fatal("GetKV(oauth/a) not found")
		}
		if _, ok, _ := tx.GetKV("gone"); ok {
			t.Fatal("GetKV(gone) found after DeleteKV")
		}
		return err
	})
	if string(got) != "secret-token" {
		t.Fatalf("GetKV() = %q, want %q", got, "secret-token")
	}
}
