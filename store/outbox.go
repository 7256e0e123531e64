package store

import (
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// OutboxEntry is a message fetched but not yet acknowledged by the sink. It
// survives restarts, and so does its backoff (NextAttempt).
type OutboxEntry struct {
	Key         string    `json:"key"`
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	FirstSeen   time.Time `json:"first_seen,omitzero"`
}

// PutOutbox parks uid in the folder's outbox, replacing any entry for it.
func (t *Tx) PutOutbox(account, folder string, uid uint32, e OutboxEntry) error {
	if err := checkName("outbox message key", e.Key); err != nil {
		return folderErr(account, folder, "put outbox", err)
	}
	return t.putUIDJSON(account, folder, subOutbox, uid, e, "put outbox")
}

// DeleteOutbox removes uid from the outbox; a missing uid is not an error.
func (t *Tx) DeleteOutbox(account, folder string, uid uint32) error {
	return t.deleteUIDEntry(account, folder, subOutbox, uid, "delete outbox")
}

// Outbox calls fn for each outbox entry in UID order; fn may write to the
// outbox (entries are read first). fn's error stops and is returned as is.
func (t *Tx) Outbox(account, folder string, fn func(uid uint32, e OutboxEntry) error) error {
	return forEachUIDJSON(t, account, folder, subOutbox, "scan outbox", fn)
}

// OutboxCount returns the number of outbox entries.
func (t *Tx) OutboxCount(account, folder string) (int, error) {
	return t.countSub(account, folder, subOutbox, "count outbox")
}

// DeadLetter is a message the sink refused permanently or that could not be
// processed, kept with its reason for the operator.
type DeadLetter struct {
	Key        string          `json:"key"`
	Provenance sink.Provenance `json:"provenance"`
	Reason     string          `json:"reason"`
	At         time.Time       `json:"at,omitzero"`
	Attempts   int             `json:"attempts,omitempty"`
	Subject    string          `json:"subject,omitempty"`
	MessageID  string          `json:"message_id,omitempty"`
}

// PutDeadLetter records uid as dead-lettered, replacing any entry for it.
func (t *Tx) PutDeadLetter(account, folder string, uid uint32, d DeadLetter) error {
	return t.putUIDJSON(account, folder, subDeadLetter, uid, d, "put dead letter")
}

// DeleteDeadLetter removes uid's dead letter; a missing uid is not an error.
func (t *Tx) DeleteDeadLetter(account, folder string, uid uint32) error {
	return t.deleteUIDEntry(account, folder, subDeadLetter, uid, "delete dead letter")
}

// DeadLetters calls fn for each dead letter in UID order; fn may write to
// the dead letters (entries are read first). fn's error is returned as is.
func (t *Tx) DeadLetters(account, folder string, fn func(uid uint32, d DeadLetter) error) error {
	return forEachUIDJSON(t, account, folder, subDeadLetter, "scan dead letters", fn)
}

// DeadLetterCount returns the number of dead letters.
func (t *Tx) DeadLetterCount(account, folder string) (int, error) {
	return t.countSub(account, folder, subDeadLetter, "count dead letters")
}
