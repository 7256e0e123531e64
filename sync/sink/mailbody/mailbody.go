// Package mailbody extracts what a CRM shows of a message: its text and
// HTML bodies, decoded to UTF-8, and a safe HTML rendering for CRMs whose
// notes are HTML. It never fails: what cannot be decoded is left out.
package mailbody

import (
	"bytes"
	"html"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	_ "github.com/emersion/go-message/charset" // decodes non-UTF-8 parts
	"github.com/emersion/go-message/mail"
)

// maxParts bounds how many MIME parts are looked at.
const maxParts = 64

// Parts holds the first text/plain and text/html bodies of a message, each
// cut to the limit given to Extract.
type Parts struct {
	Text string
	HTML string
}

// Extract reads raw (an RFC 5322 message, possibly truncated) and returns
// its first text/plain and text/html inline parts, each at most max bytes
// of valid UTF-8. Attachments are skipped.
func Extract(raw []byte, max int) Parts {
	var p Parts
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && r == nil {
		return p
	}
	for range maxParts {
		part, err := r.NextPart()
		if err != nil {
			break
		}
		h, ok := part.Header.(*mail.InlineHeader)
		if !ok {
			continue
		}
		ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
		if ct == "" {
			ct = "text/plain"
		}
		switch {
		case ct == "text/plain" && p.Text == "":
			p.Text = read(part.Body, max)
		case ct == "text/html" && p.HTML == "":
			p.HTML = read(part.Body, max)
		}
		if p.Text != "" && p.HTML != "" {
			break
		}
	}
	return p
}

func read(r io.Reader, max int) string {
	b, _ := io.ReadAll(io.LimitReader(r, int64(max)))
	return Clip(strings.ToValidUTF8(string(b), "\uFFFD"), max)
}

// Clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// SafeHTML renders plain text as HTML: escaped, line breaks kept. It is
// what goes into a CRM's HTML note, never the message's own HTML, which
// may carry scripts and tracking pixels.
func SafeHTML(text string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if i > 0 {
			b.WriteString("<br>")
		}
		b.WriteString(html.EscapeString(line))
	}
	return b.String()
}
