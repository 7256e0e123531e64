package odoo

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// Odoo's models for mailsync's record kinds: people and companies are
// res.partner, leads and deals (opportunities) are crm.lead.
const (
	modelPartner = "res.partner"
	modelLead    = "crm.lead"
	modelMessage = "mail.message"
)

func modelOf(k sink.Kind) string {
	if k == sink.KindLead || k == sink.KindDeal {
		return modelLead
	}
	return modelPartner
}

// many2one is Odoo's [id, "name"] or false.
type many2one struct {
	ID   int
	Name string
}

func (m *many2one) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if json.Unmarshal(b, &pair) != nil || len(pair) < 1 {
		*m = many2one{}
		return nil
	}
	_ = json.Unmarshal(pair[0], &m.ID)
	if len(pair) > 1 {
		_ = json.Unmarshal(pair[1], &m.Name)
	}
	return nil
}

// text is an Odoo char field: a string, or false when empty.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		*t = ""
		return nil
	}
	*t = text(s)
	return nil
}

type partnerRow struct {
	ID              int      `json:"id"`
	Name            text     `json:"name"`
	Email           text     `json:"email_normalized"`
	Website         text     `json:"website"`
	IsCompany       bool     `json:"is_company"`
	CommercialParty many2one `json:"commercial_partner_id"`
}

type leadRow struct {
	ID        int      `json:"id"`
	Name      text     `json:"name"`
	Type      text     `json:"type"`
	Email     text     `json:"email_normalized"`
	Partner   many2one `json:"partner_id"`
	WriteDate text     `json:"write_date"`
}

func id(n int) string { return strconv.Itoa(n) }

// LookupEmails implements matcher.Directory: partners by email_normalized
// (people, with their company and its open deals), and leads of type lead
// by address for those with no partner. Two search_read calls per batch,
// plus one for the open deals.
func (s *Sink) LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error) {
	if len(emails) == 0 {
		return nil, nil
	}
	var partners []partnerRow
	if err := s.rpc.execute(ctx, modelPartner, "search_read",
		[]any{[]any{[]any{"email_normalized", "in", emails}}},
		map[string]any{"fields": []string{"name", "email_normalized", "is_company", "commercial_partner_id", "website"}},
		&partners); err != nil {
		return nil, err
	}
	out := map[string][]sink.Record{}
	var owners []int
	for _, p := range partners {
		r := sink.Record{Kind: sink.KindContact, ID: id(p.ID), Name: string(p.Name), Email: string(p.Email),
			Via: "odoo res.partner by email_normalized"}
		if p.IsCompany {
			r.Kind = sink.KindCompany
			r.Domain = domainOf(string(p.Email))
		} else if c := p.CommercialParty; c.ID != 0 && c.ID != p.ID {
			r.Company, r.CompanyName = id(c.ID), c.Name
			owners = append(owners, c.ID)
		}
		owners = append(owners, p.ID)
		out[string(p.Email)] = append(out[string(p.Email)], r)
	}
	var missing []string
	for _, e := range emails {
		if _, ok := out[e]; !ok {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		var leads []leadRow
		if err := s.rpc.execute(ctx, modelLead, "search_read",
			[]any{[]any{[]any{"type", "=", "lead"}, []any{"email_normalized", "in", missing}}},
			map[string]any{"fields": []string{"name", "email_normalized"}}, &leads); err != nil {
			return nil, err
		}
		for _, l := range leads {
			out[string(l.Email)] = append(out[string(l.Email)], sink.Record{Kind: sink.KindLead, ID: id(l.ID),
				Name: string(l.Name), Email: string(l.Email), Via: "odoo crm.lead (lead) by email_normalized"})
		}
	}
	if err := s.attachDeals(ctx, out, owners); err != nil {
		return nil, err
	}
	return out, nil
}

// LookupDomains implements matcher.Directory: the company partners whose
// e-mail domain or website host is the domain. The matcher never asks for
// freemail or the organisation's own domains.
func (s *Sink) LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error) {
	if len(domains) == 0 {
		return nil, nil
	}
	// [is_company] AND (email =ilike %@d1 OR website ilike d1 OR ...)
	domain := []any{[]any{"is_company", "=", true}}
	for i := 0; i < 2*len(domains)-1; i++ {
		domain = append(domain, "|")
	}
	for _, d := range domains {
		domain = append(domain, []any{"email_normalized", "=ilike", "%@" + d}, []any{"website", "ilike", d})
	}
	var partners []partnerRow
	if err := s.rpc.execute(ctx, modelPartner, "search_read", []any{domain},
		map[string]any{"fields": []string{"name", "email_normalized", "is_company", "website"}}, &partners); err != nil {
		return nil, err
	}
	out := map[string][]sink.Record{}
	var owners []int
	want := map[string]bool{}
	for _, d := range domains {
		want[d] = true
	}
	for _, p := range partners {
		// ilike matched a substring; keep exact domains only.
		for _, d := range uniq(domainOf(string(p.Email)), websiteHost(string(p.Website))) {
			if !want[d] {
				continue
			}
			via := "odoo res.partner (company) by email domain"
			if d != domainOf(string(p.Email)) {
				via = "odoo res.partner (company) by website"
			}
			out[d] = append(out[d], sink.Record{Kind: sink.KindCompany, ID: id(p.ID), Name: string(p.Name), Domain: d, Via: via})
			owners = append(owners, p.ID)
		}
	}
	if err := s.attachDeals(ctx, out, owners); err != nil {
		return nil, err
	}
	return out, nil
}

// attachDeals adds the open opportunities of the partners (and of their
// companies) to the records, in one search_read. Open is Odoo's own rule:
// an active opportunity whose stage is not won (lost ones are archived).
func (s *Sink) attachDeals(ctx context.Context, recs map[string][]sink.Record, owners []int) error {
	if len(owners) == 0 {
		return nil
	}
	var leads []leadRow
	if err := s.rpc.execute(ctx, modelLead, "search_read",
		[]any{[]any{[]any{"type", "=", "opportunity"}, "|", []any{"stage_id", "=", false}, []any{"stage_id.is_won", "=", false},
			[]any{"partner_id", "child_of", owners}}},
		map[string]any{"fields": []string{"name", "partner_id", "write_date"}}, &leads); err != nil {
		return err
	}
	if len(leads) == 0 {
		return nil
	}
	// crm.lead has no company field: read its people's companies.
	var pids []int
	for _, l := range leads {
		pids = append(pids, l.Partner.ID)
	}
	var people []partnerRow
	if err := s.rpc.execute(ctx, modelPartner, "read", []any{pids, []string{"commercial_partner_id"}}, nil, &people); err != nil {
		return err
	}
	companyOf := map[int]int{}
	for _, p := range people {
		companyOf[p.ID] = p.CommercialParty.ID
	}
	for k, rs := range recs {
		for i := range rs {
			r := &rs[i]
			if r.Kind == sink.KindLead {
				continue
			}
			for _, l := range leads {
				// A person's deals are their own; a company's are all of
				// its people's.
				mine := id(l.Partner.ID) == r.ID
				if r.Kind == sink.KindCompany {
					mine = mine || id(companyOf[l.Partner.ID]) == r.ID
				} else if !mine && r.Company != "" && id(l.Partner.ID) == r.Company {
					mine = true
				}
				if mine {
					r.Deals = append(r.Deals, sink.Deal{ID: id(l.ID), Name: string(l.Name), Open: true, UpdatedAt: odooTime(string(l.WriteDate))})
				}
			}
		}
		recs[k] = rs
	}
	return nil
}

func odooTime(s string) time.Time {
	t, _ := time.Parse(time.DateTime, s)
	return t
}

func domainOf(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return strings.ToLower(email[i+1:])
	}
	return ""
}

// websiteHost is the host of a website field ("https://www.acme.example/",
// "acme.example"), without "www.".
func websiteHost(w string) string {
	w = strings.TrimSpace(strings.ToLower(w))
	if w == "" {
		return ""
	}
	if !strings.Contains(w, "://") {
		w = "http://" + w
	}
	u, err := url.Parse(w)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Hostname(), "www.")
}

func uniq(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && (len(out) == 0 || out[0] != s) {
			out = append(out, s)
		}
	}
	return out
}
