package matcher

import "time"

// Address is one participant address as found in a header.
type Address struct {
	// Name is the display name, RFC 2047 decoded.
	Name string `json:"name,omitempty"`
	// Email is the normalised address (NormalizeAddress), before any
	// plus-address folding, which is the matcher's policy.
	Email string `json:"email"`
}

// Message is what the matcher needs from a message header. ParseHeader builds
// one; callers holding a parsed envelope may fill it themselves.
type Message struct {
	// MessageID is the raw Message-ID value without angle brackets or
	// surrounding space. It is kept even when malformed, because the store
	// indexes whatever the server handed out.
	MessageID  string   `json:"message_id,omitempty"`
	InReplyTo  []string `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`

	Subject string    `json:"subject,omitempty"`
	Date    time.Time `json:"date,omitzero"`

	From    []Address `json:"from,omitempty"`
	Sender  []Address `json:"sender,omitempty"`
	ReplyTo []Address `json:"reply_to,omitempty"`
	To      []Address `json:"to,omitempty"`
	Cc      []Address `json:"cc,omitempty"`
	Bcc     []Address `json:"bcc,omitempty"`

	// ReturnPath is the Return-Path value as written, trimmed of space;
	// "<>" marks a bounce (RFC 5321 section 4.5.5).
	ReturnPath    string `json:"return_path,omitempty"`
	HasReturnPath bool   `json:"has_return_path,omitempty"`

	ListID          string `json:"list_id,omitempty"`
	ListUnsubscribe string `json:"list_unsubscribe,omitempty"`
	// AutoSubmitted is the lower-cased keyword of Auto-Submitted (RFC 3834),
	// without parameters.
	AutoSubmitted string `json:"auto_submitted,omitempty"`
	// Precedence is the lower-cased Precedence value (RFC 2076, informal).
	Precedence string `json:"precedence,omitempty"`
	// ContentType is the lower-cased media type; ReportType its report-type
	// parameter (RFC 6522), "delivery-status" for a DSN.
	ContentType string `json:"content_type,omitempty"`
	ReportType  string `json:"report_type,omitempty"`
	// AutoReply names the vendor auto-reply header found, as "Name: value"
	// (X-Autoreply, X-Autorespond, ...).
	AutoReply string `json:"auto_reply,omitempty"`

	// ParseErrors lists what could not be parsed; the rest of the message
	// is still usable.
	ParseErrors []string `json:"parse_errors,omitempty"`
}

// Role is the header a participant was found in.
type Role string

// Participant roles.
const (
	RoleFrom    Role = "from"
	RoleSender  Role = "sender"
	RoleReplyTo Role = "reply-to"
	RoleTo      Role = "to"
	RoleCc      Role = "cc"
	RoleBcc     Role = "bcc"
)

// participants calls fn for each address with its role, in header order of
// importance: From, Sender, Reply-To, To, Cc, Bcc.
func (m *Message) participants(fn func(Role, Address)) {
	for _, l := range [...]struct {
		r Role
		a []Address
	}{{RoleFrom, m.From}, {RoleSender, m.Sender}, {RoleReplyTo, m.ReplyTo}, {RoleTo, m.To}, {RoleCc, m.Cc}, {RoleBcc, m.Bcc}} {
		for _, a := range l.a {
			fn(l.r, a)
		}
	}
}
