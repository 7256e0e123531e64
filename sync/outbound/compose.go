package outbound

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"mime"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/mailsync/mailsync/config"
)

// outgoing is a composed message ready for SMTP and for the Sent folder.
type outgoing struct {
	// from is the envelope sender (MAIL FROM), a bare address.
	from string
	// rcpts are the envelope recipients (RCPT TO), without duplicates.
	rcpts []string
	// wire is what is submitted: no Bcc header.
	wire []byte
	// copy is what the Sent folder keeps: wire plus the Bcc header, so a
	// reader of Sent sees every recipient, as mail clients do.
	copy []byte
	// date is the Date header, used as the copy's internal date.
	date time.Time
}

// compose builds the message for req, sent from acct, at now.
func compose(acct *config.Account, req *Request, now time.Time) (*outgoing, error) {
	var out *outgoing
	var err error
	if len(req.Raw) > 0 {
		out, err = composeRaw(req, now)
	} else {
		out, err = composeStructured(acct, req, now)
	}
	if err != nil {
		return nil, err
	}
	if len(out.copy) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: the composed message is %d bytes, at most %d", ErrTooLarge, len(out.copy), MaxMessageBytes)
	}
	return out, nil
}

func composeStructured(acct *config.Account, req *Request, now time.Time) (*outgoing, error) {
	fromText := req.From
	field := "from"
	if fromText == "" {
		fromText = acct.FromAddress()
		if fromText == "" {
			return nil, fieldErr("from", "is required: account %s has no address of its own (set smtp.from in its config)", acct.ID)
		}
		field = acct.Path() + ".smtp.from"
	}
	from, err := parseAddress(field, fromText)
	if err != nil {
		return nil, err
	}
	to, err := parseList("to", req.To)
	if err != nil {
		return nil, err
	}
	cc, err := parseList("cc", req.Cc)
	if err != nil {
		return nil, err
	}
	bcc, err := parseList("bcc", req.Bcc)
	if err != nil {
		return nil, err
	}
	var h mail.Header
	h.SetDate(now)
	h.SetAddressList("From", []*mail.Address{from})
	if len(to) > 0 {
		h.SetAddressList("To", to)
	}
	if len(cc) > 0 {
		h.SetAddressList("Cc", cc)
	}
	h.SetSubject(req.Subject)
	h.SetMessageID(newMessageID(from.Address))
	if req.InReplyTo != "" {
		id, err := msgID("in_reply_to", req.InReplyTo)
		if err != nil {
			return nil, err
		}
		h.SetMsgIDList("In-Reply-To", []string{id})
	}
	if len(req.References) > 0 {
		ids := make([]string, 0, len(req.References))
		for i, r := range req.References {
			id, err := msgID(fmt.Sprintf("references[%d]", i), r)
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		h.SetMsgIDList("References", ids)
	}
	var body bytes.Buffer
	if err := writeBody(&body, h, req); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	out := &outgoing{from: from.Address, rcpts: envelope(to, cc, bcc), wire: toCRLF(body.Bytes()), date: now}
	out.copy = out.wire
	if len(bcc) > 0 {
		var bh mail.Header
		bh.SetAddressList("Bcc", bcc)
		out.copy = prependHeader(bh.Header.Header, out.wire)
	}
	return out, nil
}

// writeBody writes the header and the MIME body: one text part, an
// alternative of text and HTML, and a mixed wrapper when there are
// attachments.
func writeBody(w io.Writer, h mail.Header, req *Request) error {
	textPart := func(ct string) mail.InlineHeader {
		var ih mail.InlineHeader
		ih.SetContentType(ct, map[string]string{"charset": "utf-8"})
		return ih
	}
	writeInline := func(iw *mail.InlineWriter) error {
		for _, p := range []struct{ ct, body string }{{"text/plain", req.Text}, {"text/html", req.HTML}} {
			pw, err := iw.CreatePart(textPart(p.ct))
			if err != nil {
				return err
			}
			if _, err := io.WriteString(pw, p.body); err != nil {
				return err
			}
			if err := pw.Close(); err != nil {
				return err
			}
		}
		return iw.Close()
	}
	single := func() (string, string) {
		if req.HTML == "" {
			return "text/plain", req.Text
		}
		return "text/html", req.HTML
	}
	both := req.Text != "" && req.HTML != ""

	if len(req.Attachments) == 0 {
		if both {
			iw, err := mail.CreateInlineWriter(w, h)
			if err != nil {
				return err
			}
			return writeInline(iw)
		}
		ct, text := single()
		h.SetContentType(ct, map[string]string{"charset": "utf-8"})
		bw, err := mail.CreateSingleInlineWriter(w, h)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(bw, text); err != nil {
			return err
		}
		return bw.Close()
	}

	mw, err := mail.CreateWriter(w, h)
	if err != nil {
		return err
	}
	if both {
		iw, err := mw.CreateInline()
		if err != nil {
			return err
		}
		if err := writeInline(iw); err != nil {
			return err
		}
	} else {
		ct, text := single()
		pw, err := mw.CreateSingleInline(textPart(ct))
		if err != nil {
			return err
		}
		if _, err := io.WriteString(pw, text); err != nil {
			return err
		}
		if err := pw.Close(); err != nil {
			return err
		}
	}
	for _, a := range req.Attachments {
		var ah mail.AttachmentHeader
		ct := a.ContentType
		if ct == "" {
			ct = mime.TypeByExtension(filepath.Ext(a.Filename))
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		// Validate checked a given type; TypeByExtension gives valid ones.
		t, params, _ := mime.ParseMediaType(ct)
		ah.SetContentType(t, params)
		ah.SetFilename(a.Filename)
		aw, err := mw.CreateAttachment(ah)
		if err != nil {
			return err
		}
		if _, err := aw.Write(a.Content); err != nil {
			return err
		}
		if err := aw.Close(); err != nil {
			return err
		}
	}
	return mw.Close()
}

// composeRaw prepares a message the CRM built itself: line ends made CRLF,
// Message-ID and Date added when missing, Bcc taken out of what is
// submitted. Fields the CRM wrote are kept byte for byte.
func composeRaw(req *Request, now time.Time) (*outgoing, error) {
	raw := toCRLF(req.Raw)
	br := bufio.NewReader(bytes.NewReader(raw))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fieldErr("raw", "the message header does not parse: %v", err)
	}
	body, _ := io.ReadAll(br) // reading from memory cannot fail
	h := mail.Header{Header: message.Header{Header: th}}
	froms, err := h.AddressList("From")
	if err != nil || len(froms) == 0 {
		return nil, fieldErr("raw", "the message has no From address that parses")
	}
	if id, err := h.MessageID(); err != nil || id == "" {
		// A missing or unusable Message-ID would leave the ledger key to
		// depend on exact header bytes; give the message a proper one.
		h.Del("Message-Id")
		h.Add("Message-Id", "<"+newMessageID(froms[0].Address)+">")
	}
	date, err := h.Date()
	if err != nil || date.IsZero() {
		if h.Get("Date") == "" {
			h.SetDate(now)
		}
		date = now
	}
	var to, cc, bcc []*mail.Address
	if len(req.To)+len(req.Cc)+len(req.Bcc) > 0 {
		if to, err = parseList("to", req.To); err != nil {
			return nil, err
		}
		if cc, err = parseList("cc", req.Cc); err != nil {
			return nil, err
		}
		if bcc, err = parseList("bcc", req.Bcc); err != nil {
			return nil, err
		}
	} else {
		for _, f := range []struct {
			name string
			dst  *[]*mail.Address
		}{{"To", &to}, {"Cc", &cc}, {"Bcc", &bcc}} {
			l, err := h.AddressList(f.name)
			if err != nil {
				return nil, fieldErr("raw", "the %s header does not parse: %v", f.name, err)
			}
			*f.dst = l
		}
	}
	rcpts := envelope(to, cc, bcc)
	if len(rcpts) == 0 {
		return nil, fieldErr("raw", "the message has no recipients (no To, Cc or Bcc, and none given in to, cc or bcc)")
	}
	var copyBuf bytes.Buffer
	if err := textproto.WriteHeader(&copyBuf, h.Header.Header); err != nil {
		return nil, fieldErr("raw", "the message header cannot be written back: %v", err)
	}
	copyBuf.Write(body)
	wh := h.Header.Header.Copy()
	wh.Del("Bcc")
	var wire bytes.Buffer
	_ = textproto.WriteHeader(&wire, wh) // the same fields wrote fine above
	wire.Write(body)
	return &outgoing{from: froms[0].Address, rcpts: rcpts, wire: wire.Bytes(), copy: copyBuf.Bytes(), date: date}, nil
}

// prependHeader puts the fields of h on top of msg's header.
func prependHeader(h textproto.Header, msg []byte) []byte {
	var b bytes.Buffer
	_ = textproto.WriteHeader(&b, h) // fields set through mail.Header are valid
	top := bytes.TrimSuffix(b.Bytes(), []byte("\r\n"))
	return append(top, msg...)
}

// toCRLF turns bare LF line ends into CRLF: SMTP and IMAP both want CRLF,
// and the ledger key must be computed on the bytes the server stores.
func toCRLF(b []byte) []byte {
	bare := 0
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		if i+j == 0 || b[i+j-1] != '\r' {
			bare++
		}
		i += j + 1
	}
	if bare == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+bare)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

func parseAddress(field, s string) (*mail.Address, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || !strings.Contains(a.Address, "@") {
		return nil, fieldErr(field, "%q is not an email address", s)
	}
	return a, nil
}

func parseList(field string, list []string) ([]*mail.Address, error) {
	out := make([]*mail.Address, 0, len(list))
	for i, s := range list {
		a, err := parseAddress(fmt.Sprintf("%s[%d]", field, i), s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// envelope lists the recipients once each, in order.
func envelope(lists ...[]*mail.Address) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, a := range l {
			k := strings.ToLower(a.Address)
			if !seen[k] {
				seen[k] = true
				out = append(out, a.Address)
			}
		}
	}
	return out
}

// msgID checks a Message-ID given by the CRM and strips its brackets.
func msgID(field, s string) (string, error) {
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	if id == "" || strings.ContainsAny(id, " \t\r\n<>") || !strings.Contains(id, "@") {
		return "", fieldErr(field, "%q is not a Message-ID", s)
	}
	return id, nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newMessageID returns a random id at the sender's domain (RFC 5322
// §3.6.4): 128 random bits make a collision as unlikely as a UUID's.
func newMessageID(fromAddr string) string {
	domain := "mailsync.invalid"
	if i := strings.LastIndexByte(fromAddr, '@'); i >= 0 && i < len(fromAddr)-1 {
		domain = fromAddr[i+1:]
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strings.ToLower(idEncoding.EncodeToString(b[:])) + "@" + domain
}

// headerBlock returns the header of msg through the blank line that ends
// it, as IMAP BODY[HEADER] returns it.
func headerBlock(msg []byte) []byte {
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+4]
	}
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+2]
	}
	return msg
}
