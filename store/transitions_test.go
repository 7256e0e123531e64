package store

import (
	"errors"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// TestTransitions runs every verb from every status and checks the status
// it leaves and whether it was refused.
func TestTransitions(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	cp := sink.Provenance{Account: "sales", Folder: "INBOX", UIDValidity: 7, UID: 17}
	verbs := map[string]func(tx *Tx) error{
		"deliver": func(tx *Tx) error {
			_, err := tx.Deliver("k", Delivery{Copy: cp, Receipt: sink.Receipt{Activity: "A1"}, At: at})
			return err
		},
		"sent": func(tx *Tx) error { return tx.SentFromCRM("k", Sent{Idem: "i", At: at}) },
		"skip": func(tx *Tx) error { _, err := tx.Skip("k", Outcome{Copy: cp, Reason: "r", At: at}); return err },
		"exclude": func(tx *Tx) error {
			_, err := tx.Exclude("k", Outcome{Copy: cp, Reason: "r", At: at})
			return err
		},
		"deadletter": func(tx *Tx) error {
			_, err := tx.DeadLetter(17, DeadLetter{Key: "k", Provenance: cp, Reason: "r", At: at})
			return err
		},
		"drop": func(tx *Tx) error {
			return tx.DropDeadLetter("sales", "INBOX", 17, DeadLetter{Key: "k", Provenance: cp, Reason: "r"}, at)
		},
		"retract": func(tx *Tx) error { _, err := tx.Retract("k", "private", "user", at); return err },
		"unlink":  func(tx *Tx) error { _, err := tx.Unlink("k", at); return err },
	}
	const none = LedgerStatus("")
	tests := []struct {
		from LedgerStatus
		verb string
		want LedgerStatus
		err  error
	}{
		{none, "deliver", StatusDelivered, nil},
		{StatusSkipped, "deliver", StatusDelivered, nil},
		{StatusExcluded, "deliver", StatusDelivered, nil},
		{StatusDeadLetter, "deliver", StatusDelivered, nil},
		{StatusDelivered, "deliver", StatusDelivered, nil},
		{StatusRetracted, "deliver", StatusRetracted, ErrRefused},
		{none, "sent", StatusDelivered, nil},
		{StatusSkipped, "sent", StatusDelivered, nil},
		{StatusRetracted, "sent", StatusRetracted, nil},
		{none, "skip", StatusSkipped, nil},
		{StatusExcluded, "skip", StatusSkipped, nil},
		{StatusDelivered, "skip", StatusDelivered, nil},
		{StatusRetracted, "skip", StatusRetracted, nil},
		{StatusDeadLetter, "skip", StatusDeadLetter, nil},
		{none, "exclude", StatusExcluded, nil},
		{StatusSkipped, "exclude", StatusExcluded, nil},
		{StatusDelivered, "exclude", StatusDelivered, nil},
		{StatusRetracted, "exclude", StatusRetracted, nil},
		{none, "deadletter", StatusDeadLetter, nil},
		{StatusSkipped, "deadletter", StatusDeadLetter, nil},
		{StatusDelivered, "deadletter", StatusDelivered, nil},
		{StatusRetracted, "deadletter", StatusRetracted, nil},
		{StatusDeadLetter, "drop", StatusExcluded, nil},
		{StatusDelivered, "drop", StatusDelivered, nil},
		{StatusRetracted, "drop", StatusRetracted, nil},
		{StatusDelivered, "retract", StatusRetracted, nil},
		{StatusRetracted, "retract", StatusRetracted, nil},
		{StatusSkipped, "retract", StatusSkipped, ErrRefused},
		{StatusDeadLetter, "retract", StatusDeadLetter, ErrRefused},
		{none, "retract", none, ErrNotFound},
		{StatusDelivered, "unlink", StatusRetracted, nil},
		{StatusRetracted, "unlink", StatusRetracted, nil},
		{StatusExcluded, "unlink", StatusExcluded, ErrRefused},
		{none, "unlink", none, ErrNotFound},
	}
	for _, tt := range tests {
		name := string(tt.from) + "/" + tt.verb
		if tt.from == none {
			name = "none/" + tt.verb
		}
		t.Run(name, func(t *testing.T) {
			s := openTest(t)
			err := s.Update(func(tx *Tx) error {
				if tt.from != none {
					if err := tx.PutLedger("k", LedgerEntry{Status: tt.from, Activity: "A0"}); err != nil {
						return err
					}
				}
				if err := verbs[tt.verb](tx); !errors.Is(err, tt.err) {
					t.Errorf("%s from %q: error %v, want %v", tt.verb, tt.from, err, tt.err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var got LedgerEntry
			s.View(func(tx *Tx) error { got, _, _ = tx.Ledger("k"); return nil })
			if got.Status != tt.want {
				t.Fatalf("%s from %q: status %q, want %q", tt.verb, tt.from, got.Status, tt.want)
			}
		})
	}
}

// TestDeliverRetriedDeadLetter: a dead letter delivered on retry leaves the
// list, and the counters move it from dead-lettered to delivered.
func TestDeliverRetriedDeadLetter(t *testing.T) {
	s := openTest(t)
	cp := sink.Provenance{Account: "sales", Folder: "INBOX", UIDValidity: 7, UID: 3}
	var sum Counters
	err := s.Update(func(tx *Tx) error {
		d, err := tx.DeadLetter(3, DeadLetter{Key: "k", Provenance: cp, Reason: "refused"})
		if err != nil {
			return err
		}
		sum = sum.Add(d)
		if d, err = tx.Deliver("k", Delivery{Copy: cp, Receipt: sink.Receipt{Activity: "A", Created: []sink.Record{{Kind: sink.KindLead, ID: "L1"}}}}); err != nil {
			return err
		}
		sum = sum.Add(d)
		n, err := tx.DeadLetterCount("sales", "INBOX")
		if got, want := n, 0; got != want {
			t.Errorf("DeadLetterCount() = %d, want %d", got, want)
		}
		e, _, _ := tx.Ledger("k")
		if len(e.Created) != 1 || len(e.Provenance) != 1 {
			t.Errorf("entry %+v: want the created lead and one copy", e)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sum, (Counters{Delivered: 1}); got != want {
		t.Fatalf("counters = %+v, want %+v", got, want)
	}
}

// SentFromCRM sets the flags baseline of a new entry (so the worker does not
// report the Sent copy's \Seen as a user's change) and keeps the one a copy
// synced first recorded.
func TestSentFromCRMFlagsBaseline(t *testing.T) {
	s := openAt(t, t.TempDir()+"/state.db", Options{})
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	cp := sink.Provenance{Account: "sales", Folder: "Sent", UIDValidity: 7, UID: 3}
	if err := s.Update(func(tx *Tx) error {
		if err := tx.SentFromCRM("new", Sent{Idem: "i", Flags: `\Seen`, At: at}); err != nil {
			return err
		}
		if _, err := tx.Deliver("synced", Delivery{Copy: cp, Flags: `\Seen \Flagged`, At: at}); err != nil {
			return err
		}
		return tx.SentFromCRM("synced", Sent{Idem: "j", Flags: `\Seen`, At: at})
	}); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"new": `\Seen`, "synced": `\Seen \Flagged`} {
		var e LedgerEntry
		view(t, s, func(tx *Tx) error { e, _, _ = tx.Ledger(key); return nil })
		if got := e.Events["flags"]; got != want {
			t.Errorf("%s: flags baseline = %q, want %q", key, got, want)
		}
	}
}
