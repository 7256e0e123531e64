package matcher_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/matcher"
)

func explained(t *testing.T, d *matcher.Decision) string {
	t.Helper()
	var b strings.Builder
	if err := d.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// hasLine reports whether text has a line matching the pattern, with runs of
// spaces standing for the alignment padding.
func hasLine(text, pattern string) bool {
	re := regexp.MustCompile(`(?m)^` + strings.ReplaceAll(regexp.QuoteMeta(pattern), " ", ` +`) + `\s*$`)
	return re.MatchString(text)
}

func TestExplainText(t *testing.T) {
	pol := &matcher.AccountPolicy{Privacy: matcher.PrivacyMetadata, AutoCreate: matcher.AutoCreate{Deal: matcher.CreateRule{Enabled: true}}}
	m := newMatcher(t, baseConfig(), newFakeDir(), nil)
	msg := parse(t, `From: "Bob N" <bob+x@acme.com>`, "To: tom@ourco.com", "Cc: x@gmail.com", "Subject: Offer", "Message-ID: <m-1@acme.com>", "Date: someday")
	d := match(t, m, matcher.Input{Msg: msg, Account: "sales", Folder: "INBOX", Policy: pol})
	text := explained(t, d)
	for _, want := range []string{
		"message m-1@acme.com",
		"account sales folder INBOX",
		"decision DELIVER (matched) rule address linked 2 records",
		"direction inbound",
		"capture matched",
		"privacy metadata sends participants, date, subject, headers; withholds body, attachments",
		`from "Bob N" <bob+x@acme.com> as bob@acme.com external contact:c-bob (Bob)`,
		"to tom@ourco.com own -",
		"cc x@gmail.com freemail not in directory",
		"private_keyword no",
		"thread no_match no In-Reply-To or References",
		"address FIRED bob@acme.com -> contact:c-bob (Bob), company:co-acme",
		"domain not_run",
		"contact c-bob Bob",
		"company co-acme found by company of contact:c-bob",
		`create deal no_open_deal company="co-acme" contact="c-bob" email="bob@acme.com" name="Offer" source="email"`,
		"parse errors",
	} {
		if !hasLine(text, "  "+want) && !hasLine(text, want) {
			t.Errorf("explanation lacks line %q:\n%s", want, text)
		}
	}

	ex := match(t, m, matcher.Input{Msg: inbound(t, "alice@acme.com", "List-Id: <l.acme.com>")})
	text = explained(t, ex)
	for _, want := range []string{"decision EXCLUDE (list_id) List-Id: <l.acme.com>", "list_id FIRED List-Id: <l.acme.com>", "address not_run", "(none)"} {
		if !hasLine(text, "  "+want) && !hasLine(text, want) {
			t.Errorf("exclusion explanation lacks %q:\n%s", want, text)
		}
	}
}

func TestDecisionJSON(t *testing.T) {
	m := newMatcher(t, baseConfig(), newFakeDir(), nil)
	d := match(t, m, matcher.Input{Msg: inbound(t, "alice@acme.com"), Account: "a"})
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"action", "reason", "direction", "rule", "records", "capture", "privacy", "include", "participants", "exclusions", "rules"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("JSON lacks key %q: %s", k, b)
		}
	}
	var back matcher.Decision
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Action != d.Action || back.Reason != d.Reason || keys(back.Records) != keys(d.Records) || len(back.Participants) != len(d.Participants) {
		t.Errorf("round trip: %+v, want %+v", back, d)
	}
	for _, r := range back.Records {
		if len(r.Deals) != 0 {
			t.Errorf("linked record %s carries deals in JSON", r.Key())
		}
	}
}

func TestSummary(t *testing.T) {
	m := newMatcher(t, baseConfig(), newFakeDir(), nil)
	pol := &matcher.AccountPolicy{AutoCreate: matcher.AutoCreate{Lead: matcher.CreateRule{Enabled: true}}}
	var s matcher.Summary
	for _, in := range []matcher.Input{
		{Msg: inbound(t, "alice@acme.com")},
		{Msg: inbound(t, "bob@acme.com")},
		{Msg: inbound(t, "x@new.example")},
		{Msg: inbound(t, "y@new.example"), Policy: pol},
		{Msg: inbound(t, "alice@acme.com", "Precedence: bulk")},
		{Msg: parse(t, "From: a@ourco.com", "To: b@ourco.com")},
	} {
		s.Add(match(t, m, in))
	}
	if s.Total != 6 || s.Actions[matcher.Deliver] != 3 || s.Actions[matcher.Exclude] != 2 || s.Actions[matcher.Skip] != 1 {
		t.Errorf("counts = %+v", s)
	}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"messages 6", "deliver 3 50.0%", "  matched 2 33.3%", "  intent 1 16.7%", "    by rule address 2 33.3%",
		"exclude 2 33.3%", "  precedence 1 16.7%", "  internal 1 16.7%", "skip 1 16.7%", "  no_match 1 16.7%",
		"would create", "  lead 1",
	} {
		if !hasLine(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}
