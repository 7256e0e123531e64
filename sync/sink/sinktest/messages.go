// Package sinktest holds what tests of sink adapters share: a contract
// suite every adapter must pass (RunContract), a fake CRM webhook endpoint
// (Receiver) and generators of realistic messages.
package sinktest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// Message returns a realistic EventMessage with the given key and an RFC
// 5322 body of about size bytes (see Body).
func Message(key string, size int) *sink.Message {
	seed := uint64(len(key))
	for i := 0; i < len(key); i++ {
		seed = seed*31 + uint64(key[i])
	}
	return &sink.Message{
		Key:   key,
		Event: sink.EventMessage,
		Provenance: []sink.Provenance{
			{Account: "sales", Folder: "INBOX", UIDValidity: 1700000000, UID: uint32(seed % 1e6)},
		},
		Direction: sink.Inbound,
		MessageID: "<" + key + "@mail.example.com>",
		Date:      time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		From:      []sink.Address{{Name: "Jörg Müller", Email: "joerg@customer.example"}},
		To:        []sink.Address{{Name: "Sales", Email: "sales@example.com"}},
		Cc:        []sink.Address{{Email: "cfo@customer.example"}},
		Subject:   "Re: Angebot Nr. 4711 – updated quote",
		Match: &sink.Match{
			Rule:    "domain",
			Records: []sink.Record{{Kind: "company", ID: "c-1042", Name: "Customer GmbH"}},
		},
		Flags: []string{`\Seen`},
		Size:  int64(size),
		Body:  Body(seed, size),
	}
}

// Messages returns n messages keyed prefix-000000, prefix-000001, ...
func Messages(prefix string, n, size int) []*sink.Message {
	ms := make([]*sink.Message, n)
	for i := range ms {
		ms[i] = Message(fmt.Sprintf("%s-%06d", prefix, i), size)
	}
	return ms
}

// Body returns an RFC 5322 message of about size bytes shaped like
// business mail: headers, a quoted-printable text/plain part with UTF-8
// text, an HTML alternative, and a base64 attachment filling the rest.
// Every line ends in CRLF, which is what makes mail costly to JSON-escape.
func Body(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x6d61696c))
	var b bytes.Buffer
	b.Grow(size + 1024)
	crlf := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	crlf("Return-Path: <joerg@customer.example>")
	crlf("Received: from mx.customer.example (mx.customer.example [192.0.2.%d])", rng.IntN(250))
	crlf("\tby mail.example.com with ESMTPS id %016x; Fri, 14 Mar 2025 09:26:54 +0000", rng.Uint64())
	crlf("Message-ID: <%016x@customer.example>", rng.Uint64())
	crlf("Date: Fri, 14 Mar 2025 10:26:53 +0100")
	crlf("From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@customer.example>")
	crlf("To: Sales <sales@example.com>")
	crlf("Subject: Re: Angebot Nr. 4711")
	crlf("MIME-Version: 1.0")
	crlf(`Content-Type: multipart/mixed; boundary="b1"`)
	crlf("")
	crlf("--b1")
	crlf(`Content-Type: multipart/alternative; boundary="b2"`)
	crlf("")
	crlf("--b2")
	crlf("Content-Type: text/plain; charset=utf-8")
	crlf("Content-Transfer-Encoding: 8bit")
	crlf("")
	words := []string{"Angebot", "quote", "Grüße", "delivery", "next", "week", "the", "invoice", "Straße", "please", "confirm", "€1.200", "thanks", "\"final\"", "tab\there"}
	text := size / 5
	for b.Len() < text {
		line := 0
		for line < 70 {
			w := words[rng.IntN(len(words))]
			b.WriteString(w)
			b.WriteByte(' ')
			line += len(w) + 1
		}
		b.WriteString("\r\n")
	}
	crlf("")
	crlf("--b2")
	crlf("Content-Type: text/html; charset=utf-8")
	crlf("")
	html := b.Len() + size/5
	for b.Len() < html {
		crlf(`<p style="margin:0">%s &amp; %s</p>`, words[rng.IntN(len(words))], words[rng.IntN(len(words))])
	}
	crlf("--b2--")
	crlf("--b1")
	crlf(`Content-Type: application/pdf; name="quote.pdf"`)
	crlf("Content-Transfer-Encoding: base64")
	crlf("")
	raw := make([]byte, 57)
	for b.Len() < size-16 {
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		b.WriteString(base64.StdEncoding.EncodeToString(raw))
		b.WriteString("\r\n")
	}
	crlf("--b1--")
	return b.Bytes()
}
