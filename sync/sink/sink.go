// Package sink defines what mailsync hands to a CRM and the contract every CRM
// adapter keeps. An adapter is one sub-package (jsonl, webhook, odoo, ...)
// that registers itself by name (registry.go); beyond Sink it may implement
// optional capabilities that callers find by type assertion: a Directory the
// matcher looks records up in (defined in package matcher), Unlinker,
// Checker, and those the send path defines.
package sink

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EventType says what a Message reports to the CRM.
type EventType string

const (
	// EventMessage logs a message as a CRM activity.
	EventMessage EventType = "message"
	// EventRetract asks the CRM to remove an activity the user marked private.
	EventRetract EventType = "retract"
	// EventFlags reports \Seen, \Answered or \Flagged changes.
	EventFlags EventType = "flags"
	// EventDeleted reports that the last mailbox copy was expunged.
	EventDeleted EventType = "deleted"
	// EventProvenance reports another mailbox copy of a logged message (a
	// colleague's mailbox, or a folder the message was moved to): the CRM
	// adds it to the activity's provenance; it is never a second activity.
	EventProvenance EventType = "provenance"
)

// Direction of a message relative to the organisation that owns the mailboxes.
type Direction string

const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
	Internal Direction = "internal"
)

// Provenance names one mailbox copy of a message.
type Provenance struct {
	Account     string `json:"account"`
	Folder      string `json:"folder"`
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
}

// Address is one participant.
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Kind is the kind of a CRM record.
type Kind string

// Record kinds every adapter maps its CRM's objects to.
const (
	KindContact Kind = "contact"
	KindLead    Kind = "lead"
	KindCompany Kind = "company"
	KindDeal    Kind = "deal"
)

// Valid reports whether k is one of the known record kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindContact, KindLead, KindCompany, KindDeal:
		return true
	}
	return false
}

// Deal is a deal attached to a contact or company record.
type Deal struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Open      bool      `json:"open"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Record is one CRM record: what a directory finds, what the matcher links a
// message to, what the ledger remembers and what an adapter created. It is
// the one record type of mailsync. Records a directory returns are shared:
// callers treat them as read-only.
type Record struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Email is the address the record was found by (contacts and leads).
	Email string `json:"email,omitempty"`
	// Company is the ID of the company record a contact or lead belongs to.
	Company string `json:"company,omitempty"`
	// CompanyName is the company's display name, when the directory knows it.
	CompanyName string `json:"company_name,omitempty"`
	// Domain is the domain a company record was found by.
	Domain string `json:"domain,omitempty"`
	// Deals lists the deals of a contact or company, open or not.
	Deals []Deal `json:"deals,omitempty"`
	// Via names the look-up that found the record ("odoo res.partner
	// email_normalized"), for match --explain. Never stored.
	Via string `json:"via,omitempty"`
}

// Key identifies a record independently of how it was found: "kind:id".
func (r Record) Key() string { return string(r.Kind) + ":" + r.ID }

// Ref is the record reduced to what identifies it (kind, id, name): the
// form kept in the ledger and sent in a Match.
func (r Record) Ref() Record { return Record{Kind: r.Kind, ID: r.ID, Name: r.Name} }

// Intent asks the adapter to create a record (auto-create).
type Intent struct {
	Action string            `json:"action"` // create
	Kind   Kind              `json:"kind"`   // lead, contact, deal
	Fields map[string]string `json:"fields,omitempty"`
}

// Match is the matcher's verdict as the CRM sees it.
type Match struct {
	Rule    string   `json:"rule,omitempty"`
	Records []Record `json:"records,omitempty"`
	Intents []Intent `json:"intents,omitempty"`
}

// Message is one event for the CRM. For EventMessage every field is filled
// as far as the mail could be parsed; other events carry Key, Provenance and
// what changed.
type Message struct {
	// Key is the idempotency key. It identifies the message itself, not the
	// mailbox copy: the same message in two folders or mailboxes has one Key.
	// Event keys for non-message events are derived from it by the caller.
	Key        string       `json:"key"`
	Event      EventType    `json:"event"`
	Provenance []Provenance `json:"provenance"`
	Direction  Direction    `json:"direction,omitempty"`
	MessageID  string       `json:"message_id,omitempty"`
	Date       time.Time    `json:"date,omitzero"`
	From       []Address    `json:"from,omitempty"`
	To         []Address    `json:"to,omitempty"`
	Cc         []Address    `json:"cc,omitempty"`
	Bcc        []Address    `json:"bcc,omitempty"`
	Subject    string       `json:"subject,omitempty"`
	Match      *Match       `json:"match,omitempty"`
	Flags      []string     `json:"flags,omitempty"`
	Size       int64        `json:"size,omitempty"`
	// Body is the raw RFC 5322 message, possibly cut at the size cap
	// (Truncated) or left out by the account's privacy level (BodyOmitted).
	Body        []byte `json:"body,omitempty"`
	Truncated   bool   `json:"truncated,omitempty"`
	BodyOmitted bool   `json:"body_omitted,omitempty"`
	// ParseErrors lists what could not be parsed; the message is delivered
	// with what could.
	ParseErrors []string `json:"parse_errors,omitempty"`

	prepared prepared // see Preparer
}

// Receipt is what the CRM made of one delivered message. It is kept in the
// delivery ledger.
type Receipt struct {
	// Activity is the CRM's id for the logged activity (a JSONL offset, an
	// Odoo mail.message id, ...); several ids are comma-separated.
	Activity string `json:"activity,omitempty"`
	// Linked lists the records the activity is attached to in the CRM, when
	// the adapter knows better than the Match (it added the open deal).
	Linked []Record `json:"linked,omitempty"`
	// Created lists the records the CRM created for this message
	// (auto-create intents).
	Created []Record `json:"created,omitempty"`
}

// Sink receives messages in batches.
//
// Deliver returns one Result per message, in order. It must be idempotent on
// Message.Key: delivering the same key twice must leave one activity in the
// CRM (search before create where the CRM does not de-duplicate). A result's
// error wraps ErrPermanent when retrying cannot help (the message is
// dead-lettered), is a *RetryAfterError when the CRM asked to wait, and is
// any other error for a transient failure. A cancelled ctx fails the
// messages not yet delivered with ctx.Err().
type Sink interface {
	Deliver(ctx context.Context, ms []*Message) []Result
	Close() error
}

// Result is the outcome of delivering one message of a batch.
type Result struct {
	Receipt Receipt
	Err     error
}

// DeliverOne delivers a single message.
func DeliverOne(ctx context.Context, s Sink, m *Message) (Receipt, error) {
	r := s.Deliver(ctx, []*Message{m})
	if len(r) != 1 {
		return Receipt{}, fmt.Errorf("sink returned %d results for 1 message", len(r))
	}
	return r[0].Receipt, r[0].Err
}

// ErrPermanent marks failures that retrying cannot fix.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that IsPermanent reports true.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// IsPermanent reports whether err wraps ErrPermanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfterError is a transient failure with a wait the CRM asked for.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.After, e.Err)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the wait the CRM asked for, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// Unlinker is implemented by adapters whose CRM can report activities a
// user unlinked from their records. The daemon polls it, takes the logged
// keyword off every mailbox copy (it never deletes mail) and remembers the
// message as retracted so it is not logged again.
type Unlinker interface {
	// Unlinked returns message keys unlinked since the last call that was
	// acknowledged. A non-nil error is transient.
	Unlinked(ctx context.Context) ([]string, error)
	// AckUnlinked confirms keys were handled, so they are not returned again.
	AckUnlinked(ctx context.Context, keys []string) error
}

// Checker is implemented by adapters that can verify, without logging
// anything, that their credentials work and carry the rights delivery
// needs. mailsync check and the daemon's start call it; the error says what
// to fix.
type Checker interface {
	Check(ctx context.Context) error
}
