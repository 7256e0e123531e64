package matcher

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailsync/mailsync/sync/sink"
)

// maxThreadIDs bounds the ids handed to the thread index: In-Reply-To and
// the newest References are what point at a logged message.
const maxThreadIDs = 20

// runRules runs st's remaining rules in order until one fires. It stops
// before the domain rule when domains is nil and reports that the message
// waits for the batch's domain look-up.
func (m *Matcher) runRules(ctx context.Context, st *state, domains map[string][]sink.Record) (wait bool, err error) {
	for st.next < len(m.rules) {
		name := m.rules[st.next]
		if name == RuleDomain && domains == nil {
			return true, nil
		}
		var fired bool
		var detail string
		switch name {
		case RuleThread:
			fired, detail, err = m.ruleThread(ctx, st)
		case RuleTag:
			fired, detail = m.ruleTag(st)
		case RuleAddress:
			fired, detail = m.ruleAddress(st)
		case RuleDomain:
			fired, detail = m.ruleDomain(st, domains)
		}
		if err != nil {
			return false, err
		}
		st.next++
		out := OutcomeNoMatch
		if fired {
			out = OutcomeFired
		}
		st.d.Rules = append(st.d.Rules, RuleTrace{Rule: name, Outcome: out, Detail: detail})
		if fired {
			st.d.Rule = name
			st.next = len(m.rules)
		}
	}
	return false, nil
}

// threadIDs lists In-Reply-To then References from the newest, without
// duplicates, at most maxThreadIDs.
func threadIDs(msg *Message) []string {
	n := len(msg.InReplyTo) + len(msg.References)
	if n == 0 {
		return nil
	}
	ids := make([]string, 0, min(n, maxThreadIDs))
	add := func(id string) {
		if len(ids) >= maxThreadIDs || id == msg.MessageID {
			return
		}
		for _, have := range ids {
			if have == id {
				return
			}
		}
		ids = append(ids, id)
	}
	for _, id := range msg.InReplyTo {
		add(id)
	}
	for i := len(msg.References) - 1; i >= 0; i-- {
		add(msg.References[i])
	}
	return ids
}

func (m *Matcher) ruleThread(ctx context.Context, st *state) (bool, string, error) {
	ids := threadIDs(st.msg)
	if len(ids) == 0 {
		return false, "no In-Reply-To or References", nil
	}
	if m.threads == nil {
		return false, "no thread index", nil
	}
	recs, err := m.threads.ThreadRecords(ctx, ids)
	if err != nil {
		return false, "", fmt.Errorf("thread records: %w", err)
	}
	if len(recs) == 0 {
		return false, fmt.Sprintf("none of %d referenced messages was logged", len(ids)), nil
	}
	for _, r := range recs {
		st.d.addRecord(r)
	}
	return true, "reply in a logged thread: " + recordList(recs), nil
}

func (m *Matcher) ruleTag(st *state) (bool, string) {
	if len(m.tags) == 0 {
		return false, "no tag patterns configured"
	}
	var b strings.Builder
	var subject []byte
	for _, t := range m.tags {
		var ids []string
		if t.inSubject && st.msg.Subject != "" {
			if subject == nil {
				subject = []byte(st.msg.Subject)
			}
			ids = t.extract(subject, ids)
		}
		if t.inBody && len(st.in.Body) > 0 {
			ids = t.extract(st.in.Body, ids)
		}
		for _, id := range ids {
			if st.d.addRecord(sink.Record{Kind: t.kind, ID: id}) {
				if b.Len() > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s:%s (tag %q)", t.kind, id, t.name)
			}
		}
	}
	if b.Len() == 0 {
		return false, "no tag found"
	}
	return true, b.String()
}

func (m *Matcher) ruleAddress(st *state) (bool, string) {
	var b strings.Builder
	for _, j := range st.ext {
		p := &st.d.Participants[j]
		if len(p.Records) == 0 {
			continue
		}
		n := len(st.d.Records)
		for _, r := range p.Records {
			m.link(st, r)
		}
		if len(st.d.Records) > n {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(p.Key)
			b.WriteString(" -> ")
			b.WriteString(recordList(st.d.Records[n:]))
		}
	}
	if b.Len() == 0 {
		return false, fmt.Sprintf("none of %d external addresses is known", len(st.ext))
	}
	return true, b.String()
}

func (m *Matcher) ruleDomain(st *state, domains map[string][]sink.Record) (bool, string) {
	var b strings.Builder
	skipped := 0
	for _, j := range st.ext {
		p := &st.d.Participants[j]
		if p.Freemail {
			skipped++
			continue
		}
		for _, dom := range parentDomains(DomainOf(p.Key)) {
			recs := domains[dom]
			if len(recs) == 0 {
				continue
			}
			p.DomainRecords = recs
			n := len(st.d.Records)
			for _, r := range recs {
				m.link(st, r)
			}
			if len(st.d.Records) > n {
				if b.Len() > 0 {
					b.WriteString("; ")
				}
				b.WriteString(dom)
				b.WriteString(" -> ")
				b.WriteString(recordList(st.d.Records[n:]))
			}
			break
		}
	}
	if b.Len() == 0 {
		if skipped > 0 {
			return false, fmt.Sprintf("no company domain known (%d freemail skipped)", skipped)
		}
		return false, "no company domain known"
	}
	return true, b.String()
}

// link adds r, its company and its open deals (by the deal policy).
func (m *Matcher) link(st *state, r sink.Record) {
	st.d.addRecord(r)
	if r.Company != "" && r.Kind != sink.KindCompany {
		st.d.addRecord(sink.Record{Kind: sink.KindCompany, ID: r.Company, Name: r.CompanyName, Via: "company of " + r.Key()})
	}
	for _, deal := range pickDeals(r.Deals, st.pol.dealPolicy) {
		st.d.addRecord(sink.Record{Kind: sink.KindDeal, ID: deal.ID, Name: deal.Name, Company: r.Company, Via: "open deal of " + r.Key()})
	}
}

// pickDeals applies a deal policy to a record's deals; only open deals count.
func pickDeals(deals []sink.Deal, policy string) []sink.Deal {
	switch policy {
	case DealsNone:
		return nil
	case DealsAll:
		var out []sink.Deal
		for _, d := range deals {
			if d.Open {
				out = append(out, d)
			}
		}
		return out
	}
	best := -1
	for i, d := range deals {
		if d.Open && (best < 0 || d.UpdatedAt.After(deals[best].UpdatedAt)) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	return deals[best : best+1]
}

// hasOpenDeal reports whether any of deals is open.
func hasOpenDeal(deals []sink.Deal) bool {
	for _, d := range deals {
		if d.Open {
			return true
		}
	}
	return false
}

// recordList formats records as "kind:id (name), ...".
func recordList(rs []sink.Record) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(r.Kind))
		b.WriteByte(':')
		b.WriteString(r.ID)
		if r.Name != "" {
			b.WriteString(" (")
			b.WriteString(r.Name)
			b.WriteByte(')')
		}
	}
	return b.String()
}
