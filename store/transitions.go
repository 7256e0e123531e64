package store

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// The ledger's status rules, in one place. Every change of a ledger entry's
// status goes through one of the verbs below; each takes the caller's Tx so
// many messages are recorded in one Update.
//
//	(none), skipped, excluded, deadletter, delivered ──Deliver──► delivered
//	(none), skipped, excluded, deadletter, delivered ──SentFromCRM──► delivered
//	(none), skipped, excluded ──Skip/Exclude──► skipped / excluded
//	(none), deadletter ──Exclude (operator drop)──► excluded
//	(none), skipped, excluded, deadletter ──DeadLetter──► deadletter
//	delivered ──Retract/Unlink──► retracted
//
// Retracted is final: the user decided the CRM must not have the message,
// and nothing (a racing delivery, a send from the CRM) undoes it. A copy
// that is skipped, excluded or dead-lettered never downgrades a message
// another copy delivered: the entry is left as it is. Moves the table does
// not allow are refused with ErrRefused and write nothing.

// ErrRefused is wrapped by a transition the ledger's rules do not allow
// from the entry's current status; nothing was written.
var ErrRefused = errors.New("transition refused")

func refused(from LedgerStatus, verb string) error {
	if from == "" {
		from = "(none)"
	}
	return fmt.Errorf("%w: %s from %s", ErrRefused, verb, from)
}

// Delivery is what the sink made of one message copy.
type Delivery struct {
	Copy                   sink.Provenance
	Receipt                sink.Receipt
	MessageID, ContentHash string
	// Matched are the matcher's records, kept when the receipt links none.
	Matched []sink.Record
	// Flags are the copy's system flags when it was logged, so a flags
	// event is sent only when the user changes them.
	Flags string
	At    time.Time
}

// Deliver records a message the sink acknowledged: the entry becomes
// delivered with the receipt's activity, linked and created records, the
// copy joins the provenance, the Message-ID is indexed for threading and
// the copy's dead letter (a retried one) leaves the list. delta counts one
// delivery when the status changed (and one dead letter less). Refused
// for a retracted message.
func (t *Tx) Deliver(key string, d Delivery) (delta Counters, err error) {
	e, ok, err := t.Ledger(key)
	if err != nil {
		return Counters{}, err
	}
	if e.Status == StatusRetracted {
		return Counters{}, ledgerErr(key, "deliver", refused(e.Status, "deliver"))
	}
	if !ok || e.FirstSeen.IsZero() {
		e.FirstSeen = d.At
	}
	if e.Status != StatusDelivered {
		delta.Delivered++
	}
	e.Status, e.Reason = StatusDelivered, ""
	if d.Receipt.Activity != "" || e.Activity == "" {
		e.Activity = d.Receipt.Activity
	}
	e.MessageID, e.ContentHash, e.UpdatedAt = d.MessageID, d.ContentHash, d.At
	switch {
	case len(d.Receipt.Linked) > 0:
		e.Records = refs(d.Receipt.Linked)
	case len(d.Matched) > 0:
		e.Records = refs(d.Matched)
	}
	e.Created, _ = mergeRecords(e.Created, refs(d.Receipt.Created))
	if !slices.Contains(e.Provenance, d.Copy) {
		e.Provenance = append(e.Provenance, d.Copy)
	}
	if e.Events == nil {
		e.Events = map[string]string{}
	}
	e.Events["flags"] = d.Flags
	if err := t.PutLedger(key, e); err != nil {
		return Counters{}, err
	}
	if err := t.PutThread(e.MessageID, e.Records); err != nil {
		return Counters{}, err
	}
	had, err := t.hasDeadLetter(d.Copy.Account, d.Copy.Folder, d.Copy.UID)
	if err != nil {
		return Counters{}, err
	}
	if had {
		if err := t.DeleteDeadLetter(d.Copy.Account, d.Copy.Folder, d.Copy.UID); err != nil {
			return Counters{}, err
		}
		delta.DeadLettered--
	}
	return delta, nil
}

// Sent is a message the daemon sent for the CRM: the CRM already logged it,
// so the ledger only learns it (Activity "sent:<idempotency key>").
type Sent struct {
	Idem                   string
	MessageID, ContentHash string
	Records                []sink.Record
	// Copy is the Sent folder's copy, once it is filed; nil before.
	Copy *sink.Provenance
	// Flags are the copy's system flags as filed (`\Seen`), the baseline
	// against which a user's later change becomes a flags event; without
	// it the folder worker would report the \Seen it finds as a change.
	Flags string
	At    time.Time
}

// SentFromCRM records a message sent for the CRM as delivered, merging with
// an entry that exists (another copy synced first): records and the copy
// are added, an existing activity kept. A retracted message stays
// retracted (it still gains the records and the copy).
func (t *Tx) SentFromCRM(key string, s Sent) error {
	e, ok, err := t.Ledger(key)
	if err != nil {
		return err
	}
	if !ok || e.FirstSeen.IsZero() {
		e.FirstSeen = s.At
	}
	if e.Status != StatusRetracted {
		e.Status, e.Reason = StatusDelivered, ""
	}
	if e.Activity == "" {
		e.Activity = "sent:" + s.Idem
	}
	if e.ContentHash == "" {
		e.ContentHash = s.ContentHash
	}
	e.MessageID, e.UpdatedAt = s.MessageID, s.At
	e.Records, _ = mergeRecords(e.Records, refs(s.Records))
	if s.Copy != nil && !slices.Contains(e.Provenance, *s.Copy) {
		e.Provenance = append(e.Provenance, *s.Copy)
	}
	if _, ok := e.Events["flags"]; !ok && s.Flags != "" {
		// A copy synced first set the baseline already; keep that one.
		if e.Events == nil {
			e.Events = map[string]string{}
		}
		e.Events["flags"] = s.Flags
	}
	if err := t.PutLedger(key, e); err != nil {
		return err
	}
	return t.PutThread(s.MessageID, e.Records)
}

// Outcome is a copy kept from the sink (skipped, excluded) with its reason.
type Outcome struct {
	Copy                   sink.Provenance
	Reason                 string
	MessageID, ContentHash string
	At                     time.Time
}

// Skip records a copy not captured. It leaves a delivered, retracted or
// dead-lettered entry as it is; delta counts the folder's skip either way.
func (t *Tx) Skip(key string, o Outcome) (Counters, error) {
	if err := t.countReason(StatusSkipped, o); err != nil {
		return Counters{}, err
	}
	return Counters{Skipped: 1}, t.keep(key, StatusSkipped, o, StatusSkipped, StatusExcluded)
}

// Exclude records a copy a privacy or exclusion rule kept from the sink.
// It leaves a delivered, retracted or dead-lettered entry as it is.
func (t *Tx) Exclude(key string, o Outcome) (Counters, error) {
	if err := t.countReason(StatusExcluded, o); err != nil {
		return Counters{}, err
	}
	return Counters{Excluded: 1}, t.keep(key, StatusExcluded, o, StatusSkipped, StatusExcluded)
}

// DropDeadLetter records that an operator dropped the dead letter at
// account/folder/uid: it leaves the list, and its message becomes excluded
// unless another copy delivered it, so it is not picked up again.
func (t *Tx) DropDeadLetter(account, folder string, uid uint32, d DeadLetter, at time.Time) error {
	if d.Key != "" {
		o := Outcome{Copy: d.Provenance, Reason: "dropped by operator: " + d.Reason, MessageID: d.MessageID, At: at}
		if err := t.keep(d.Key, StatusExcluded, o, StatusSkipped, StatusExcluded, StatusDeadLetter); err != nil {
			return err
		}
	}
	return t.DeleteDeadLetter(account, folder, uid)
}

// keep sets status when the entry is missing or its status is in from, and
// otherwise leaves it alone.
func (t *Tx) keep(key string, status LedgerStatus, o Outcome, from ...LedgerStatus) error {
	e, ok, err := t.Ledger(key)
	if err != nil {
		return err
	}
	if ok && !slices.Contains(from, e.Status) {
		return nil
	}
	if e.FirstSeen.IsZero() {
		e.FirstSeen = o.At
	}
	e.Status, e.Reason, e.UpdatedAt = status, o.Reason, o.At
	if o.MessageID != "" {
		e.MessageID = o.MessageID
	}
	if o.ContentHash != "" {
		e.ContentHash = o.ContentHash
	}
	if o.Copy.UID != 0 && !slices.Contains(e.Provenance, o.Copy) {
		e.Provenance = append(e.Provenance, o.Copy)
	}
	return t.PutLedger(key, e)
}

// DeadLetter parks a copy the sink refused or that could not be processed:
// it joins the folder's dead letters, and the ledger entry (unless another
// copy delivered the message) becomes deadletter with the reason. delta
// counts a dead letter that is new to the list.
func (t *Tx) DeadLetter(uid uint32, d DeadLetter) (delta Counters, err error) {
	acct, folder := d.Provenance.Account, d.Provenance.Folder
	had, err := t.hasDeadLetter(acct, folder, uid)
	if err != nil {
		return Counters{}, err
	}
	if err := t.PutDeadLetter(acct, folder, uid, d); err != nil {
		return Counters{}, err
	}
	if !had {
		delta.DeadLettered++
	}
	if d.Key == "" {
		return delta, nil
	}
	o := Outcome{Copy: d.Provenance, Reason: d.Reason, MessageID: d.MessageID, At: d.At}
	return delta, t.keep(d.Key, StatusDeadLetter, o, StatusSkipped, StatusExcluded, StatusDeadLetter)
}

// Retract records that the CRM removed the activity of a delivered message
// because the user marked it private: it becomes retracted, for good.
// changed is false (and nothing is written) if it already was; any other
// status is refused: there was nothing in the CRM to retract.
func (t *Tx) Retract(key, reason, event string, at time.Time) (changed bool, err error) {
	return t.retract(key, "retract", event, reason, at)
}

// Unlink records that a user unlinked the activity in the CRM: a delivered
// message becomes retracted (never logged again). ErrNotFound for a key
// the ledger does not hold; refused unless delivered or retracted.
func (t *Tx) Unlink(key string, at time.Time) (changed bool, err error) {
	return t.retract(key, "unlinked", at.UTC().Format(time.RFC3339), "unlinked in the CRM", at)
}

func (t *Tx) retract(key, event, value, reason string, at time.Time) (bool, error) {
	e, ok, err := t.Ledger(key)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, ledgerErr(key, event, ErrNotFound)
	}
	if e.Status != StatusDelivered && e.Status != StatusRetracted {
		return false, ledgerErr(key, event, refused(e.Status, event))
	}
	if e.Status == StatusRetracted && e.Events[event] != "" {
		return false, nil
	}
	changed := e.Status == StatusDelivered
	if e.Events == nil {
		e.Events = map[string]string{}
	}
	e.Events[event] = value
	e.Status, e.UpdatedAt = StatusRetracted, at
	if changed {
		e.Reason = reason
	}
	return changed, t.PutLedger(key, e)
}

// RecordEvent notes that a later event of a message (flags, deleted) was
// delivered, so it is sent once. ErrNotFound for a key the ledger lacks.
func (t *Tx) RecordEvent(key, name, value string, at time.Time) error {
	e, ok, err := t.Ledger(key)
	if err != nil {
		return err
	}
	if !ok {
		return ledgerErr(key, "record event", ErrNotFound)
	}
	if e.Events == nil {
		e.Events = map[string]string{}
	}
	e.Events[name], e.UpdatedAt = value, at
	return t.PutLedger(key, e)
}

func (t *Tx) hasDeadLetter(account, folder string, uid uint32) (bool, error) {
	if err := checkFolder(account, folder); err != nil {
		return false, folderErr(account, folder, "get dead letter", err)
	}
	b, err := t.folderSub(account, folder, subDeadLetter, false)
	if err != nil {
		return false, folderErr(account, folder, "get dead letter", err)
	}
	return b != nil && b.Get(uidKey(uid)) != nil, nil
}

// refs reduces records to what the ledger keeps of them.
func refs(rs []sink.Record) []sink.Record {
	if len(rs) == 0 {
		return nil
	}
	out := make([]sink.Record, len(rs))
	for i, r := range rs {
		out[i] = r.Ref()
	}
	return out
}
