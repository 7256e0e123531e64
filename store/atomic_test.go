package store

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/mailsync/mailsync/sync/sink"
)

// writeBatch records deliveries of uids from..to and advances the cursor, in
// the caller's transaction, as a folder worker does.
func writeBatch(tx *Tx, account, folder string, uidValidity, from, to uint32) error {
	for uid := from; uid <= to; uid++ {
		key := fmt.Sprintf("%s/%s/%d/%d", account, folder, uidValidity, uid)
		e := LedgerEntry{Status: StatusDelivered, Activity: "r", Provenance: []sink.Provenance{
			{Account: account, Folder: folder, UIDValidity: uidValidity, UID: uid}}}
		if err := tx.PutLedger(key, e); err != nil {
			return err
		}
		if err := tx.PutUID(account, folder, uid, key); err != nil {
			return err
		}
		if err := tx.DeleteOutbox(account, folder, uid); err != nil {
			return err
		}
	}
	if err := tx.AddCounters(account, folder, Counters{Delivered: int64(to - from + 1)}); err != nil {
		return err
	}
	return tx.PutFolder(account, folder, FolderState{UIDValidity: uidValidity, LastUID: to})
}

func TestBatchCommitsTogetherOrNotAtAll(t *testing.T) {
	s := openTest(t)
	update(t, s, func(tx *Tx) error { return writeBatch(tx, "a", "INBOX", 1, 1, 10) })

	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutOutbox("a", "INBOX", 3, OutboxEntry{Key: "x"}); err != nil {
			return err
		}
		if err := writeBatch(tx, "a", "INBOX", 1, 11, 20); err != nil {
			return err
		}
		if err := tx.PutThread("t@x", []sink.Record{{Kind: "contact", ID: "1"}}); err != nil {
			return err
		}
		if err := tx.ResetFolder("a", "Sent", 4); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Update() = %v, want boom", err)
	}

	view(t, s, func(tx *Tx) error {
		st, err := tx.Folder("a", "INBOX")
		if err != nil {
			return err
		}
		if st.LastUID != 10 {
			t.Errorf("cursor LastUID = %d, want 10 (rolled back)", st.LastUID)
		}
		if _, ok, _ := tx.Ledger("a/INBOX/1/11"); ok {
			t.Error("ledger entry of the failed batch was kept")
		}
		if _, ok, _ := tx.Ledger("a/INBOX/1/10"); !ok {
			t.Error("ledger entry of the committed batch is missing")
		}
		if _, ok, _ := tx.UIDKey("a", "INBOX", 11); ok {
			t.Error("uid map entry of the failed batch was kept")
		}
		if n, _ := tx.OutboxCount("a", "INBOX"); n != 0 {
			t.Errorf("outbox has %d entries, want 0", n)
		}
		if c, _ := tx.Counters("a", "INBOX"); c.Delivered != 10 {
			t.Errorf("Delivered = %d, want 10", c.Delivered)
		}
		if recs, _ := tx.ThreadRecords([]string{"t@x"}); recs != nil {
			t.Errorf("thread of the failed batch was kept: %v", recs)
		}
		if fs, _ := tx.Folders("a"); !reflect.DeepEqual(fs, []string{"INBOX"}) {
			t.Errorf("Folders(a) = %v, want [INBOX]", fs)
		}
		return nil
	})
}

func TestUpdatePanicRollsBack(t *testing.T) {
	s := openTest(t)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic did not propagate")
			}
		}()
		_ = s.Update(func(tx *Tx) error {
			if err := writeBatch(tx, "a", "INBOX", 1, 1, 5); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	view(t, s, func(tx *Tx) error {
		if st, _ := tx.Folder("a", "INBOX"); st.LastUID != 0 {
			t.Fatalf("LastUID after panicking Update = %d, want 0", st.LastUID)
		}
		return nil
	})
}

func TestResetFolder(t *testing.T) {
	s := openTest(t)
	update(t, s, func(tx *Tx) error {
		if err := writeBatch(tx, "a", "INBOX", 1, 1, 5); err != nil {
			return err
		}
		if err := writeBatch(tx, "a", "Sent", 1, 1, 3); err != nil {
			return err
		}
		if err := tx.PutOutbox("a", "INBOX", 6, OutboxEntry{Key: "a/INBOX/1/6"}); err != nil {
			return err
		}
		if err := tx.PutDeadLetter("a", "INBOX", 7, DeadLetter{Key: "k7", Reason: "bad"}); err != nil {
			return err
		}
		st, _ := tx.Folder("a", "INBOX")
		st.LastSyncAt, st.HighestModSeq, st.UIDNext = at(5), 99, 8
		return tx.PutFolder("a", "INBOX", st)
	})
	update(t, s, func(tx *Tx) error { return tx.ResetFolder("a", "INBOX", 2) })
	view(t, s, func(tx *Tx) error {
		st, err := tx.Folder("a", "INBOX")
		if err != nil {
			return err
		}
		if st.UIDValidity != 2 || st.LastUID != 0 || st.HighestModSeq != 0 || st.UIDNext != 0 {
			t.Errorf("cursor after reset = %+v, want validity 2 and the rest 0", st)
		}
		if !st.LastSyncAt.Equal(at(5)) || st.UpdatedAt.IsZero() {
			t.Errorf("cursor after reset = %+v, want LastSyncAt kept and UpdatedAt set", st)
		}
		if _, ok, _ := tx.UIDKey("a", "INBOX", 1); ok {
			t.Error("uid map survived the reset")
		}
		if n, _ := tx.OutboxCount("a", "INBOX"); n != 0 {
			t.Errorf("outbox has %d entries after reset, want 0", n)
		}
		if n, _ := tx.DeadLetterCount("a", "INBOX"); n != 0 {
			t.Errorf("dead letters: %d after reset, want 0", n)
		}
		if _, ok, _ := tx.Ledger("a/INBOX/1/3"); !ok {
			t.Error("ledger entry lost by the reset; it would be delivered again")
		}
		if c, _ := tx.Counters("a", "INBOX"); c.Delivered != 5 {
			t.Errorf("Delivered after reset = %d, want 5 (kept)", c.Delivered)
		}
		if st, _ := tx.Folder("a", "Sent"); st.LastUID != 3 {
			t.Errorf("other folder's LastUID = %d, want 3 (untouched)", st.LastUID)
		}
		if _, ok, _ := tx.UIDKey("a", "Sent", 3); !ok {
			t.Error("other folder's uid map was cleared")
		}
		return nil
	})
	// The folder works as before under the new validity.
	update(t, s, func(tx *Tx) error { return writeBatch(tx, "a", "INBOX", 2, 1, 2) })
	// Resetting a folder never seen just creates its cursor.
	update(t, s, func(tx *Tx) error { return tx.ResetFolder("a", "New", 9) })
	view(t, s, func(tx *Tx) error {
		if st, _ := tx.Folder("a", "New"); st.UIDValidity != 9 {
			t.Errorf("new folder validity = %d, want 9", st.UIDValidity)
		}
		return nil
	})
}

// Values returned by a Tx must not alias bbolt's mmap: later writes that
// reuse those pages must not change them.
func TestValuesSafeAfterTx(t *testing.T) {
	s := openTest(t)
	orig := LedgerEntry{Status: StatusDelivered, Activity: "first", MessageID: "m@x",
		Records: []sink.Record{{Kind: "contact", ID: "1"}}, Events: map[string]string{"e": "1"}}
	update(t, s, func(tx *Tx) error {
		if err := tx.PutLedger("k", orig); err != nil {
			return err
		}
		if err := tx.PutUID("a", "INBOX", 1, "key-one"); err != nil {
			return err
		}
		return tx.PutKV("kv", []byte("value-one"))
	})
	var (
		e   LedgerEntry
		key string
		kv  []byte
		rng []string
	)
	view(t, s, func(tx *Tx) (err error) {
		e, _, err = tx.Ledger("k")
		if err != nil {
			return err
		}
		key, _, err = tx.UIDKey("a", "INBOX", 1)
		if err != nil {
			return err
		}
		kv, _, err = tx.GetKV("kv")
		if err != nil {
			return err
		}
		return tx.UIDRange("a", "INBOX", 1, 1, func(_ uint32, k string) error { rng = append(rng, k); return nil })
	})
	// Overwrite everything, and churn enough to reuse freed pages.
	for i := 0; i < 20; i++ {
		update(t, s, func(tx *Tx) error {
			if err := tx.PutLedger("k", LedgerEntry{Status: StatusRetracted, Activity: "XXXXX", MessageID: "ZZZ"}); err != nil {
				return err
			}
			if err := tx.PutUID("a", "INBOX", 1, "XXXXXXX"); err != nil {
				return err
			}
			if err := tx.PutKV("kv", []byte("XXXXXXXXX")); err != nil {
				return err
			}
			return writeBatch(tx, "b", "INBOX", 1, uint32(i*50+1), uint32(i*50+50))
		})
	}
	if !reflect.DeepEqual(e, orig) {
		t.Errorf("ledger entry read earlier changed to %+v", e)
	}
	if key != "key-one" || string(kv) != "value-one" || len(rng) != 1 || rng[0] != "key-one" {
		t.Errorf("values read earlier changed: key %q, kv %q, range %q", key, kv, rng)
	}
	// Mutating what was returned must not change what is stored.
	kv[0] = '!'
	view(t, s, func(tx *Tx) error {
		v, _, _ := tx.GetKV("kv")
		if string(v) != "XXXXXXXXX" {
			t.Errorf("GetKV() = %q after mutating an earlier result", v)
		}
		return nil
	})
}

func TestInvalidInputs(t *testing.T) {
	s := openTest(t)
	cases := map[string]func(tx *Tx) error{
		"PutFolder empty account": func(tx *Tx) error { return tx.PutFolder("", "INBOX", FolderState{}) },
		"PutFolder empty folder":  func(tx *Tx) error { return tx.PutFolder("a", "", FolderState{}) },
		"Folder empty folder":     func(tx *Tx) error { _, err := tx.Folder("a", ""); return err },
		"ResetFolder empty":       func(tx *Tx) error { return tx.ResetFolder("", "", 1) },
		"Folders empty":           func(tx *Tx) error { _, err := tx.Folders(""); return err },
		"DeleteAccount empty":     func(tx *Tx) error { return tx.DeleteAccount("") },
		"PutUID uid 0":            func(tx *Tx) error { return tx.PutUID("a", "INBOX", 0, "k") },
		"PutUID empty key":        func(tx *Tx) error { return tx.PutUID("a", "INBOX", 1, "") },
		"UIDKey uid 0":            func(tx *Tx) error { _, _, err := tx.UIDKey("a", "INBOX", 0); return err },
		"DeleteUID uid 0":         func(tx *Tx) error { return tx.DeleteUID("a", "INBOX", 0) },
		"UIDRange empty":          func(tx *Tx) error { return tx.UIDRange("a", "", 1, 2, nil) },
		"PutLedger empty key":     func(tx *Tx) error { return tx.PutLedger("", LedgerEntry{Status: StatusDelivered}) },
		"PutLedger bad status":    func(tx *Tx) error { return tx.PutLedger("k", LedgerEntry{Status: "sent"}) },
		"PutLedger empty status":  func(tx *Tx) error { return tx.PutLedger("k", LedgerEntry{}) },
		"PutLedger huge key": func(tx *Tx) error {
			return tx.PutLedger(string(make([]byte, 40000)), LedgerEntry{Status: StatusDelivered})
		},
		"Ledger empty key": func(tx *Tx) error { _, _, err := tx.Ledger(""); return err },
		"AddProvenance uid 0": func(tx *Tx) error {
			_, err := tx.AddProvenance("k", sink.Provenance{Account: "a", Folder: "f"})
			return err
		},
		"AddProvenance no acct":   func(tx *Tx) error { _, err := tx.AddProvenance("k", sink.Provenance{Folder: "f", UID: 1}); return err },
		"RemoveProvenance uid 0":  func(tx *Tx) error { _, _, err := tx.RemoveProvenance("k", "a", "f", 0); return err },
		"PutOutbox uid 0":         func(tx *Tx) error { return tx.PutOutbox("a", "INBOX", 0, OutboxEntry{Key: "k"}) },
		"PutOutbox empty key":     func(tx *Tx) error { return tx.PutOutbox("a", "INBOX", 1, OutboxEntry{}) },
		"DeleteOutbox uid 0":      func(tx *Tx) error { return tx.DeleteOutbox("a", "INBOX", 0) },
		"Outbox empty account":    func(tx *Tx) error { return tx.Outbox("", "INBOX", nil) },
		"OutboxCount empty":       func(tx *Tx) error { _, err := tx.OutboxCount("a", ""); return err },
		"PutDeadLetter uid 0":     func(tx *Tx) error { return tx.PutDeadLetter("a", "INBOX", 0, DeadLetter{}) },
		"DeleteDeadLetter uid 0":  func(tx *Tx) error { return tx.DeleteDeadLetter("a", "INBOX", 0) },
		"DeadLetters empty":       func(tx *Tx) error { return tx.DeadLetters("a", "", nil) },
		"DeadLetterCount empty":   func(tx *Tx) error { _, err := tx.DeadLetterCount("", "x"); return err },
		"AddCounters empty":       func(tx *Tx) error { return tx.AddCounters("", "f", Counters{}) },
		"Counters empty":          func(tx *Tx) error { _, err := tx.Counters("a", ""); return err },
		"AccountCounters empty":   func(tx *Tx) error { _, err := tx.AccountCounters(""); return err },
		"PutBackfill empty id":    func(tx *Tx) error { return tx.PutBackfill(BackfillJob{}) },
		"Backfill empty id":       func(tx *Tx) error { _, _, err := tx.Backfill(""); return err },
		"DeleteBackfill empty id": func(tx *Tx) error { return tx.DeleteBackfill("") },
		"PutKV empty key":         func(tx *Tx) error { return tx.PutKV("", nil) },
		"GetKV empty key":         func(tx *Tx) error { _, _, err := tx.GetKV(""); return err },
		"DeleteKV empty key":      func(tx *Tx) error { return tx.DeleteKV("") },
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.Update(fn)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s = %v, want ErrInvalid", name, err)
			}
		})
	}
}

func TestWriteInViewFails(t *testing.T) {
	s := openTest(t)
	err := s.View(func(tx *Tx) error {
		if tx.Writable() {
			t.Error("View's Tx is writable")
		}
		return tx.PutFolder("a", "INBOX", FolderState{LastUID: 1})
	})
	if err == nil {
		t.Fatal("PutFolder in a View succeeded")
	}
}

func TestErrorsNameWhatTheyConcern(t *testing.T) {
	s := openTest(t)
	err := s.Update(func(tx *Tx) error { return tx.PutUID("sales", "INBOX/Archiv", 0, "k") })
	if got, want := fmt.Sprint(err), `account "sales" folder "INBOX/Archiv": put uid: invalid argument: uid 0`; got != want {
		t.Fatalf("error = %q, want %q", got, want)
	}
	err = s.Update(func(tx *Tx) error {
		_, err := tx.AddProvenance("key-1", sink.Provenance{Account: "a", Folder: "f", UID: 1})
		return err
	})
	if got, want := fmt.Sprint(err), `ledger "key-1": add provenance: not found`; got != want {
		t.Fatalf("error = %q, want %q", got, want)
	}
}

// Folder workers share one Store from several goroutines.
func TestConcurrentWorkers(t *testing.T) {
	s := openTest(t)
	const workers, batches, size = 4, 20, 25
	errs := make(chan error, workers+1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a status reader running alongside
		defer close(done)
		for i := 0; i < 10_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := s.View(func(tx *Tx) error {
				accts, err := tx.Accounts()
				for _, a := range accts {
					if _, err := tx.AccountCounters(a); err != nil {
						return err
					}
				}
				return err
			})
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			folder := fmt.Sprintf("F%d", w)
			for i := 0; i < batches; i++ {
				from := uint32(i*size + 1)
				if err := s.Update(func(tx *Tx) error { return writeBatch(tx, "a", folder, 1, from, from+size-1) }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-done
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	view(t, s, func(tx *Tx) error {
		c, err := tx.AccountCounters("a")
		if err != nil {
			return err
		}
		if got, want := c.Delivered, int64(workers*batches*size); got != want {
			t.Fatalf("Delivered = %d, want %d", got, want)
		}
		return nil
	})
}
