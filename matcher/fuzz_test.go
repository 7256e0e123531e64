package matcher

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
	"github.com/mailsync/mailsync/sync/sink"
)

// emptyDir answers every look-up with nothing.
type emptyDir struct{}

func (emptyDir) LookupEmails(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}
func (emptyDir) LookupDomains(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}

// FuzzParseHeader checks that no input makes ParseHeader (or Match on its
// result) panic, and that what it returns is clean: valid UTF-8, normalised
// addresses, bounded errors. Seeds: testdata/fuzz/FuzzParseHeader.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte("From: a@b.com\r\nTo: c@d.com\r\nSubject: =?utf-8?q?x?=\r\n\r\n"))
	m, err := New(Config{OwnDomains: []string{"d.com"}, Tags: []TagRule{{Pattern: `\[#(\d+)\]`, Kind: "deal"}}}, emptyDir{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, err := ParseHeader(raw)
		if msg == nil {
			t.Fatalf("nil message (err %v)", err)
		}
		if len(msg.ParseErrors) > maxParseErrors {
			t.Errorf("%d parse errors, bound is %d", len(msg.ParseErrors), maxParseErrors)
		}
		if !utf8.ValidString(msg.Subject) || !utf8.ValidString(msg.ListID) {
			t.Errorf("invalid UTF-8 in subject %q or list-id %q", msg.Subject, msg.ListID)
		}
		msg.participants(func(r Role, a Address) {
			if a.Email == "" || !utf8.ValidString(a.Email) || !utf8.ValidString(a.Name) {
				t.Errorf("%s: bad address %q name %q", r, a.Email, a.Name)
			}
			if n, err := NormalizeAddress(a.Email); err == nil && n != a.Email {
				t.Errorf("%s: address %q not normalised (%q)", r, a.Email, n)
			}
		})
		if _, err := m.Match(context.Background(), Input{Msg: msg, Body: raw}); err != nil {
			t.Errorf("Match: %v", err)
		}
	})
}

// FuzzNormalizeAddress checks that normalising is idempotent and that plus
// folding is too. Seeds: testdata/fuzz/FuzzNormalizeAddress.
func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{"a@b.com", "A+x@XN--BCHER-KVA.de", "\"q\"@x", "x@[1.2.3.4]", "@", "ü@ü.de"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := NormalizeAddress(in)
		if err != nil {
			return
		}
		if !utf8.ValidString(n) || !strings.Contains(n, "@") {
			t.Fatalf("NormalizeAddress(%q) = %q", in, n)
		}
		n2, err := NormalizeAddress(n)
		if err != nil || n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, n, n2, err)
		}
		if f1 := FoldPlus(n); FoldPlus(f1) != f1 {
			t.Fatalf("FoldPlus not idempotent: %q -> %q -> %q", n, f1, FoldPlus(f1))
		}
		if d := DomainOf(n); d == "" {
			t.Fatalf("DomainOf(%q) empty", n)
		}
	})
}

// FuzzTagExtract checks tag extraction on arbitrary text: IDs follow the
// template, are bounded and never repeat. Seeds: testdata/fuzz/FuzzTagExtract.
func FuzzTagExtract(f *testing.F) {
	f.Add([]byte("Re: [#DEAL-42] and [#DEAL-42] [#DEAL-7]"))
	tag, err := compileTag(TagRule{Pattern: `\[#DEAL-(\d+)\]`, Kind: "deal", ID: "D-$1"})
	if err != nil {
		f.Fatal(err)
	}
	named, err := compileTag(TagRule{Pattern: `(?i)ref:\s*(?P<ref>\S+)`, Kind: "contact", ID: "${ref}"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		ids := tag.extract(text, nil)
		if len(ids) > maxTagMatches {
			t.Errorf("%d ids, bound %d", len(ids), maxTagMatches)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if !strings.HasPrefix(id, "D-") || len(id) < 3 || seen[id] {
				t.Errorf("bad or repeated id %q in %q", id, ids)
			}
			seen[id] = true
		}
		for _, id := range named.extract(text, nil) {
			if id == "" || len(id) > maxTagID || !utf8.ValidString(id) {
				t.Errorf("bad id %q", id)
			}
		}
	})
}

// FuzzFastAddressList checks the fast address path against go-message's
// full parser: whatever the fast path accepts must parse the same there.
// Seeds: testdata/fuzz/FuzzFastAddressList.
func FuzzFastAddressList(f *testing.F) {
	for _, s := range []string{"a@b.c", "Bob <bob@x.com>", `"Carter, Alice" <a@x.com>, b@y.org`, "J. R.  Smith <j@x.io>", `"" <a@b.c>`, "a@b.c,", "<a@b.c>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		fast, ok := fastAddressList(v, nil)
		if !ok {
			return
		}
		full, err := mail.ParseAddressList(v)
		if err != nil {
			t.Fatalf("fast path accepted %q, full parser: %v", v, err)
		}
		if len(full) != len(fast) {
			t.Fatalf("%q: fast %d addresses, full %d", v, len(fast), len(full))
		}
		for i := range full {
			if full[i].Name != fast[i].Name || full[i].Address != fast[i].Email {
				t.Fatalf("%q: fast %q <%s>, full %q <%s>", v, fast[i].Name, fast[i].Email, full[i].Name, full[i].Address)
			}
		}
	})
}
