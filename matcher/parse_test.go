package matcher_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/matcher"
)

func emails(as []matcher.Address) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Email)
	}
	return out
}

func TestParseHeaderFields(t *testing.T) {
	m := parse(t,
		"Return-Path: <bounce+123@mailer.acme.com>",
		"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <Juergen@XN--BCHER-KVA.de>",
		"Sender: Assistant <assist@acme.com>",
		"Reply-To: replies@acme.com",
		"To: Tom <tom@ourco.com>, \"Doe, Jane\" <jane@ourco.com>",
		"CC: a@x.com",
		"To: second-to@ourco.com",
		"BCC: hidden@x.com",
		"Subject: =?iso-8859-1?q?Gr=FC=DFe?= aus =?koi8-r?B?8NLJ18XU?=",
		"Date: Tue, 5 Mar 2024 10:11:12 +0100",
		"Message-ID:   <abc.123@acme.com>  ",
		"In-Reply-To: <parent@acme.com>",
		"References: <root@acme.com>",
		"\t<parent@acme.com>",
		"List-Id: Acme =?utf-8?q?N=C3=BCws?= <news.acme.com>",
		"List-Unsubscribe: <mailto:u@acme.com>",
		"Auto-Submitted: Auto-Replied; owner-email=\"x@y\"",
		"Precedence: BULK",
		"Content-Type: multipart/report; report-type=Delivery-Status; boundary=\"b\"",
		"X-Autoreply: yes",
	)
	if len(m.ParseErrors) > 0 {
		t.Fatalf("ParseErrors = %v", m.ParseErrors)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !equal(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("From", emails(m.From), []string{"juergen@bücher.de"})
	check("From name", m.From[0].Name, "Jürgen Müller")
	check("Sender", emails(m.Sender), []string{"assist@acme.com"})
	check("Reply-To", emails(m.ReplyTo), []string{"replies@acme.com"})
	check("To", emails(m.To), []string{"tom@ourco.com", "jane@ourco.com", "second-to@ourco.com"})
	check("To name", m.To[1].Name, "Doe, Jane")
	check("Cc", emails(m.Cc), []string{"a@x.com"})
	check("Bcc", emails(m.Bcc), []string{"hidden@x.com"})
	check("Subject", m.Subject, "Grüße aus Привет")
	check("Date", m.Date.UTC(), time.Date(2024, 3, 5, 9, 11, 12, 0, time.UTC))
	check("MessageID", m.MessageID, "abc.123@acme.com")
	check("InReplyTo", m.InReplyTo, []string{"parent@acme.com"})
	check("References", m.References, []string{"root@acme.com", "parent@acme.com"})
	check("ListID", m.ListID, "Acme Nüws <news.acme.com>")
	check("ListUnsubscribe", m.ListUnsubscribe, "<mailto:u@acme.com>")
	check("AutoSubmitted", m.AutoSubmitted, "auto-replied")
	check("Precedence", m.Precedence, "bulk")
	check("ContentType", m.ContentType, "multipart/report")
	check("ReportType", m.ReportType, "delivery-status")
	check("ReturnPath", m.ReturnPath, "<bounce+123@mailer.acme.com>")
	check("AutoReply", m.AutoReply, "X-Autoreply: yes")
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case []string:
		return slices.Equal(a, b.([]string))
	case time.Time:
		return a.Equal(b.(time.Time))
	}
	return a == b
}

func TestParseHeaderMalformed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lines   []string
		errLike string // substring of one ParseErrors entry
		check   func(*matcher.Message) string
	}{
		{"broken address salvaged", []string{"From: Alice <alice@acme.com", "To: tom@ourco.com"}, "from: malformed address",
			func(m *matcher.Message) string { return strings.Join(emails(m.From), ",") + "|alice@acme.com" }},
		{"one bad address of a list", []string{"To: good@x.com, not an address, other@y.com"}, "to: cannot parse",
			func(m *matcher.Message) string { return strings.Join(emails(m.To), ",") + "|good@x.com,other@y.com" }},
		{"bad date", []string{"Date: someday soon", "From: a@x.com"}, "date:",
			func(m *matcher.Message) string { return m.Date.Format(time.RFC3339) + "|0001-01-01T00:00:00Z" }},
		{"odd but readable date", []string{"Date: Tue, 5 Mar 2024 10:11:12 +0100 (CET)"}, "",
			func(m *matcher.Message) string { return m.Date.UTC().Format(time.RFC3339) + "|2024-03-05T09:11:12Z" }},
		{"unknown charset", []string{"Subject: =?x-klingon?q?Qapla?="}, "subject:",
			func(m *matcher.Message) string { return m.Subject + "|=?x-klingon?q?Qapla?=" }},
		{"8-bit latin-1 subject", []string{"Subject: Gr\xfc\xdfe"}, "subject: 8-bit",
			func(m *matcher.Message) string { return m.Subject + "|Grüße" }},
		{"raw utf-8 subject is fine", []string{"Subject: Grüße"}, "",
			func(m *matcher.Message) string { return m.Subject + "|Grüße" }},
		{"duplicate message-id", []string{"Message-ID: <one@x>", "Message-ID: <two@x>"}, "message-id: duplicate",
			func(m *matcher.Message) string { return m.MessageID + "|one@x" }},
		{"malformed message-id kept raw", []string{"Message-ID: not really an id"}, "",
			func(m *matcher.Message) string { return m.MessageID + "|not really an id" }},
		{"garbage line skipped", []string{"Subject: s", "this is not a header", "From: a@x.com"}, "header:",
			func(m *matcher.Message) string { return strings.Join(emails(m.From), ",") + "|a@x.com" }},
		{"empty group", []string{"To: undisclosed-recipients:;"}, "",
			func(m *matcher.Message) string { return strings.Join(emails(m.To), ",") + "|" }},
		{"ids without brackets", []string{"In-Reply-To: parent@x (Bob's message)", "References: <a@x> b@x <c@x"}, "",
			func(m *matcher.Message) string {
				return strings.Join(m.InReplyTo, ",") + ";" + strings.Join(m.References, ",") + "|parent@x;a@x,b@x,c@x"
			}},
		{"bad content-type params", []string{"Content-Type: multipart/report; report-type"}, "content-type:",
			func(m *matcher.Message) string { return m.ContentType + "|multipart/report" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := matcher.ParseHeader(hdr(tc.lines...))
			if err != nil {
				t.Fatalf("ParseHeader error %v", err)
			}
			if tc.errLike == "" && len(m.ParseErrors) > 0 {
				t.Errorf("ParseErrors = %q, want none", m.ParseErrors)
			}
			if tc.errLike != "" && !slices.ContainsFunc(m.ParseErrors, func(e string) bool { return strings.Contains(e, tc.errLike) }) {
				t.Errorf("ParseErrors = %q, want one containing %q", m.ParseErrors, tc.errLike)
			}
			got, want, _ := strings.Cut(tc.check(m), "|")
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestParseHeaderNoHeader(t *testing.T) {
	for _, raw := range []string{"", "\r\n", " leading continuation\r\n"} {
		m, err := matcher.ParseHeader([]byte(raw))
		if !errors.Is(err, matcher.ErrNoHeader) || m == nil {
			t.Errorf("ParseHeader(%q) = %v, %v; want a message and ErrNoHeader", raw, m, err)
		}
	}
}

func TestParseHeaderStopsAtBody(t *testing.T) {
	m := parse(t, "From: a@x.com")
	raw := append(hdr("From: a@x.com"), []byte("To: body@x.com\r\n")...)
	m2, err := matcher.ParseHeader(raw)
	if err != nil || len(m2.To) != 0 || len(m.From) != 1 {
		t.Errorf("body line read as header: To = %v, err %v", m2.To, err)
	}
}

func TestParseHeaderScanning(t *testing.T) {
	raw := "FROM : Alice\r\n  Carter <alice@acme.com>\r\n" +
		"subject: one\r\n\ttwo  \r\n   three\r\n" +
		"Bad Key: x\r\n" +
		"X-Long-Unknown-Header-Name-That-Is-Longer-Than-Any-Known: y\r\n" +
		"to:bob@acme.com\n" + // bare LF
		"\r\n" +
		"Cc: body@acme.com\r\n"
	m, err := matcher.ParseHeader([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := emails(m.From); len(got) != 1 || got[0] != "alice@acme.com" || m.From[0].Name != "Alice Carter" {
		t.Errorf("From = %+v", m.From)
	}
	if m.Subject != "one two three" {
		t.Errorf("Subject = %q, want unfolded %q", m.Subject, "one two three")
	}
	if got := emails(m.To); len(got) != 1 || got[0] != "bob@acme.com" {
		t.Errorf("To = %v", got)
	}
	if len(m.Cc) != 0 {
		t.Errorf("read past the end of the header: Cc = %v", m.Cc)
	}
	if len(m.ParseErrors) != 1 || !strings.Contains(m.ParseErrors[0], "malformed field name") {
		t.Errorf("ParseErrors = %q, want one for the bad key", m.ParseErrors)
	}
}

func TestFastAndFullAddressPathsAgree(t *testing.T) {
	// The same lists, once in a form the fast path takes and once in one
	// only the full parser takes, must give the same participants.
	for _, pair := range [][2]string{
		{`"Carter, Alice" <Alice@Acme.com>, bob@acme.com`, `"Carter, Alice" <Alice@Acme.com> (work), bob@acme.com`},
		{`Jane  Doe <jane@x.org>`, `=?us-ascii?q?Jane?= Doe <jane@x.org>`},
	} {
		a, b := parse(t, "To: "+pair[0]), parse(t, "To: "+pair[1])
		if len(a.To) != len(b.To) {
			t.Fatalf("%q vs %q: %v vs %v", pair[0], pair[1], a.To, b.To)
		}
		for i := range a.To {
			if a.To[i].Email != b.To[i].Email {
				t.Errorf("%q vs %q: %v vs %v", pair[0], pair[1], a.To[i], b.To[i])
			}
		}
	}
}
