package store

import (
	"fmt"
	"slices"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// LedgerStatus is what became of a message.
type LedgerStatus string

const (
	// StatusDelivered: the sink acknowledged the message (Activity set).
	StatusDelivered LedgerStatus = "delivered"
	// StatusExcluded: a privacy or exclusion rule kept it from the sink.
	StatusExcluded LedgerStatus = "excluded"
	// StatusSkipped: nothing matched, or it was out of scope.
	StatusSkipped LedgerStatus = "skipped"
	// StatusDeadLetter: refused permanently or unprocessable (Reason set).
	StatusDeadLetter LedgerStatus = "deadletter"
	// StatusRetracted: delivered, then retracted from the CRM.
	StatusRetracted LedgerStatus = "retracted"
)

// Valid reports whether s is one of the statuses above.
func (s LedgerStatus) Valid() bool {
	switch s {
	case StatusDelivered, StatusExcluded, StatusSkipped, StatusDeadLetter, StatusRetracted:
		return true
	}
	return false
}

// LedgerEntry records what reached the sink, or was kept from it, for one
// message key. The ledger is global, shared by all accounts, so the same
// message in two mailboxes is delivered once; Provenance lists its copies.
// It is stored in a binary form (codec.go); the JSON tags are for output
// such as a status command's --json.
type LedgerEntry struct {
	Status LedgerStatus `json:"status"`
	// Activity is the CRM's id of the logged activity (sink.Receipt).
	Activity    string `json:"activity,omitempty"`
	Reason      string `json:"reason,omitempty"`
	MessageID   string `json:"message_id,omitempty"`
	ContentHash string `json:"content_hash,omitempty"`
	// Records are the records the activity is linked to.
	Records []sink.Record `json:"records,omitempty"`
	// Created are the records the CRM created for this message.
	Created    []sink.Record     `json:"created,omitempty"`
	Provenance []sink.Provenance `json:"provenance,omitempty"`
	FirstSeen  time.Time         `json:"first_seen,omitzero"`
	UpdatedAt  time.Time         `json:"updated_at,omitzero"`
	// Events maps the event keys of later events already delivered
	// (retract, flags, deleted) to their receipts, so they are sent once.
	Events map[string]string `json:"events,omitempty"`
}

func ledgerErr(key, op string, err error) error {
	return fmt.Errorf("ledger %q: %s: %w", clip(key), op, err)
}

// Ledger returns the entry for a message key; ok is false if there is none.
func (t *Tx) Ledger(key string) (e LedgerEntry, ok bool, err error) {
	if err := checkName("message key", key); err != nil {
		return LedgerEntry{}, false, ledgerErr(key, "get", err)
	}
	b, err := t.top(bucketLedger)
	if err != nil {
		return LedgerEntry{}, false, ledgerErr(key, "get", err)
	}
	if b == nil {
		return LedgerEntry{}, false, nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return LedgerEntry{}, false, nil
	}
	e, err = decodeLedger(v)
	if err != nil {
		return LedgerEntry{}, false, ledgerErr(key, "get", err)
	}
	return e, true, nil
}

// PutLedger stores the entry for a message key as given, replacing any
// (set FirstSeen and UpdatedAt yourself). The status must be Valid.
func (t *Tx) PutLedger(key string, e LedgerEntry) error {
	if err := checkName("message key", key); err != nil {
		return ledgerErr(key, "put", err)
	}
	v, err := encodeLedger(e)
	if err != nil {
		return ledgerErr(key, "put", err)
	}
	b, err := t.top(bucketLedger)
	if err == nil {
		err = b.Put([]byte(key), v)
	}
	if err != nil {
		return ledgerErr(key, "put", err)
	}
	return nil
}

func checkProvenance(p sink.Provenance) error {
	if err := checkFolder(p.Account, p.Folder); err != nil {
		return err
	}
	return checkUID(p.UID)
}

// AddProvenance records another mailbox copy of a ledgered message. A copy is
// identified by account, folder, UIDVALIDITY and UID together; added is false
// if the entry already lists it. ErrNotFound if key has no ledger entry.
func (t *Tx) AddProvenance(key string, p sink.Provenance) (added bool, err error) {
	if err := checkProvenance(p); err != nil {
		return false, ledgerErr(key, "add provenance", err)
	}
	e, ok, err := t.Ledger(key)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, ledgerErr(key, "add provenance", ErrNotFound)
	}
	if slices.Contains(e.Provenance, p) {
		return false, nil
	}
	e.Provenance = append(e.Provenance, p)
	return true, t.PutLedger(key, e)
}

// RemoveProvenance drops the copies at account/folder/uid (under any
// UIDVALIDITY), as after an expunge. It reports whether any was removed and
// how many copies remain: 0 means the last mailbox copy is gone.
// ErrNotFound if key has no ledger entry.
func (t *Tx) RemoveProvenance(key, account, folder string, uid uint32) (removed bool, remaining int, err error) {
	if err := checkFolder(account, folder); err != nil {
		return false, 0, ledgerErr(key, "remove provenance", err)
	}
	if err := checkUID(uid); err != nil {
		return false, 0, ledgerErr(key, "remove provenance", err)
	}
	e, ok, err := t.Ledger(key)
	if err != nil {
		return false, 0, err
	}
	if !ok {
		return false, 0, ledgerErr(key, "remove provenance", ErrNotFound)
	}
	n := len(e.Provenance)
	e.Provenance = slices.DeleteFunc(e.Provenance, func(p sink.Provenance) bool {
		return p.Account == account && p.Folder == folder && p.UID == uid
	})
	if len(e.Provenance) == n {
		return false, n, nil
	}
	return true, len(e.Provenance), t.PutLedger(key, e)
}
