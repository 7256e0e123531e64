package odoo

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode non-UTF-8 parts
	"github.com/emersion/go-message/mail"
)

// attachment is a file part to upload as an ir.attachment.
type attachment struct {
	name, mime, base64 string
}

// maxTextBytes bounds the text shown in Odoo's chatter; the rest is cut.
const maxTextBytes = 256 << 10

// renderBody returns the HTML body Odoo stores and the attachments that
// fit in maxAtt bytes. A text/plain part is escaped (Odoo does not escape
// text); an HTML-only message is passed as HTML, which Odoo sanitises
// (scripts, handlers and styles removed) on message_post. What cannot be
// parsed is shown as escaped text: nothing is dropped silently.
func renderBody(m *Message, maxAtt int64) (string, []attachment) {
	switch {
	case m.BodyOmitted:
		return "<p><i>Body withheld by mailsync's privacy setting.</i></p>", nil
	case len(m.Body) == 0:
		return "", nil
	}
	var plain, rich string
	var atts []attachment
	var skipped []string
	var used int64
	r, err := mail.CreateReader(bytes.NewReader(m.Body))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return textHTML(string(headless(m.Body))) + note(m), nil
	}
	for i := 0; i < 1000; i++ {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			break
		}
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			b, _ := io.ReadAll(io.LimitReader(p.Body, maxTextBytes))
			switch {
			case ct == "text/plain" && plain == "":
				plain = string(b)
			case ct == "text/html" && rich == "":
				rich = string(b)
			}
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			if name == "" {
				name = "attachment"
			}
			ct, _, _ := h.ContentType()
			b, _ := io.ReadAll(io.LimitReader(p.Body, maxAtt+1))
			if used+int64(len(b)) > maxAtt {
				skipped = append(skipped, fmt.Sprintf("%s (%s, over the %d-byte attachment cap)", name, ct, maxAtt))
				continue
			}
			used += int64(len(b))
			atts = append(atts, attachment{name: name, mime: ct, base64: base64.StdEncoding.EncodeToString(b)})
		}
	}
	var out string
	switch {
	case plain != "":
		out = textHTML(plain)
	case rich != "":
		out = rich
	}
	if len(skipped) > 0 {
		out += "<p><i>Not uploaded: " + html.EscapeString(strings.Join(skipped, "; ")) + "</i></p>"
	}
	return out + note(m), atts
}

func note(m *Message) string {
	if m.Truncated {
		return "<p><i>mailsync cut this message at its size cap.</i></p>"
	}
	return ""
}

// textHTML escapes text and keeps its line breaks.
func textHTML(s string) string {
	if len(s) > maxTextBytes {
		s = s[:maxTextBytes]
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	return "<p>" + strings.ReplaceAll(html.EscapeString(s), "\n", "<br>") + "</p>"
}

// headless is the part after the header of a raw message.
func headless(b []byte) []byte {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return b[i+4:]
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		return b[i+2:]
	}
	return b
}
