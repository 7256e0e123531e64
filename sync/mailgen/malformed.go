package mailgen

import (
	"bytes"
	"strconv"
	"strings"
)

// Sample is one malformed message for robustness tests.
type Sample struct {
	// Name is a short stable identifier, e.g. "broken-boundary".
	Name string
	// Desc says what is wrong with the message.
	Desc string
	// Raw is the message as it would arrive from a server.
	Raw []byte
}

// malformedHead is a plausible header block, so each sample carries only
// the defect it is named for.
func malformedHead(id string, extra ...string) string {
	h := []string{
		"Return-Path: <anna.schmidt@northwind.example>",
		"From: \"Anna Schmidt\" <anna.schmidt@northwind.example>",
		"To: \"Acme Sales\" <sales@acme.example>",
		"Subject: Re: Proposal for Northwind Traders [#DEAL-1042]",
		"Date: Tue, 03 Mar 2026 09:15:00 -0500",
	}
	if id != "" {
		h = append(h, "Message-ID: <"+id+"@northwind.example>")
	}
	h = append(h, "MIME-Version: 1.0")
	h = append(h, extra...)
	return strings.Join(h, "\r\n") + "\r\n"
}

const plainCT = "Content-Type: text/plain; charset=utf-8"

// Malformed returns a fixed set of malformed messages, one per defect,
// the same on every call. Parsers should reject or tolerate each one
// without crashing, hanging or losing the rest of a mailbox.
func Malformed() []Sample {
	body := "Hi team,\r\n\r\nThe signed copy is attached.\r\n\r\nAnna\r\n"
	long := bytes.Repeat([]byte("0123456789abcdef"), 2<<20/16)
	nest := strings.Builder{}
	for i := range 200 {
		nest.WriteString("Content-Type: multipart/mixed; boundary=\"n" + strconv.Itoa(i) + "\"\r\n\r\n--n" + strconv.Itoa(i) + "\r\n")
	}
	nest.WriteString(plainCT + "\r\n\r\ndeep\r\n")

	return []Sample{
		{"broken-boundary", "multipart boundary parameter does not match the delimiters used, and the body never closes",
			[]byte(malformedHead("mf-boundary", `Content-Type: multipart/mixed; boundary="outer-123"`) + "\r\n" +
				"--other-456\r\n" + plainCT + "\r\n\r\n" + body + "--other-456\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjcK\r\n")},
		{"missing-message-id", "no Message-ID header", []byte(malformedHead("", plainCT) + "\r\n" + body)},
		{"duplicate-message-id", "two Message-ID headers with different values",
			[]byte(malformedHead("mf-dup-1", "Message-ID: <mf-dup-2@northwind.example>", plainCT) + "\r\n" + body)},
		{"invalid-utf8-headers", "raw 8-bit bytes, invalid as UTF-8, in Subject and From",
			[]byte("From: \"J\xfcrgen M\xfcller\" <j.mueller@mueller-soehne.example>\r\nTo: sales@acme.example\r\n" +
				"Subject: Angebot f\xfcr \xff\xfe Preise \xc3\x28\r\nDate: Tue, 03 Mar 2026 09:15:00 +0100\r\n" +
				"Message-ID: <mf-8bit@mueller-soehne.example>\r\n" + plainCT + "\r\n\r\n" + body)},
		{"unknown-charset", "body and encoded-word subject in charset x-unknown-9",
			[]byte(strings.Replace(malformedHead("mf-charset", "Content-Type: text/plain; charset=x-unknown-9", "Content-Transfer-Encoding: quoted-printable"),
				"Subject: Re: Proposal", "Subject: =?x-unknown-9?q?Angebot_f=FCr?= Proposal", 1) + "\r\nPreis f=FCr 10 Lizenzen\r\n")},
		{"header-without-colon", "a header line without a colon inside the header block",
			[]byte(malformedHead("mf-colon", "X-Broken header line without colon", plainCT) + "\r\n" + body)},
		{"long-line-2mb", "a single 2 MiB body line without any line break",
			append([]byte(malformedHead("mf-long", plainCT, "Content-Transfer-Encoding: 7bit")+"\r\n"), long...)},
		{"nul-bytes", "NUL bytes in the Subject and the body",
			[]byte(strings.Replace(malformedHead("mf-nul", plainCT), "Proposal for", "Proposal\x00for", 1) + "\r\nHi\x00team\x00\x00\r\n")},
		{"truncated-base64", "base64 attachment cut mid-quantum, with no closing boundary",
			[]byte(malformedHead("mf-b64", `Content-Type: multipart/mixed; boundary="b1"`) + "\r\n--b1\r\n" + plainCT + "\r\n\r\n" + body +
				"--b1\r\nContent-Type: application/pdf; name=\"Quote.pdf\"\r\nContent-Disposition: attachment; filename=\"Quote.pdf\"\r\n" +
				"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjcKJeLjz9MKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyAvUGFnZXMgMiAwIFIgPj4K\r\nZW5kb2JqCjIgMCBv")},
		{"empty-body", "headers and the blank separator line, but no body", []byte(malformedHead("mf-empty", plainCT) + "\r\n")},
		{"headers-only", "headers without the blank separator line or any body", []byte(malformedHead("mf-hdronly", plainCT))},
		{"bare-lf", "LF line endings instead of CRLF",
			[]byte(strings.ReplaceAll(malformedHead("mf-lf", plainCT)+"\r\n"+body, "\r\n", "\n"))},
		{"deep-nesting", "200 levels of nested multipart",
			[]byte(malformedHead("mf-deep") + nest.String())},
		{"garbage-date", "Date header that is not an RFC 5322 date",
			[]byte(strings.Replace(malformedHead("mf-date", plainCT), "Tue, 03 Mar 2026 09:15:00 -0500", "yesterday around noon", 1) + "\r\n" + body)},
		{"unknown-transfer-encoding", "Content-Transfer-Encoding x-uuencode-9",
			[]byte(malformedHead("mf-cte", plainCT, "Content-Transfer-Encoding: x-uuencode-9") + "\r\n" + body)},
	}
}
