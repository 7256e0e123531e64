package outbound

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"strings"

	"github.com/mailsync/mailsync/sync/sink"
)

// Limits on a request.
const (
	// MaxMessageBytes caps the composed message, Bcc header included. Most
	// submission servers refuse more than 25 MiB anyway.
	MaxMessageBytes = 25 << 20
	// MaxIdempotencyKeyLen caps the idempotency key (it is part of a
	// state-file key).
	MaxIdempotencyKeyLen = 200
	// maxRecipients caps to+cc+bcc; servers refuse more than ~100 per
	// transaction (RFC 5321 §4.5.3.1.8 asks only for 100).
	maxRecipients = 500
)

// Request is one message to send. Either the structured fields (To, Subject,
// Text, ...) or Raw are given, not both. Its JSON form is the body of
// POST /v1/accounts/{id}/send.
type Request struct {
	// From is "Name <addr>" or "addr"; empty means the account's address
	// (config smtp.from or its email username).
	From string   `json:"from,omitempty"`
	To   []string `json:"to,omitempty"`
	Cc   []string `json:"cc,omitempty"`
	// Bcc recipients get the mail without a Bcc header (RFC 5322 §3.6.3);
	// the Sent copy keeps the header, as mail clients do.
	Bcc     []string `json:"bcc,omitempty"`
	Subject string   `json:"subject,omitempty"`
	// Text and HTML are the bodies; with both the message is
	// multipart/alternative. At least one is required.
	Text string `json:"text,omitempty"`
	HTML string `json:"html,omitempty"`
	// InReplyTo and References are Message-IDs, with or without <>.
	InReplyTo   string       `json:"in_reply_to,omitempty"`
	References  []string     `json:"references,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	// Raw is a complete RFC 5322 message (base64 in JSON). Message-ID and
	// Date are added when missing and a Bcc header is removed from what
	// is submitted. To, Cc and Bcc, when given with Raw, are the envelope
	// recipients instead of the message's own To, Cc and Bcc.
	Raw []byte `json:"raw,omitempty"`
	// Records are the CRM records the message belongs to; the ledger links
	// the message to them, and replies thread to them.
	Records []sink.Record `json:"records,omitempty"`
	// IdempotencyKey is required: a retry with the same key returns the
	// first result and sends nothing again.
	IdempotencyKey string `json:"idempotency_key"`
}

// Attachment is one file.
type Attachment struct {
	Filename string `json:"filename"`
	// ContentType defaults to what the filename's extension says, else
	// application/octet-stream.
	ContentType string `json:"content_type,omitempty"`
	// Content is the file (base64 in JSON).
	Content []byte `json:"content"`
}

// Validate checks what can be checked without the account; addresses are
// parsed when the message is composed. The error is a *FieldError.
func (r *Request) Validate() error {
	if err := validateIdempotencyKey(r.IdempotencyKey); err != nil {
		return err
	}
	for i, rec := range r.Records {
		switch {
		case strings.TrimSpace(string(rec.Kind)) == "":
			return fieldErr(fmt.Sprintf("records[%d].kind", i), "is empty")
		case strings.TrimSpace(rec.ID) == "":
			return fieldErr(fmt.Sprintf("records[%d].id", i), "is empty")
		}
	}
	if n := len(r.To) + len(r.Cc) + len(r.Bcc); n > maxRecipients {
		return fieldErr("to", "%d recipients in to, cc and bcc; at most %d", n, maxRecipients)
	}
	if len(r.Raw) > 0 {
		for _, f := range []struct {
			name string
			set  bool
		}{{"from", r.From != ""}, {"subject", r.Subject != ""}, {"text", r.Text != ""}, {"html", r.HTML != ""},
			{"in_reply_to", r.InReplyTo != ""}, {"references", len(r.References) > 0}, {"attachments", len(r.Attachments) > 0}} {
			if f.set {
				return fieldErr(f.name, "cannot be combined with raw (put it in the raw message)")
			}
		}
		if len(r.Raw) > MaxMessageBytes {
			return fmt.Errorf("%w: raw is %d bytes, at most %d", ErrTooLarge, len(r.Raw), MaxMessageBytes)
		}
		return nil
	}
	if len(r.To)+len(r.Cc)+len(r.Bcc) == 0 {
		return fieldErr("to", "at least one recipient is required (to, cc or bcc)")
	}
	if r.Text == "" && r.HTML == "" {
		return fieldErr("text", "is required (or html)")
	}
	if strings.ContainsAny(r.Subject, "\r\n") {
		return fieldErr("subject", "contains a line break")
	}
	for i, a := range r.Attachments {
		p := fmt.Sprintf("attachments[%d]", i)
		switch {
		case strings.TrimSpace(a.Filename) == "":
			return fieldErr(p+".filename", "is empty")
		case strings.ContainsAny(a.Filename, "\r\n/\\"):
			return fieldErr(p+".filename", "must be a plain file name")
		case a.ContentType != "" && !validMediaType(a.ContentType):
			return fieldErr(p+".content_type", "%q is not a media type such as application/pdf", a.ContentType)
		case a.Content == nil:
			return fieldErr(p+".content", "is missing")
		}
	}
	return nil
}

func validMediaType(s string) bool {
	t, _, err := mime.ParseMediaType(s)
	return err == nil && strings.Contains(t, "/") && !strings.ContainsAny(s, "\r\n")
}

func validateIdempotencyKey(k string) error {
	switch {
	case k == "":
		return fieldErr("idempotency_key", "is required")
	case len(k) > MaxIdempotencyKeyLen:
		return fieldErr("idempotency_key", "is %d bytes, at most %d", len(k), MaxIdempotencyKeyLen)
	}
	for _, c := range []byte(k) {
		if c < 0x21 || c > 0x7e {
			return fieldErr("idempotency_key", "must be printable ASCII without spaces")
		}
	}
	return nil
}

// fingerprint identifies the request's content, so a key reused for
// different mail is refused rather than answered with the old result.
func (r *Request) fingerprint() string {
	c := *r
	c.IdempotencyKey = ""
	b, err := json.Marshal(&c)
	if err != nil {
		// Request holds only strings, byte slices and records: Marshal
		// cannot fail on it.
		panic(fmt.Sprintf("outbound: marshal request: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
