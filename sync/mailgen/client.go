package mailgen

import (
	"fmt"
	"hash/fnv"
	"html"
	"strings"
)

// client is the mail program a sender uses; it shapes Message-IDs,
// boundaries, headers and HTML the way real clients do.
type client int

const (
	gmail client = iota
	outlook
	apple
	thunderbird
	bulk // a newsletter platform
)

// clientFor picks a stable client per address, so a person's mail looks
// alike across a thread.
func (g *Generator) clientFor(addr string) client {
	switch domainOf(addr) {
	case "gmail.com":
		return gmail
	case "outlook.com", "hotmail.com":
		return outlook
	}
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(addr)))
	return client(h.Sum32() % 4)
}

const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func (g *Generator) alnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = b62[g.rng.IntN(len(b62))]
	}
	return string(b)
}

func (g *Generator) uuid() string {
	h := hex(g.rng.Uint64()) + hex(g.rng.Uint64())
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// messageID returns a new id without angle brackets. Every id embeds the
// generator's salt and sequence number, so ids never repeat within a
// generator and rarely across seeds.
func (g *Generator) messageID(c client, from string) string {
	tag := fmt.Sprintf("%s%d", g.salt, g.seq)
	dom := domainOf(from)
	switch c {
	case gmail:
		return "CA" + g.alnum(18) + tag + "@mail.gmail.com"
	case outlook:
		host := fmt.Sprintf("AM%dPR0%dMB%04d", 6+g.rng.IntN(4), 1+g.rng.IntN(8), g.rng.IntN(10000))
		return host + strings.ToUpper(hex(g.rng.Uint64())[:12]+tag) + "@" + host + ".eurprd0" + host[6:7] + ".prod.outlook.com"
	case apple:
		return strings.ToUpper(g.uuid()) + "-" + tag + "@" + dom
	case bulk:
		return fmt.Sprintf("%d.%s.%s@mailer.%s", 1_700_000_000+g.rng.IntN(1e8), tag, hex(g.rng.Uint64())[:10], dom)
	}
	return g.uuid() + "." + tag + "@" + dom
}

func (g *Generator) boundary(c client) string {
	switch c {
	case gmail:
		return "000000000000" + hex(g.rng.Uint64())[:12]
	case outlook:
		return "_000_" + strings.ToUpper(hex(g.rng.Uint64())) + "_"
	case apple:
		return "Apple-Mail=_" + strings.ToUpper(g.uuid())
	case bulk:
		return fmt.Sprintf("----=_Part_%d_%d.%d", g.rng.IntN(1e6), g.rng.IntN(1e9), 1_700_000_000_000+g.rng.Int64N(1e11))
	}
	return "------------" + g.alnum(24)
}

// dress adds the HTML alternative and picks the body charset.
func (g *Generator) dress(d *draft) {
	switch d.client {
	case gmail, outlook:
		d.html = g.htmlBody(d)
	case apple:
		if g.chance(0.6) {
			d.html = g.htmlBody(d)
		}
	case thunderbird:
		if g.chance(0.25) {
			d.html = g.htmlBody(d)
		}
	}
	if (d.client == outlook || d.client == thunderbird) && !isASCII(d.text) && isLatin1(d.text+d.html) && g.chance(0.5) {
		d.latin1 = true
	}
}

const outlookStyle = `<style><!--
/* Font Definitions */
@font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face {font-family:Calibri; panose-1:2 15 5 2 2 2 4 3 2 4;}
@font-face {font-family:Aptos;}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0cm; font-size:11.0pt; font-family:"Aptos",sans-serif; mso-ligatures:standardcontextual; mso-fareast-language:EN-US;}
a:link, span.MsoHyperlink {mso-style-priority:99; color:#467886; text-decoration:underline;}
span.EmailStyle17 {mso-style-type:personal-compose; font-family:"Aptos",sans-serif; color:windowtext;}
.MsoChpDefault {mso-style-type:export-only; font-size:10.0pt; mso-ligatures:none;}
@page WordSection1 {size:612.0pt 792.0pt; margin:72.0pt 72.0pt 72.0pt 72.0pt;}
div.WordSection1 {page:WordSection1;}
--></style>`

// htmlBody renders the plain text as the sender's client would, with
// quoted lines as nested blockquotes.
func (g *Generator) htmlBody(d *draft) string {
	var b strings.Builder
	switch d.client {
	case outlook:
		b.WriteString(`<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40">` + "\n")
		b.WriteString(`<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><meta name="Generator" content="Microsoft Word 15 (filtered medium)">` + "\n")
		b.WriteString(outlookStyle)
		b.WriteString("\n</head>\n<body lang=\"EN-US\" link=\"#467886\" vlink=\"#96607D\" style=\"word-wrap:break-word\">\n<div class=\"WordSection1\">\n")
	case apple:
		b.WriteString("<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\"></head><body style=\"overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;\">\n")
	default:
		b.WriteString("<div dir=\"ltr\">\n")
	}
	depth := 0
	for _, line := range strings.Split(d.text, "\n") {
		q := 0
		for q < len(line) && line[q] == '>' {
			q++
		}
		line = strings.TrimPrefix(line[q:], " ")
		for ; depth < q; depth++ {
			b.WriteString("<blockquote style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">\n")
		}
		for ; depth > q; depth-- {
			b.WriteString("</blockquote>\n")
		}
		switch {
		case line == "":
			b.WriteString("<br>\n")
		case d.client == outlook:
			b.WriteString("<p class=\"MsoNormal\">" + html.EscapeString(line) + "<o:p></o:p></p>\n")
		default:
			b.WriteString("<div>" + html.EscapeString(line) + "</div>\n")
		}
	}
	for ; depth > 0; depth-- {
		b.WriteString("</blockquote>\n")
	}
	switch d.client {
	case outlook:
		b.WriteString("</div>\n</body>\n</html>\n")
	case apple:
		b.WriteString("</body></html>\n")
	default:
		b.WriteString("</div>\n")
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isLatin1(s string) bool {
	for _, r := range s {
		if r > 0xff {
			return false
		}
	}
	return true
}
