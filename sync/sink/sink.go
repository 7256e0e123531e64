// Package sink defines what mailsync hands to a CRM and the contract every CRM
// adapter keeps. Adapters live in sub-packages (jsonl, webhook, ...) and
// register a factory by name so the daemon can build one from config.
package sink

import (
	"context"
	"errors"
	"fmt"
	"sort"
	stdsync "sync"
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

// Record is a CRM record a message is linked to.
type Record struct {
	Kind string `json:"kind"` // contact, lead, company, deal
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Intent asks the adapter to create a record (auto-create).
type Intent struct {
	Action string            `json:"action"` // create
	Kind   string            `json:"kind"`   // lead, contact, deal
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
}

// Receipt is what the sink returns for a delivered message (an activity id,
// a file offset); it is kept in the delivery ledger.
type Receipt string

// Sink receives messages.
//
// Deliver must be idempotent on m.Key: delivering the same key twice must
// leave one activity in the CRM. It returns an error wrapping ErrPermanent
// when retrying cannot help (the message is dead-lettered), a *RetryAfterError
// when the CRM asked to wait, and any other error for a transient failure.
type Sink interface {
	Deliver(ctx context.Context, m *Message) (Receipt, error)
	Close() error
}

// BatchSink is implemented by sinks that deliver many messages at once more
// cheaply (one fsync per batch). The result slice has one entry per message,
// in order, with the same error contract as Sink.Deliver.
type BatchSink interface {
	DeliverBatch(ctx context.Context, ms []*Message) []Result
}

// Result is the outcome of delivering one message of a batch.
type Result struct {
	Receipt Receipt
	Err     error
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

// DeliverAll delivers ms through s, as one batch when s supports it.
func DeliverAll(ctx context.Context, s Sink, ms []*Message) []Result {
	if bs, ok := s.(BatchSink); ok {
		return bs.DeliverBatch(ctx, ms)
	}
	res := make([]Result, len(ms))
	for i, m := range ms {
		if err := ctx.Err(); err != nil {
			for j := i; j < len(ms); j++ {
				res[j].Err = err
			}
			break
		}
		res[i].Receipt, res[i].Err = s.Deliver(ctx, m)
	}
	return res
}

// Factory builds a sink from its config section (already validated and
// decoded by the adapter's own Config type).
type Factory func(settings map[string]any) (Sink, error)

var (
	registryMu stdsync.Mutex
	registry   = map[string]Factory{}
)

// Register makes an adapter available by name. It panics on duplicates, as
// database/sql does, because that is a programming error.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("sink: Register called twice for " + name)
	}
	registry[name] = f
}

// New builds the sink registered under name.
func New(name string, settings map[string]any) (Sink, error) {
	registryMu.Lock()
	f, ok := registry[name]
	registryMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown sink type %q (known: %v)", name, Names())
	}
	return f(settings)
}

// Names lists the registered adapters.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
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
