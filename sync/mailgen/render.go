package mailgen

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// part is one MIME entity: a leaf with an encoded body, or a multipart.
type part struct {
	header   [][2]string
	body     []byte
	parts    []*part
	boundary string
}

const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// render writes the draft as RFC 5322 bytes with CRLF line endings.
func (g *Generator) render(d *draft) []byte {
	var buf bytes.Buffer
	buf.Grow(4096)
	date := d.date.In(d.tz)
	owner := d.owner.Address
	if d.external || d.kind == KindInternal && d.dir == Inbound {
		g.trace(&buf, d, owner)
	}
	writeHeader(&buf, "From", d.from.String())
	writeHeader(&buf, "To", addrList(d.to))
	if len(d.cc) > 0 {
		writeHeader(&buf, "Cc", addrList(d.cc))
	}
	writeHeader(&buf, "Subject", g.encodeWord(d.subject, d.client))
	writeHeader(&buf, "Date", date.Format(dateLayout))
	writeHeader(&buf, "Message-ID", "<"+d.id+">")
	if d.inReplyTo != "" {
		writeHeader(&buf, "In-Reply-To", "<"+d.inReplyTo+">")
		writeHeader(&buf, "References", "<"+strings.Join(d.refs, "> <")+">")
	}
	switch d.client {
	case outlook:
		writeHeader(&buf, "Thread-Topic", g.encodeWord(strings.TrimPrefix(d.subject, "RE: "), d.client))
		writeHeader(&buf, "Thread-Index", base64.StdEncoding.EncodeToString(g.randBytes(22)))
		writeHeader(&buf, "Accept-Language", "en-US")
		writeHeader(&buf, "X-MS-Has-Attach", map[bool]string{true: "yes", false: ""}[len(d.attach) > 0])
	case thunderbird:
		writeHeader(&buf, "User-Agent", "Mozilla Thunderbird")
		writeHeader(&buf, "Content-Language", "en-US")
	case apple:
		writeHeader(&buf, "X-Mailer", "iPhone Mail (22E240)")
	}
	for _, h := range d.extra {
		writeHeader(&buf, h[0], h[1])
	}
	writeHeader(&buf, "MIME-Version", "1.0")
	d.attachBytes = 0
	root := g.structure(d)
	g.writePart(&buf, root, d)
	return buf.Bytes()
}

// trace writes the transport headers an inbound message picks up.
func (g *Generator) trace(buf *bytes.Buffer, d *draft, owner string) {
	dom := domainOf(d.from.Address)
	at := d.date.Add(time.Duration(2+g.rng.IntN(40)) * time.Second).In(time.UTC).Format(dateLayout)
	writeHeader(buf, "Return-Path", "<"+d.from.Address+">")
	writeHeader(buf, "Delivered-To", owner)
	writeHeader(buf, "Received", fmt.Sprintf("from mx.acme.example (localhost [127.0.0.1]) by imap.acme.example (Dovecot) with LMTP id %s for <%s>; %s",
		g.alnum(22), owner, at))
	if !d.external {
		return
	}
	ip := fmt.Sprintf("203.0.113.%d", 1+g.rng.IntN(254))
	writeHeader(buf, "Received", fmt.Sprintf("from mail-%s.%s (mail-%[1]s.%[2]s [%s]) by mx.acme.example (Postfix) with ESMTPS id %s for <%s>; %s",
		g.alnum(6), dom, ip, g.alnum(10), owner, at))
	writeHeader(buf, "Authentication-Results", fmt.Sprintf("mx.acme.example; dkim=pass header.d=%s header.s=s1; spf=pass (mx.acme.example: domain of %s designates %s as permitted sender) smtp.mailfrom=%[2]s; dmarc=pass (p=QUARANTINE) header.from=%[1]s",
		dom, d.from.Address, ip))
	sig := base64.StdEncoding.EncodeToString(g.randBytes(256))
	var chunks []string
	for len(sig) > 64 {
		chunks, sig = append(chunks, sig[:64]), sig[64:]
	}
	// DKIM (RFC 6376 3.5) ignores whitespace in b=, so it folds there.
	writeHeader(buf, "DKIM-Signature", fmt.Sprintf("v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=s1; t=%d; h=from:to:subject:date:message-id:mime-version:content-type; bh=%s; b=%s",
		dom, d.date.Unix(), base64.StdEncoding.EncodeToString(g.randBytes(32)), strings.Join(append(chunks, sig), " ")))
}

// structure builds the MIME tree: text, alternative, related, mixed.
func (g *Generator) structure(d *draft) *part {
	charset := "utf-8"
	if d.latin1 {
		charset = "iso-8859-1"
	}
	body := textPart("plain", d.text, charset, d.client == thunderbird || d.client == apple)
	if d.html != "" {
		htmlPart := textPart("html", d.html, charset, false)
		if d.client == outlook && g.chance(0.3) {
			// Outlook signatures often carry an inline logo.
			logo := &part{header: [][2]string{
				{"Content-Type", `image/png; name="image001.png"`},
				{"Content-Description", "image001.png"},
				{"Content-Disposition", `inline; filename="image001.png"`},
				{"Content-ID", "<image001.png@01DC" + strings.ToUpper(hex(g.rng.Uint64())[:12]) + ">"},
				{"Content-Transfer-Encoding", "base64"},
			}, body: b64(fakePNG(g, 2000+g.rng.IntN(6000)))}
			htmlPart = g.multipart(d.client, "related", `; type="text/html"`, htmlPart, logo)
		}
		body = g.multipart(d.client, "alternative", "", body, htmlPart)
	}
	if len(d.attach) == 0 {
		return body
	}
	parts := []*part{body}
	for _, a := range d.attach {
		enc := b64(a.data)
		d.attachBytes += len(enc)
		parts = append(parts, &part{header: [][2]string{
			{"Content-Type", mime.FormatMediaType(a.ctype, map[string]string{"name": a.name})},
			{"Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.name, "size": fmt.Sprint(len(a.data))})},
			{"Content-Transfer-Encoding", "base64"},
		}, body: enc})
	}
	return g.multipart(d.client, "mixed", "", parts...)
}

func (g *Generator) multipart(c client, sub, params string, parts ...*part) *part {
	b := g.boundary(c)
	return &part{
		header:   [][2]string{{"Content-Type", "multipart/" + sub + `; boundary="` + b + `"` + params}},
		parts:    parts,
		boundary: b,
	}
}

// textPart encodes text as 7bit when it is ASCII and the client wraps
// lines itself, else as quoted-printable.
func textPart(sub, text, charset string, wrap bool) *part {
	ct := "text/" + sub + "; charset=" + charset
	if wrap && isASCII(text) {
		return &part{header: [][2]string{{"Content-Type", ct}, {"Content-Transfer-Encoding", "7bit"}},
			body: []byte(wrapText(text, 76))}
	}
	src := []byte(text)
	if charset == "iso-8859-1" {
		src = src[:0:0]
		for _, r := range text {
			src = append(src, byte(r))
		}
	}
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	// Writes to a bytes.Buffer cannot fail.
	_, _ = w.Write(src)
	_ = w.Close()
	return &part{header: [][2]string{{"Content-Type", ct}, {"Content-Transfer-Encoding", "quoted-printable"}}, body: buf.Bytes()}
}

func (g *Generator) writePart(buf *bytes.Buffer, p *part, d *draft) {
	for _, h := range p.header {
		writeHeader(buf, h[0], h[1])
	}
	buf.WriteString("\r\n")
	if p.parts == nil {
		buf.Write(p.body)
		if len(p.body) > 0 && p.body[len(p.body)-1] != '\n' {
			buf.WriteString("\r\n")
		}
		return
	}
	if d.client == outlook || d.client == bulk {
		buf.WriteString("This is a multi-part message in MIME format.\r\n\r\n")
	}
	for _, c := range p.parts {
		buf.WriteString("--" + p.boundary + "\r\n")
		g.writePart(buf, c, d)
	}
	buf.WriteString("--" + p.boundary + "--\r\n")
}

// writeHeader writes one field, folded at spaces to about 78 columns
// (RFC 5322 2.2.3). Tokens without spaces stay whole.
func writeHeader(buf *bytes.Buffer, name, value string) {
	line := len(name) + 2
	buf.WriteString(name)
	buf.WriteString(":")
	for i, tok := range strings.Split(value, " ") {
		if i > 0 && line+1+len(tok) > 78 {
			buf.WriteString("\r\n")
			line = 0
		}
		buf.WriteString(" ")
		buf.WriteString(tok)
		line += 1 + len(tok)
	}
	buf.WriteString("\r\n")
}

func addrList(as []mail.Address) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// encodeWord applies RFC 2047 to non-ASCII text: B encoding for scripts
// where Q would triple the size, Q otherwise.
func (g *Generator) encodeWord(s string, c client) string {
	if isASCII(s) {
		return s
	}
	if !isLatin1(s) && c != outlook || g.chance(0.2) {
		return mime.BEncoding.Encode("UTF-8", s)
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// b64 encodes data in lines of 76 characters (RFC 2045 6.8).
func b64(data []byte) []byte {
	enc := make([]byte, base64.StdEncoding.EncodedLen(len(data)))
	base64.StdEncoding.Encode(enc, data)
	out := make([]byte, 0, len(enc)+len(enc)/76*2+2)
	for len(enc) > 76 {
		out = append(out, enc[:76]...)
		out = append(out, '\r', '\n')
		enc = enc[76:]
	}
	out = append(out, enc...)
	return append(out, '\r', '\n')
}

// wrapText wraps lines at width, repeating a quote prefix on
// continuation lines, and joins them with CRLF.
func wrapText(text string, width int) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		prefix := ""
		for i := 0; i < len(line) && (line[i] == '>' || line[i] == ' ' && i > 0 && line[i-1] == '>'); i++ {
			prefix = line[:i+1]
		}
		for len(line) > width {
			cut := strings.LastIndexByte(line[:width], ' ')
			if cut <= len(prefix) {
				break
			}
			b.WriteString(line[:cut])
			b.WriteString("\r\n")
			line = prefix + line[cut+1:]
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.String()
}
