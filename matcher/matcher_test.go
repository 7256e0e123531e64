package matcher_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

func TestDirection(t *testing.T) {
	m := newMatcher(t, matcher.Config{OwnDomains: []string{"ourco.com"}, Keep: matcher.Keep{Internal: true}}, newFakeDir(), nil)
	pol := &matcher.AccountPolicy{Aliases: []string{"me@gmail.com", "@partner-ourco.net"}}
	for _, tc := range []struct {
		name  string
		lines []string
		role  string
		want  matcher.Direction
	}{
		{"from outside", []string{"From: a@acme.com", "To: tom@ourco.com"}, "inbox", matcher.Inbound},
		{"from own", []string{"From: tom@ourco.com", "To: a@acme.com"}, "sent", matcher.Outbound},
		{"own subdomain", []string{"From: tom@eu.ourco.com", "To: a@acme.com"}, "sent", matcher.Outbound},
		{"all own", []string{"From: tom@ourco.com", "To: ann@ourco.com", "Cc: me@gmail.com"}, "inbox", matcher.Internal},
		{"alias domain", []string{"From: x@partner-ourco.net", "To: ann@ourco.com"}, "inbox", matcher.Internal},
		{"freemail alias outbound", []string{"From: Me <ME@gmail.com>", "To: a@acme.com"}, "inbox", matcher.Outbound},
		{"own with external reply-to", []string{"From: tom@ourco.com", "To: ann@ourco.com", "Reply-To: a@acme.com"}, "inbox", matcher.Outbound},
		{"no from, sent folder", []string{"To: a@acme.com"}, "sent", matcher.Outbound},
		{"no from, inbox", []string{"To: tom@ourco.com"}, "inbox", matcher.Inbound},
		{"sender when no from", []string{"Sender: tom@ourco.com", "To: a@acme.com"}, "inbox", matcher.Outbound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := match(t, m, matcher.Input{Msg: parse(t, tc.lines...), Policy: pol, FolderRole: tc.role})
			if got := d.Direction; got != tc.want {
				t.Errorf("Direction = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestExclusions(t *testing.T) {
	cfg := baseConfig()
	cfg.Blocklist = matcher.Blocklist{
		Addresses: []string{"Lawyer@Law.example"},
		Domains:   []string{"rival.example"},
		Patterns:  []string{"*@noreply.*", "re:^bounce-\\d+@"},
	}
	m := newMatcher(t, cfg, newFakeDir(), nil)
	pol := &matcher.AccountPolicy{PrivateFolders: []string{"Private"}, ExcludedFolders: []string{"Lists/*"}, Capture: matcher.CaptureAll}
	from := "From: alice@acme.com"
	to := "To: tom@ourco.com"
	for _, tc := range []struct {
		name     string
		lines    []string
		keywords []string
		folder   string
		role     string
		want     string // reason code; "" = not excluded
	}{
		{"none", []string{from, to}, nil, "INBOX", "inbox", ""},
		{"private keyword", []string{from, to}, []string{`\Seen`, "$CRMPrivate"}, "INBOX", "", matcher.ReasonPrivateKeyword},
		{"private keyword lower-cased by server", []string{from, to}, []string{"$crmprivate"}, "INBOX", "", matcher.ReasonPrivateKeyword},
		{"private folder", []string{from, to}, nil, "Private", "", matcher.ReasonPrivateFolder},
		{"private subfolder", []string{from, to}, nil, "Private.Taxes", "", matcher.ReasonPrivateFolder},
		{"excluded folder glob", []string{from, to}, nil, "Lists/golang", "", matcher.ReasonExcludedFolder},
		{"junk role", []string{from, to}, nil, "Spam", "junk", matcher.ReasonExcludedFolder},
		{"blocklist address", []string{"From: lawyer@law.example", to}, nil, "", "", matcher.ReasonBlocklist},
		{"blocklist plus address", []string{"From: lawyer+case7@law.example", to}, nil, "", "", matcher.ReasonBlocklist},
		{"blocklist domain", []string{from, to, "Cc: x@mail.rival.example"}, nil, "", "", matcher.ReasonBlocklist},
		{"blocklist glob", []string{"From: info@noreply.acme.com", to}, nil, "", "", matcher.ReasonBlocklist},
		{"blocklist regex", []string{"From: bounce-42@acme.com", to}, nil, "", "", matcher.ReasonBlocklist},
		{"internal", []string{"From: ann@ourco.com", to}, nil, "", "", matcher.ReasonInternal},
		{"null return path", []string{"Return-Path: <>", from, to}, nil, "", "", matcher.ReasonBounce},
		{"mailer-daemon", []string{"From: MAILER-DAEMON@mx.acme.com", to}, nil, "", "", matcher.ReasonBounce},
		{"postmaster", []string{"From: postmaster@acme.com", to}, nil, "", "", matcher.ReasonBounce},
		{"dsn", []string{from, to, "Content-Type: multipart/report; report-type=delivery-status; boundary=b"}, nil, "", "", matcher.ReasonBounce},
		{"mdn", []string{from, to, "Content-Type: multipart/report; report-type=disposition-notification; boundary=b"}, nil, "", "", matcher.ReasonReport},
		{"auto-submitted", []string{from, to, "Auto-Submitted: auto-replied"}, nil, "", "", matcher.ReasonAutoSubmitted},
		{"auto-submitted no", []string{from, to, "Auto-Submitted: no"}, nil, "", "", ""},
		{"x-autoreply", []string{from, to, "X-Autoreply: yes"}, nil, "", "", matcher.ReasonAutoReply},
		{"x-autorespond", []string{from, to, "X-Autorespond: on vacation"}, nil, "", "", matcher.ReasonAutoReply},
		{"precedence bulk", []string{from, to, "Precedence: bulk"}, nil, "", "", matcher.ReasonPrecedence},
		{"precedence list", []string{from, to, "Precedence: list"}, nil, "", "", matcher.ReasonPrecedence},
		{"precedence junk", []string{from, to, "Precedence: junk"}, nil, "", "", matcher.ReasonPrecedence},
		{"precedence first-class", []string{from, to, "Precedence: first-class"}, nil, "", "", ""},
		{"list-id", []string{from, to, "List-Id: <l.acme.com>"}, nil, "", "", matcher.ReasonListID},
		{"list-unsubscribe", []string{from, to, "List-Unsubscribe: <mailto:u@acme.com>"}, nil, "", "", matcher.ReasonListUnsubscribe},
		{"private beats bulk", []string{from, to, "Precedence: bulk"}, []string{"$CRMPrivate"}, "", "", matcher.ReasonPrivateKeyword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := match(t, m, matcher.Input{Msg: parse(t, tc.lines...), Policy: pol, Keywords: tc.keywords, Folder: tc.folder, FolderRole: tc.role})
			if tc.want == "" {
				if d.Action == matcher.Exclude {
					t.Fatalf("excluded (%s: %s), want not excluded", d.Reason.Code, d.Reason.Text)
				}
				return
			}
			if d.Action != matcher.Exclude || d.Reason.Code != tc.want {
				t.Fatalf("Action, Reason = %s, %s; want exclude, %s", d.Action, d.Reason.Code, tc.want)
			}
			if d.Reason.Text == "" {
				t.Errorf("exclusion %s has no human text", tc.want)
			}
			if d.Rule != "" || len(d.Records) != 0 {
				t.Errorf("excluded message linked rule %q records %v", d.Rule, d.Records)
			}
			fired := 0
			for _, c := range d.Exclusions {
				if c.Fired && !c.Off {
					fired++
				}
			}
			if fired == 0 {
				t.Errorf("no check marked fired in %+v", d.Exclusions)
			}
		})
	}
}

func TestExclusionsNoLookups(t *testing.T) {
	dir := newFakeDir()
	m := newMatcher(t, baseConfig(), dir, nil)
	match(t, m, matcher.Input{Msg: inbound(t, "alice@acme.com", "Precedence: bulk")})
	if e, d := dir.calls(); e+d != 0 {
		t.Errorf("excluded message made %d directory calls, want 0", e+d)
	}
}

func TestKeepTurnsExclusionsOff(t *testing.T) {
	cfg := baseConfig()
	cfg.Keep = matcher.Keep{Internal: true, Bulk: true, AutoReplies: true, Bounces: true}
	m := newMatcher(t, cfg, newFakeDir(), nil)
	for _, extra := range []string{"Precedence: bulk", "List-Id: <l.x>", "Auto-Submitted: auto-replied", "X-Autoreply: yes", "Return-Path: <>"} {
		d := match(t, m, matcher.Input{Msg: inbound(t, "alice@acme.com", extra)})
		if d.Action != matcher.Deliver {
			t.Errorf("%s with keep: Action = %s (%s), want deliver", extra, d.Action, d.Reason.Code)
		}
		kept := false
		for _, c := range d.Exclusions {
			kept = kept || (c.Fired && c.Off)
		}
		if !kept {
			t.Errorf("%s: no exclusion marked fired-but-kept", extra)
		}
	}
	d := match(t, m, matcher.Input{Msg: parse(t, "From: ann@ourco.com", "To: tom@ourco.com")})
	if d.Action == matcher.Exclude {
		t.Errorf("internal mail with keep.internal excluded")
	}
}

type fakeThreads struct {
	recs  map[string][]sink.Record
	err   error
	asked [][]string
}

func (f *fakeThreads) ThreadRecords(_ context.Context, ids []string) ([]sink.Record, error) {
	f.asked = append(f.asked, ids)
	if f.err != nil {
		return nil, f.err
	}
	for _, id := range ids {
		if r, ok := f.recs[id]; ok {
			return r, nil
		}
	}
	return nil, nil
}

func TestRuleThread(t *testing.T) {
	th := &fakeThreads{recs: map[string][]sink.Record{"root@x": {{Kind: sink.KindDeal, ID: "d-9"}}}}
	m := newMatcher(t, baseConfig(), newFakeDir(), th)
	d := match(t, m, matcher.Input{Msg: inbound(t, "stranger@nowhere.example", "In-Reply-To: <mid@x>", "References: <root@x> <mid@x>")})
	if d.Rule != matcher.RuleThread || keys(d.Records) != "deal:d-9" {
		t.Fatalf("Rule, Records = %q, %s; want thread, deal:d-9", d.Rule, keys(d.Records))
	}
	if got, want := strings.Join(th.asked[0], " "), "mid@x root@x"; got != want {
		t.Errorf("asked thread index for %q, want %q (In-Reply-To first, References newest first, no duplicates)", got, want)
	}
	if d.Rules[1].Outcome != matcher.OutcomeNotRun {
		t.Errorf("rule after the one that fired: %+v, want not_run", d.Rules[1])
	}

	th.err = errFlaky
	if _, err := m.Match(context.Background(), matcher.Input{Msg: inbound(t, "x@y.example", "In-Reply-To: <a@b>")}); !errors.Is(err, errFlaky) {
		t.Errorf("thread index error: Match err = %v, want %v", err, errFlaky)
	}

	noIndex := newMatcher(t, baseConfig(), newFakeDir(), nil)
	d = match(t, noIndex, matcher.Input{Msg: inbound(t, "alice@acme.com", "In-Reply-To: <root@x>")})
	if d.Rule != matcher.RuleAddress {
		t.Errorf("nil thread index: Rule = %q, want address", d.Rule)
	}
}

func TestRuleTag(t *testing.T) {
	cfg := baseConfig()
	cfg.Tags = append(cfg.Tags, matcher.TagRule{Name: "ticket", Pattern: `(?i)ticket #(?P<n>\d+)`, Kind: "company", ID: "T-${n}", In: []string{"body"}})
	m := newMatcher(t, cfg, newFakeDir(), nil)
	for _, tc := range []struct {
		name    string
		subject string
		body    string
		want    string
	}{
		{"subject", "Re: [#DEAL-42] contract", "", "deal:D-42"},
		{"subject twice same id", "[#DEAL-42] [#DEAL-42]", "", "deal:D-42"},
		{"two ids", "[#DEAL-1] and [#DEAL-2]", "", "deal:D-1,deal:D-2"},
		{"body", "hello", "see [#DEAL-7] and Ticket #1234", "deal:D-7,company:T-1234"},
		{"body-only rule ignores subject", "Ticket #99", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := parse(t, "From: who@nowhere.example", "To: tom@ourco.com", "Subject: "+tc.subject)
			d := match(t, m, matcher.Input{Msg: msg, Body: []byte(tc.body)})
			if got := keys(d.Records); got != tc.want {
				t.Errorf("Records = %q, want %q\n%+v", got, tc.want, d.Rules)
			}
			if tc.want != "" && d.Rule != matcher.RuleTag {
				t.Errorf("Rule = %q, want tag", d.Rule)
			}
		})
	}
}

func TestRuleAddressAndDealPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   string
	}{
		{"", "contact:c-alice,company:co-acme,deal:d-new"},
		{matcher.DealsMostRecent, "contact:c-alice,company:co-acme,deal:d-new"},
		{matcher.DealsAll, "contact:c-alice,company:co-acme,deal:d-old,deal:d-new"},
		{matcher.DealsNone, "contact:c-alice,company:co-acme"},
	} {
		t.Run("policy="+tc.policy, func(t *testing.T) {
			m := newMatcher(t, baseConfig(), newFakeDir(), nil)
			d := match(t, m, matcher.Input{Msg: inbound(t, "Alice+x@ACME.com"), Policy: &matcher.AccountPolicy{DealPolicy: tc.policy}})
			if d.Rule != matcher.RuleAddress || keys(d.Records) != tc.want {
				t.Errorf("Rule, Records = %q, %s; want address, %s", d.Rule, keys(d.Records), tc.want)
			}
		})
	}
	// A global deal policy applies when the account sets none.
	cfg := baseConfig()
	cfg.DealPolicy = matcher.DealsNone
	m := newMatcher(t, cfg, newFakeDir(), nil)
	if d := match(t, m, matcher.Input{Msg: inbound(t, "alice@acme.com")}); keys(d.Records) != "contact:c-alice,company:co-acme" {
		t.Errorf("global deal policy none: Records = %s", keys(d.Records))
	}
	// Without plus folding, a sub-address is a different address.
	cfg = baseConfig()
	cfg.FoldPlusAddresses = false
	m = newMatcher(t, cfg, newFakeDir(), nil)
	if d := match(t, m, matcher.Input{Msg: inbound(t, "alice+x@acme.com")}); d.Rule != matcher.RuleDomain {
		t.Errorf("no folding: Rule = %q, want domain", d.Rule)
	}
}

func TestRuleDomain(t *testing.T) {
	m := newMatcher(t, baseConfig(), newFakeDir(), nil)
	for _, tc := range []struct {
		from, want, rule string
	}{
		{"new.person@acme.com", "company:co-acme,deal:d-co", matcher.RuleDomain},
		{"someone@eu.mail.acme.com", "company:co-acme,deal:d-co", matcher.RuleDomain},
		{"x@umbrella.com", "company:co-umbrella", matcher.RuleDomain},
		{"x@unknown.example", "", ""},
		{"x@gmail.com", "", ""},
	} {
		d := match(t, m, matcher.Input{Msg: inbound(t, tc.from)})
		if got := keys(d.Records); got != tc.want || d.Rule != tc.rule {
			t.Errorf("%s: Rule, Records = %q, %q; want %q, %q", tc.from, d.Rule, got, tc.rule, tc.want)
		}
	}
}

func TestDomainSkipsFreemailAndOwn(t *testing.T) {
	dir := newFakeDir()
	dir.domains["gmail.com"] = []sink.Record{{Kind: sink.KindCompany, ID: "co-google"}}
	m := newMatcher(t, baseConfig(), dir, nil)
	d := match(t, m, matcher.Input{Msg: inbound(t, "x@gmail.com")})
	if len(d.Records) != 0 {
		t.Errorf("freemail domain linked %s", keys(d.Records))
	}
	for _, k := range dir.asked {
		if k == "gmail.com" || k == "ourco.com" {
			t.Errorf("directory asked about %q", k)
		}
	}
}

func TestRuleOrderAndDisabled(t *testing.T) {
	cfg := baseConfig()
	cfg.Rules = []string{matcher.RuleDomain, matcher.RuleAddress}
	m := newMatcher(t, cfg, newFakeDir(), nil)
	d := match(t, m, matcher.Input{Msg: inbound(t, "alice@acme.com"), Body: []byte("[#DEAL-1]")})
	if d.Rule != matcher.RuleDomain || keys(d.Records) != "company:co-acme,deal:d-co" {
		t.Errorf("domain first: Rule, Records = %q, %s", d.Rule, keys(d.Records))
	}
	if len(d.Rules) != 2 || d.Rules[1].Rule != matcher.RuleAddress || d.Rules[1].Outcome != matcher.OutcomeNotRun {
		t.Errorf("rule trace = %+v, want domain fired then address not_run", d.Rules)
	}
}

func TestCaptureModesAndPrivacy(t *testing.T) {
	m := newMatcher(t, baseConfig(), newFakeDir(), nil)
	known := func() *matcher.Message { return inbound(t, "alice@acme.com") }
	unknown := func() *matcher.Message { return inbound(t, "x@gmail.com") }
	for _, tc := range []struct {
		name     string
		msg      *matcher.Message
		pol      *matcher.AccountPolicy
		keywords []string
		folder   string
		action   matcher.Action
		reason   string
	}{
		{"default matched, known", known(), nil, nil, "", matcher.Deliver, matcher.ReasonMatched},
		{"default matched, unknown", unknown(), nil, nil, "", matcher.Skip, matcher.ReasonNoMatch},
		{"all, unknown", unknown(), &matcher.AccountPolicy{Capture: "all"}, nil, "", matcher.Deliver, matcher.ReasonCaptureAll},
		{"matched, unknown, marked", unknown(), &matcher.AccountPolicy{Capture: "matched"}, []string{"$CRMLog"}, "", matcher.Deliver, matcher.ReasonSelected},
		{"selective, unmarked known", known(), &matcher.AccountPolicy{Capture: "selective"}, nil, "", matcher.Skip, matcher.ReasonNotSelected},
		{"selective, keyword", known(), &matcher.AccountPolicy{Capture: "selective"}, []string{"$crmlog"}, "", matcher.Deliver, matcher.ReasonMatched},
		{"selective, log folder", unknown(), &matcher.AccountPolicy{Capture: "selective", LogFolders: []string{"CRM/Log"}}, nil, "CRM/Log", matcher.Deliver, matcher.ReasonSelected},
		{"selective, other folder", unknown(), &matcher.AccountPolicy{Capture: "selective", LogFolders: []string{"CRM/Log"}}, nil, "CRM/Logs", matcher.Skip, matcher.ReasonNotSelected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := match(t, m, matcher.Input{Msg: tc.msg, Policy: tc.pol, Keywords: tc.keywords, Folder: tc.folder})
			if d.Action != tc.action || d.Reason.Code != tc.reason {
				t.Errorf("Action, Reason = %s, %s; want %s, %s", d.Action, d.Reason.Code, tc.action, tc.reason)
			}
		})
	}
	for _, tc := range []struct {
		privacy string
		want    matcher.Include
	}{
		{"", matcher.Include{Subject: true, Headers: true, Body: true, Attachments: true}},
		{"full", matcher.Include{Subject: true, Headers: true, Body: true, Attachments: true}},
		{"metadata", matcher.Include{Subject: true, Headers: true}},
		{"headers", matcher.Include{}},
	} {
		d := match(t, m, matcher.Input{Msg: known(), Policy: &matcher.AccountPolicy{Privacy: tc.privacy}})
		if d.Include != tc.want {
			t.Errorf("privacy %q: Include = %+v, want %+v", tc.privacy, d.Include, tc.want)
		}
	}
}

func TestSelectiveSkipsWithoutLookup(t *testing.T) {
	dir := newFakeDir()
	m := newMatcher(t, baseConfig(), dir, nil)
	match(t, m, matcher.Input{Msg: inbound(t, "alice@acme.com"), Policy: &matcher.AccountPolicy{Capture: "selective"}})
	if e, d := dir.calls(); e+d != 0 {
		t.Errorf("unselected message made %d directory calls, want 0", e+d)
	}
}

func TestAutoCreate(t *testing.T) {
	on := &matcher.AccountPolicy{AutoCreate: matcher.AutoCreate{
		Lead:    matcher.CreateRule{Enabled: true, Source: "web-mail", Owner: "u-7"},
		Contact: matcher.CreateRule{Enabled: true, Kind: "lead", Owner: "u-8"},
		Deal:    matcher.CreateRule{Enabled: true, Name: "{company}: {subject}"},
	}}
	m := newMatcher(t, baseConfig(), newFakeDir(), nil)
	intents := func(d *matcher.Decision) string {
		var out []string
		for _, i := range d.Intents {
			out = append(out, string(i.Kind)+":"+i.Reason+":"+i.Fields["email"])
		}
		return strings.Join(out, ",")
	}

	d := match(t, m, matcher.Input{Msg: inbound(t, "Pia Neu <pia@new.example>", "Cc: other@new.example"), Policy: on})
	if got, want := intents(d), "lead:unknown_sender:pia@new.example"; got != want {
		t.Fatalf("inbound unknown: intents %q, want %q", got, want)
	}
	if f := d.Intents[0].Fields; f["source"] != "web-mail" || f["owner"] != "u-7" || f["name"] != "Pia Neu" {
		t.Errorf("lead fields = %v", f)
	}
	if d.Action != matcher.Deliver || d.Reason.Code != matcher.ReasonIntent {
		t.Errorf("Action, Reason = %s, %s; want deliver, intent", d.Action, d.Reason.Code)
	}

	// Unknown sender at a known company: the lead carries the company.
	d = match(t, m, matcher.Input{Msg: inbound(t, "new@acme.com"), Policy: on})
	if len(d.Intents) != 1 || d.Intents[0].Fields["company"] != "co-acme" {
		t.Errorf("lead at known domain: intents %+v", d.Intents)
	}

	out := parse(t, "From: tom@ourco.com", "To: a@new.example, bob@acme.com", "Cc: c@new.example", "Bcc: b@new.example", "Subject: Kickoff")
	d = match(t, m, matcher.Input{Msg: out, Policy: on, FolderRole: "sent"})
	if got, want := intents(d), "lead:unknown_recipient:a@new.example,lead:unknown_recipient:c@new.example,deal:no_open_deal:bob@acme.com"; got != want {
		t.Errorf("outbound: intents %q, want %q", got, want)
	}
	for _, i := range d.Intents {
		if i.Kind == sink.KindDeal {
			if i.Fields["contact"] != "c-bob" || i.Fields["company"] != "co-acme" || i.Fields["name"] != ": Kickoff" {
				t.Errorf("deal fields = %v", i.Fields)
			}
		}
	}

	// A contact with an open deal gets none; nothing at all when off.
	if d = match(t, m, matcher.Input{Msg: inbound(t, "alice@acme.com"), Policy: on}); len(d.Intents) != 0 {
		t.Errorf("contact with open deal: intents %+v", d.Intents)
	}
	if d = match(t, m, matcher.Input{Msg: inbound(t, "pia@new.example")}); len(d.Intents) != 0 || d.Action != matcher.Skip {
		t.Errorf("auto-create off: intents %+v, action %s", d.Intents, d.Action)
	}

	// Privacy headers keeps the subject out of a deal name.
	hidden := *on
	hidden.Privacy = matcher.PrivacyHeaders
	hidden.AutoCreate.Deal.Name = "{subject}"
	d = match(t, m, matcher.Input{Msg: inbound(t, "Bob <bob@acme.com>"), Policy: &hidden})
	if len(d.Intents) != 1 || d.Intents[0].Fields["name"] != "Bob" {
		t.Errorf("privacy headers deal intent = %+v, want name Bob", d.Intents)
	}
}

func TestMatchBatchLookups(t *testing.T) {
	dir := newFakeDir()
	m := newMatcher(t, baseConfig(), dir, nil)
	ins := []matcher.Input{
		{Msg: inbound(t, "alice@acme.com")},
		{Msg: inbound(t, "bob@acme.com", "Cc: alice@acme.com")},
		{Msg: inbound(t, "new@umbrella.com")},
		{Msg: inbound(t, "who@elsewhere.example")},
		{Msg: inbound(t, "alice@acme.com", "Precedence: bulk")},
	}
	ds, err := m.MatchBatch(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	if e, d := dir.calls(); e != 1 || d != 1 {
		t.Errorf("directory calls = %d emails, %d domains; want 1 and 1", e, d)
	}
	want := []string{"address", "address", "domain", "", ""}
	for i, d := range ds {
		if d.Rule != want[i] {
			t.Errorf("message %d: Rule = %q, want %q", i, d.Rule, want[i])
		}
	}

	dir.err = errFlaky
	if _, err := m.MatchBatch(context.Background(), ins); !errors.Is(err, errFlaky) {
		t.Errorf("directory failure: err = %v, want %v", err, errFlaky)
	}
}

func TestNilMessage(t *testing.T) {
	m := newMatcher(t, baseConfig(), newFakeDir(), nil)
	d := match(t, m, matcher.Input{})
	if d.Action != matcher.Skip || len(d.ParseErrors) == 0 {
		t.Errorf("nil message: %s, parse errors %v", d.Action, d.ParseErrors)
	}
}

func TestMatchConcurrent(t *testing.T) {
	env := loadCorpus(t)
	ins := make([]matcher.Input, len(env.cases))
	for i, c := range env.cases {
		ins[i] = env.input(t, c)
	}
	want := make([]string, len(ins))
	for i, in := range ins {
		want[i] = string(match(t, env.m, in).Action)
	}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := range ins {
				d, err := env.m.Match(context.Background(), ins[(i+g*17)%len(ins)])
				if err != nil {
					errs <- err
					return
				}
				if got := string(d.Action); got != want[(i+g*17)%len(ins)] {
					errs <- errors.New("concurrent Match disagrees: " + got)
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
