package outbound

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/mailsync/mailsync/sync/sink"
)

// RawMail is a complete message a CRM handed over by SMTP (the SMTP front).
type RawMail struct {
	// Data is the RFC 5322 message as received.
	Data []byte
	// Rcpts are the envelope recipients (RCPT TO); the message's own To,
	// Cc and Bcc are not consulted.
	Rcpts []string
	// Records are the CRM records the message belongs to, when the CRM
	// adapter can tell (SentLinker); they go into the ledger.
	Records []sink.Record
}

// SentLinker is the capability of CRM sinks that can tell which records a
// message submitted through the SMTP front belongs to, from the Message-ID
// the CRM gave it (Odoo: the mail.message that produced it). The daemon
// finds it by type assertion on the sink.
type SentLinker interface {
	// LinkSent returns the records for the message, none when the CRM does
	// not know it. An error is logged and the mail is sent unlinked.
	LinkSent(ctx context.Context, account, messageID string) ([]sink.Record, error)
}

// rawKeyPrefix marks the idempotency keys of mail that came over SMTP, so
// they cannot collide with keys a CRM chose for the JSON API.
const rawKeyPrefix = "smtp:"

// SendRaw sends a message a CRM submitted over SMTP, as Send does, but
// idempotent by the message's Message-ID rather than by a key the client
// chose: a CRM that resubmits a message after a lost reply (rebuilt with a
// new Date or MIME boundary, as CRMs do) gets the first result back and
// nothing is sent again. A message without a Message-ID is idempotent on
// its exact bytes. Errors are Send's; ErrKeyReused cannot happen.
func (s *Sender) SendRaw(ctx context.Context, account string, m RawMail) (*Result, error) {
	key, fp := rawIdentity(m.Data)
	req := Request{Raw: m.Data, To: m.Rcpts, Records: m.Records, IdempotencyKey: key}
	return s.send(ctx, account, req, func() string { return fp })
}

// RawMessageID returns the Message-ID of data without brackets, "" when it
// has none that parses.
func RawMessageID(data []byte) string {
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return ""
	}
	h := mail.Header{Header: message.Header{Header: th}}
	id, err := h.MessageID()
	if err != nil {
		return ""
	}
	return id
}

// rawIdentity derives the idempotency key and the fingerprint of a raw
// message: from its Message-ID when it has a usable one, else from its
// bytes. A Message-ID that is not a valid key (too long, odd characters)
// is hashed.
func rawIdentity(data []byte) (key, fingerprint string) {
	id := RawMessageID(data)
	if id == "" {
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:16])
		return rawKeyPrefix + "sha256:" + h, "content:" + h
	}
	key = rawKeyPrefix + id
	if validateIdempotencyKey(key) != nil {
		sum := sha256.Sum256([]byte(id))
		key = rawKeyPrefix + "msgid-sha256:" + hex.EncodeToString(sum[:16])
	}
	return key, "message-id:" + id
}
