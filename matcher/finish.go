package matcher

import (
	"fmt"
	"strings"

	"github.com/mailsync/mailsync/sync/sink"
)

// finish completes a decision: rules not run are traced, intents are added
// and the capture mode decides between deliver and skip.
func (m *Matcher) finish(st *state) {
	d := st.d
	for i := len(d.Rules); i < len(m.rules); i++ {
		d.Rules = append(d.Rules, RuleTrace{Rule: m.rules[i], Outcome: OutcomeNotRun})
	}
	if d.Action != "" { // excluded, or skipped before the rules
		return
	}
	m.intents(st)
	switch {
	case len(d.Records) > 0:
		d.Action = Deliver
		d.Reason = Reason{ReasonMatched, fmt.Sprintf("rule %s linked %d records", d.Rule, len(d.Records))}
	case d.Selected:
		d.Action = Deliver
		d.Reason = Reason{ReasonSelected, "marked for logging (" + m.logKW + " or a log folder)"}
	case len(d.Intents) > 0:
		d.Action = Deliver
		d.Reason = Reason{ReasonIntent, fmt.Sprintf("no record linked; %d to create", len(d.Intents))}
	case st.pol.capture == CaptureAll:
		d.Action = Deliver
		d.Reason = Reason{ReasonCaptureAll, "capture mode all: logged without a record"}
	default:
		d.Action = Skip
		d.Reason = Reason{ReasonNoMatch, "capture mode matched and no rule linked a record"}
	}
}

// Intent reasons.
const (
	IntentUnknownSender    = "unknown_sender"
	IntentUnknownRecipient = "unknown_recipient"
	IntentNoOpenDeal       = "no_open_deal"
)

// intents asks for records the account's auto-create policy wants: a lead
// for an unknown inbound sender, a contact for each unknown outbound
// recipient, a deal for a known contact without an open deal.
func (m *Matcher) intents(st *state) {
	d, a := st.d, &st.pol.auto
	if !a.Lead.Enabled && !a.Contact.Enabled && !a.Deal.Enabled {
		return
	}
	company := ""
	for _, r := range d.Records {
		if r.Kind == sink.KindCompany {
			company = r.ID
			break
		}
	}
	for _, j := range st.ext {
		p := &d.Participants[j]
		if len(p.Records) > 0 || !p.Looked {
			continue
		}
		switch {
		case a.Lead.Enabled && d.Direction == Inbound && p.Role == RoleFrom:
			d.Intents = append(d.Intents, m.personIntent(st, a.Lead, IntentUnknownSender, p, company))
		case a.Contact.Enabled && d.Direction == Outbound && (p.Role == RoleTo || p.Role == RoleCc):
			d.Intents = append(d.Intents, m.personIntent(st, a.Contact, IntentUnknownRecipient, p, company))
		}
	}
	if !a.Deal.Enabled || d.hasKind(sink.KindDeal) {
		return
	}
	seen := map[string]bool{}
	for _, j := range st.ext {
		p := &d.Participants[j]
		for _, r := range p.Records {
			if r.Kind != sink.KindContact || seen[r.ID] || hasOpenDeal(r.Deals) {
				continue
			}
			seen[r.ID] = true
			f := map[string]string{
				"name":    m.expand(st, a.Deal.Name, p, r.Name, r.CompanyName),
				"contact": r.ID,
				"email":   p.Key,
				"source":  a.Deal.Source,
			}
			setIf(f, "company", r.Company)
			setIf(f, "owner", a.Deal.Owner)
			d.Intents = append(d.Intents, Intent{Action: "create", Kind: sink.Kind(a.Deal.Kind), Reason: IntentNoOpenDeal, Fields: f})
		}
	}
}

func (m *Matcher) personIntent(st *state, r CreateRule, reason string, p *Participant, company string) Intent {
	f := map[string]string{
		"email":  p.Key,
		"name":   m.expand(st, r.Name, p, p.Name, ""),
		"source": r.Source,
	}
	setIf(f, "owner", r.Owner)
	setIf(f, "company", company)
	return Intent{Action: "create", Kind: sink.Kind(r.Kind), Reason: reason, Fields: f}
}

// expand fills a name template. The subject is left out when the privacy
// level withholds it, and an empty result falls back to the person's name
// or address so a record is never created nameless.
func (m *Matcher) expand(st *state, tmpl string, p *Participant, name, company string) string {
	if name == "" {
		name = p.Name
	}
	if name == "" {
		name = p.Key
	}
	subject := st.msg.Subject
	if !st.d.Include.Subject {
		subject = ""
	}
	out := strings.NewReplacer("{subject}", subject, "{name}", name, "{email}", p.Key, "{company}", company).Replace(tmpl)
	if strings.TrimSpace(out) == "" {
		return name
	}
	return strings.TrimSpace(out)
}

func setIf(f map[string]string, k, v string) {
	if v != "" {
		f[k] = v
	}
}
