package outbound

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/sink"
)

// A send moves through these states, each committed to the state file
// before the step that follows it, so a crash anywhere leaves a record that
// says what may have happened:
//
//	(none) ──► submitting ──SMTP accepted──► submitted ──Sent copy + ledger──► done
//	               │
//	               └──SMTP refused, nothing sent──► (none: the key may be used again)
//
// submitting: the message may be on its way. A retry does not resubmit: it
// looks for the Message-ID in the Sent folder and finishes the send if it is
// there, else answers ErrOutcomeUnknown. Resubmitting would risk a second
// copy in every recipient's mailbox, which is worse than asking a person.
//
// submitted: the SMTP server accepted the message. A retry only files the
// Sent copy (after looking for one an interrupted APPEND may have left) and
// records the ledger entry.
//
// done: the result is stored; a retry gets it back and nothing is done.
const (
	stateSubmitting = "submitting"
	stateSubmitted  = "submitted"
	stateDone       = "done"
)

// sendState is the kv record of one idempotency key, as JSON.
type sendState struct {
	State string `json:"state"`
	// Fingerprint identifies the request, so a key reused for other mail
	// is refused.
	Fingerprint string        `json:"fingerprint"`
	MessageID   string        `json:"message_id"`
	Key         string        `json:"key"`
	ContentHash string        `json:"content_hash,omitempty"`
	Date        time.Time     `json:"date"`
	Records     []sink.Record `json:"records,omitempty"`
	// SMTPReply is the server's answer to the message data (often a
	// queue id), for an operator tracing the mail.
	SMTPReply string    `json:"smtp_reply,omitempty"`
	Result    *Result   `json:"result,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

// stateKey and copyKey name the kv entries of one idempotency key. Account
// ids cannot contain '/', so the idempotency key that follows cannot be
// confused with another account's.
func stateKey(account, idem string) string { return "send/" + account + "/" + idem }

// copyKey holds the Sent copy's bytes while the send is unfinished: a retry
// in submitted must file exactly what was sent, and composing again would
// change the MIME boundaries. It is deleted when the send is done.
func copyKey(account, idem string) string { return "send-copy/" + account + "/" + idem }

func (s *Sender) loadState(account, idem string) (*sendState, []byte, error) {
	var st *sendState
	var copy []byte
	err := s.store.View(func(tx *store.Tx) error {
		b, ok, err := tx.GetKV(stateKey(account, idem))
		if err != nil || !ok {
			return err
		}
		st = new(sendState)
		if err := json.Unmarshal(b, st); err != nil {
			return fmt.Errorf("decode send state: %w", err)
		}
		if st.State != stateDone {
			copy, _, err = tx.GetKV(copyKey(account, idem))
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load send state: %w", err)
	}
	return st, copy, nil
}

func putState(tx *store.Tx, account, idem string, st *sendState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode send state: %w", err)
	}
	return tx.PutKV(stateKey(account, idem), b)
}

// begin records submitting, with the copy, before anything is sent.
func (s *Sender) begin(account, idem string, st *sendState, copy []byte) error {
	return s.store.Update(func(tx *store.Tx) error {
		if _, ok, err := tx.GetKV(stateKey(account, idem)); err != nil || ok {
			if ok {
				// Only one process holds the state file and acquire()
				// serialises a key within it, so this is a bug.
				return fmt.Errorf("send state for %q appeared while it was locked", idem)
			}
			return err
		}
		if err := putState(tx, account, idem, st); err != nil {
			return err
		}
		return tx.PutKV(copyKey(account, idem), copy)
	})
}

// abandon forgets a send the server refused: nothing went out, so the key
// may be used again once the cause is fixed.
func (s *Sender) abandon(account, idem string) error {
	return s.store.Update(func(tx *store.Tx) error {
		if err := tx.DeleteKV(copyKey(account, idem)); err != nil {
			return err
		}
		return tx.DeleteKV(stateKey(account, idem))
	})
}

// markSubmitted records the server's acceptance and the ledger entry in
// one transaction. The ledger entry comes now, before the Sent copy exists,
// so that a folder worker that sees the copy first (IDLE on Sent wakes it
// at APPEND) already finds the key delivered and does not log the mail as
// if the user had sent it from a mail client.
func (s *Sender) markSubmitted(account, idem string, st *sendState) error {
	now := time.Now().UTC()
	st.State, st.Updated = stateSubmitted, now
	return s.store.Update(func(tx *store.Tx) error {
		if err := recordLedger(tx, idem, st, nil, now); err != nil {
			return err
		}
		return putState(tx, account, idem, st)
	})
}

// complete records the copy's provenance in the ledger and the result under
// the idempotency key, in one transaction, and drops the stored copy.
func (s *Sender) complete(account, idem string, st *sendState, prov *sink.Provenance) error {
	now := time.Now().UTC()
	st.State, st.Updated = stateDone, now
	return s.store.Update(func(tx *store.Tx) error {
		if err := recordLedger(tx, idem, st, prov, now); err != nil {
			return err
		}
		if err := putState(tx, account, idem, st); err != nil {
			return err
		}
		return tx.DeleteKV(copyKey(account, idem))
	})
}

// recordLedger records the message as sent for the CRM (store.SentFromCRM
// holds the rules: merged with an entry that exists, a retraction kept).
func recordLedger(tx *store.Tx, idem string, st *sendState, prov *sink.Provenance, now time.Time) error {
	return tx.SentFromCRM(st.Key, store.Sent{
		Idem: idem, MessageID: st.MessageID, ContentHash: st.ContentHash,
		// Sent mail is filed \Seen (by us, and by servers that file it
		// themselves), so that is not a change the user made.
		Records: st.Records, Copy: prov, Flags: string(imap.FlagSeen), At: now,
	})
}
