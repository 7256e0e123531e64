package outbound

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/sink"
)

var testAcct = &config.Account{ID: "sales", Username: "sales@acme.example", SMTP: config.SMTP{Host: "smtp.acme.example", Port: 465, TLS: "implicit"}}

var composeNow = time.Date(2026, 3, 4, 10, 11, 12, 0, time.FixedZone("CET", 3600))

func TestComposeStructuredShapes(t *testing.T) {
	tests := []struct {
		name     string
		req      Request
		wantType string
		parts    []string // content types of the leaf parts, in order
	}{
		{"text only", Request{To: []string{"b@x.example"}, Text: "hi"}, "text/plain", nil},
		{"html only", Request{To: []string{"b@x.example"}, HTML: "<p>hi</p>"}, "text/html", nil},
		{"alternative", Request{To: []string{"b@x.example"}, Text: "hi", HTML: "<p>hi</p>"}, "multipart/alternative", []string{"text/plain", "text/html"}},
		{"text and attachment", Request{To: []string{"b@x.example"}, Text: "hi", Attachments: []Attachment{{Filename: "offer.pdf", Content: []byte("%PDF")}}},
			"multipart/mixed", []string{"text/plain", "application/pdf"}},
		{"both and attachment", Request{To: []string{"b@x.example"}, Text: "hi", HTML: "<b>hi</b>", Attachments: []Attachment{{Filename: "a.bin", ContentType: "application/x-thing", Content: []byte{0, 1, 2}}}},
			"multipart/mixed", []string{"text/plain", "text/html", "application/x-thing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.IdempotencyKey = "k"
			if err := tt.req.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			out, err := compose(testAcct, &tt.req, composeNow)
			if err != nil {
				t.Fatalf("compose() = %v", err)
			}
			mr, err := mail.CreateReader(bytes.NewReader(out.wire))
			if err != nil {
				t.Fatalf("the composed message does not parse: %v", err)
			}
			if ct, _, _ := mr.Header.ContentType(); ct != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
			}
			var parts []string
			for {
				p, err := mr.NextPart()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("NextPart() = %v", err)
				}
				ct, _, _ := p.Header.(interface {
					ContentType() (string, map[string]string, error)
				}).ContentType()
				parts = append(parts, ct)
			}
			if tt.parts != nil && strings.Join(parts, ",") != strings.Join(tt.parts, ",") {
				t.Errorf("parts = %v, want %v", parts, tt.parts)
			}
			if d, _ := mr.Header.Date(); !d.Equal(composeNow) {
				t.Errorf("Date = %v, want %v", d, composeNow)
			}
			if !bytes.Contains(out.wire, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(out.wire, []byte("\r\n"), nil), []byte("\n")) {
				t.Error("message has bare LF line ends")
			}
		})
	}
}

func TestComposeStructuredHeaders(t *testing.T) {
	req := Request{
		To: []string{"Bob <bob@x.example>"}, Bcc: []string{"audit@acme.example", "BOB@x.example"},
		Subject: "Grüße", Text: "hi", InReplyTo: "orig@x.example", References: []string{"<root@x.example>", "orig@x.example"},
		IdempotencyKey: "k",
	}
	out, err := compose(testAcct, &req, composeNow)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(out.rcpts, ","), "bob@x.example,audit@acme.example"; got != want {
		t.Errorf("envelope = %s, want %s (deduplicated case-insensitively)", got, want)
	}
	if out.from != "sales@acme.example" {
		t.Errorf("MAIL FROM = %q, want the account's username", out.from)
	}
	if h := headerValue(out.wire, "Bcc"); h != "" {
		t.Errorf("wire has Bcc %q", h)
	}
	if h := headerValue(out.copy, "Bcc"); !strings.Contains(h, "audit@acme.example") {
		t.Errorf("Sent copy Bcc = %q, want the bcc recipients", h)
	}
	if !bytes.HasSuffix(out.copy, out.wire) {
		t.Error("the Sent copy is not the wire message with a Bcc field on top")
	}
	if h := headerValue(out.wire, "In-Reply-To"); h != "<orig@x.example>" {
		t.Errorf("In-Reply-To = %q", h)
	}
	if h := headerValue(out.wire, "References"); h != "<root@x.example> <orig@x.example>" {
		t.Errorf("References = %q", h)
	}
	if h := headerValue(out.wire, "Subject"); !strings.HasPrefix(h, "=?utf-8?") {
		t.Errorf("Subject = %q, want an RFC 2047 encoded word", h)
	}
	id := identify(out.copy)
	if !strings.HasSuffix(id.messageID, "@acme.example") || headerValue(out.wire, "Message-Id") != "<"+id.messageID+">" {
		t.Errorf("Message-ID %q / header %q", id.messageID, headerValue(out.wire, "Message-Id"))
	}
	if identify(out.wire).key != id.key {
		t.Error("the wire message and the Sent copy have different keys")
	}
}

func TestComposeFromRequired(t *testing.T) {
	acct := &config.Account{ID: "x", Username: "alice"}
	req := Request{To: []string{"b@x.example"}, Text: "hi", IdempotencyKey: "k"}
	_, err := compose(acct, &req, composeNow)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "from" {
		t.Fatalf("compose() = %v, want a FieldError on from", err)
	}
	req.From = "Alice <alice@acme.example>"
	out, err := compose(acct, &req, composeNow)
	if err != nil || out.from != "alice@acme.example" {
		t.Fatalf("compose() = %v, %v; want from alice@acme.example", out, err)
	}
}

func TestComposeRaw(t *testing.T) {
	raw := "From: Sales <sales@acme.example>\nTo: bob@x.example\nBcc: hidden@acme.example\nX-Custom:  kept   as is\nSubject: hi\n\nbody line\n"
	req := Request{Raw: []byte(raw), IdempotencyKey: "k"}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := compose(testAcct, &req, composeNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(out.rcpts, ","); got != "bob@x.example,hidden@acme.example" {
		t.Errorf("envelope = %s", got)
	}
	if headerValue(out.wire, "Bcc") != "" || headerValue(out.copy, "Bcc") != "hidden@acme.example" {
		t.Errorf("Bcc: wire %q, copy %q; want only in the copy", headerValue(out.wire, "Bcc"), headerValue(out.copy, "Bcc"))
	}
	if !bytes.Contains(out.wire, []byte("X-Custom:  kept   as is\r\n")) {
		t.Errorf("a field was rewritten:\n%s", out.wire)
	}
	if !bytes.HasSuffix(out.wire, []byte("\r\n\r\nbody line\r\n")) {
		t.Errorf("body or line ends changed:\n%q", out.wire)
	}
	if headerValue(out.wire, "Message-Id") == "" || headerValue(out.wire, "Date") == "" {
		t.Errorf("Message-ID or Date not added:\n%s", out.wire)
	}
	if !out.date.Equal(composeNow) {
		t.Errorf("date = %v, want now", out.date)
	}

	// Envelope recipients given with raw replace the header's.
	req.To = []string{"other@x.example"}
	out, err = compose(testAcct, &req, composeNow)
	if err != nil || strings.Join(out.rcpts, ",") != "other@x.example" {
		t.Errorf("envelope override = %v, %v", out.rcpts, err)
	}
}

func TestComposeRawKeepsItsIDAndDate(t *testing.T) {
	raw := "Message-ID: <given@acme.example>\r\nDate: Mon, 02 Mar 2026 09:00:00 +0000\r\nFrom: sales@acme.example\r\nTo: bob@x.example\r\n\r\nx"
	out, err := compose(testAcct, &Request{Raw: []byte(raw), IdempotencyKey: "k"}, composeNow)
	if err != nil {
		t.Fatal(err)
	}
	if string(out.wire) != raw {
		t.Errorf("a complete raw message was changed:\n%q\nwant\n%q", out.wire, raw)
	}
	if id := identify(out.copy); id.messageID != "given@acme.example" {
		t.Errorf("Message-ID = %q", id.messageID)
	}
	if want := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC); !out.date.Equal(want) {
		t.Errorf("date = %v, want %v", out.date, want)
	}
}

func TestComposeRawErrors(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"no from", "To: b@x.example\r\n\r\nx", "raw: the message has no From"},
		{"no recipients", "From: a@acme.example\r\n\r\nx", "raw: the message has no recipients"},
		{"bad header", " folded first line\r\n\r\n", "raw: the message header does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compose(testAcct, &Request{Raw: []byte(tt.raw), IdempotencyKey: "k"}, composeNow)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("compose() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestComposeTooLarge(t *testing.T) {
	// Within the limit as given; over it once Message-ID and Date are added.
	head := "From: a@acme.example\r\nTo: b@x.example\r\n\r\n"
	raw := append([]byte(head), bytes.Repeat([]byte("x"), MaxMessageBytes-len(head))...)
	req := Request{Raw: raw, IdempotencyKey: "k"}
	if err := req.Validate(); err != nil {
		t.Fatalf("Validate() = %v for a message of exactly the limit", err)
	}
	if _, err := compose(testAcct, &req, composeNow); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("compose() = %v, want ErrTooLarge", err)
	}
	req.Raw = append(raw, 'x')
	if err := req.Validate(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Validate() = %v for a raw message over the limit, want ErrTooLarge", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Request{To: []string{"b@x.example"}, Text: "hi", IdempotencyKey: "k"}
	tests := []struct {
		name  string
		edit  func(r *Request)
		field string
	}{
		{"ok", func(*Request) {}, ""},
		{"key with space", func(r *Request) { r.IdempotencyKey = "a b" }, "idempotency_key"},
		{"key too long", func(r *Request) { r.IdempotencyKey = strings.Repeat("k", MaxIdempotencyKeyLen+1) }, "idempotency_key"},
		{"subject line break", func(r *Request) { r.Subject = "a\r\nBcc: evil@x.example" }, "subject"},
		{"attachment name", func(r *Request) { r.Attachments = []Attachment{{Filename: "../etc/passwd", Content: []byte("x")}} }, "attachments[0].filename"},
		{"attachment type", func(r *Request) {
			r.Attachments = []Attachment{{Filename: "a", ContentType: "nonsense", Content: []byte("x")}}
		}, "attachments[0].content_type"},
		{"attachment content", func(r *Request) { r.Attachments = []Attachment{{Filename: "a"}} }, "attachments[0].content"},
		{"record kind", func(r *Request) { r.Records = []sink.Record{{ID: "1"}} }, "records[0].kind"},
		{"raw with html", func(r *Request) { r.To, r.Text, r.HTML, r.Raw = nil, "", "<p>", []byte("x") }, "html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			err := r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Validate() = %v, want a FieldError on %s", err, tt.field)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	a := Request{To: []string{"b@x.example"}, Text: "hi", IdempotencyKey: "k1"}
	b := a
	b.IdempotencyKey = "k2"
	if a.fingerprint() != b.fingerprint() {
		t.Error("the fingerprint depends on the idempotency key")
	}
	b.Text = "hi!"
	if a.fingerprint() == b.fingerprint() {
		t.Error("the fingerprint ignores the text")
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{fieldErr("to", "x"), true},
		{ErrUnknownAccount, true},
		{ErrCannotSend, true},
		{&OutcomeUnknownError{MessageID: "m"}, true},
		{ErrKeyReused, true},
		{ErrTooLarge, true},
		{&SMTPError{Code: 550}, true},
		{&SMTPError{Code: 451}, false},
		{&SMTPError{Err: io.EOF}, false},
		{ErrInProgress, false},
		{&SentCopyError{MessageID: "m", Err: io.EOF}, false},
		{&IMAPError{Err: io.EOF}, false},
	}
	for _, tt := range tests {
		if got := Permanent(tt.err); got != tt.want {
			t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestToCRLF(t *testing.T) {
	for in, want := range map[string]string{"a\nb\r\nc\n": "a\r\nb\r\nc\r\n", "\n": "\r\n", "x": "x", "\r\n\r\n": "\r\n\r\n"} {
		if got := string(toCRLF([]byte(in))); got != want {
			t.Errorf("toCRLF(%q) = %q, want %q", in, got, want)
		}
	}
}
