package filedir

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

// maxErrors bounds the row errors reported for one file.
const maxErrors = 20

// index is the searchable form of a file's rows; it is never modified once
// built, so look-ups share it without locks.
type index struct {
	emails  map[string][]sink.Record
	domains map[string][]sink.Record
}

// updatedLayouts are the date forms accepted in the updated field.
var updatedLayouts = []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

func parseOpen(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "true", "yes", "1", "open":
		return true, nil
	case "false", "no", "0", "closed", "won", "lost":
		return false, nil
	}
	return false, fmt.Errorf("want true/false, open/closed/won/lost, got %q", s)
}

func parseUpdated(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range updatedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid date %q (want RFC 3339 or YYYY-MM-DD)", s)
}

// parseDealsColumn reads a deals column: "id:name:stage:close" entries
// separated by ";"; name, stage and close may be left out.
func parseDealsColumn(s string) ([]sink.Deal, error) {
	var deals []sink.Deal
	for _, e := range strings.Split(s, ";") {
		if strings.TrimSpace(e) == "" {
			continue
		}
		f := strings.Split(e, ":")
		for len(f) < 4 {
			f = append(f, "")
		}
		// A close given as an RFC 3339 time holds colons of its own.
		id, name, stage, closeAt := strings.TrimSpace(f[0]), strings.TrimSpace(f[1]), strings.TrimSpace(f[2]), strings.TrimSpace(strings.Join(f[3:], ":"))
		if id == "" {
			return nil, fmt.Errorf("deal %q has no id (want id:name:stage:close)", e)
		}
		open, err := parseOpen(stage)
		if err != nil {
			return nil, fmt.Errorf("deal %s stage: %v", id, err)
		}
		updated, err := parseUpdated(closeAt)
		if err != nil {
			return nil, fmt.Errorf("deal %s close: %v", id, err)
		}
		deals = append(deals, sink.Deal{ID: id, Name: name, Open: open, UpdatedAt: updated})
	}
	return deals, nil
}

// build validates rows and indexes them. Every bad row is reported (up to
// maxErrors) so one edit cycle fixes them all.
func build(rows []Row, file string) (*index, error) {
	var errs []error
	bad := func(r *Row, field string, err error) {
		if len(errs) < maxErrors {
			errs = append(errs, &RowError{File: file, Line: r.lineOf(field), Field: field, Err: err})
		}
	}
	type person struct {
		rec  sink.Record
		line *Row
	}
	companies := map[string]*sink.Record{}
	companyDomains := map[string][]string{}
	var people []*person
	byID := map[string][]*person{}
	byEmail := map[string][]*person{}
	var deals []*Row

	for i := range rows {
		r := &rows[i]
		if r.ID == "" {
			bad(r, "id", errors.New("empty"))
			continue
		}
		switch sink.Kind(strings.ToLower(r.Kind)) {
		case sink.KindContact, sink.KindLead:
			email, err := matcher.NormalizeAddress(r.Email)
			if err != nil {
				bad(r, "email", fmt.Errorf("invalid address %q: %v", r.Email, err))
				continue
			}
			inline, err := parseDealsColumn(r.Deals)
			if err != nil {
				bad(r, "deals", err)
				continue
			}
			p := &person{rec: sink.Record{Kind: sink.Kind(strings.ToLower(r.Kind)), ID: r.ID, Name: r.Name, Email: email, Company: r.Company, Via: "directory file, email " + email, Deals: inline}, line: r}
			people = append(people, p)
			byID[r.ID] = append(byID[r.ID], p)
			byEmail[email] = append(byEmail[email], p)
		case sink.KindCompany:
			if _, dup := companies[r.ID]; dup {
				bad(r, "id", fmt.Errorf("company %q listed twice", r.ID))
				continue
			}
			inline, err := parseDealsColumn(r.Deals)
			if err != nil {
				bad(r, "deals", err)
				continue
			}
			companies[r.ID] = &sink.Record{Kind: sink.KindCompany, ID: r.ID, Name: r.Name, Via: "directory file, company domain", Deals: inline}
			for _, d := range strings.FieldsFunc(r.Domain, func(c rune) bool { return c == ';' || c == ',' || c == ' ' }) {
				n, err := matcher.NormalizeDomain(strings.TrimPrefix(d, "@"))
				if err != nil || strings.Contains(n, "@") {
					bad(r, "domain", fmt.Errorf("invalid domain %q", d))
					continue
				}
				companyDomains[r.ID] = append(companyDomains[r.ID], n)
			}
		case sink.KindDeal:
			deals = append(deals, r)
		default:
			bad(r, "kind", fmt.Errorf("unknown kind %q (want contact, lead, company or deal)", r.Kind))
		}
	}

	for _, r := range deals {
		open, err := parseOpen(r.Open)
		if err != nil {
			bad(r, "open", err)
			continue
		}
		updated, err := parseUpdated(r.Updated)
		if err != nil {
			bad(r, "updated", err)
			continue
		}
		deal := sink.Deal{ID: r.ID, Name: r.Name, Open: open, UpdatedAt: updated}
		attached := false
		if r.Contact != "" {
			ps := byID[r.Contact]
			if len(ps) == 0 {
				bad(r, "contact", fmt.Errorf("no contact or lead with id %q", r.Contact))
				continue
			}
			for _, p := range ps {
				p.rec.Deals = append(p.rec.Deals, deal)
			}
			attached = true
		}
		if r.Email != "" {
			email, err := matcher.NormalizeAddress(r.Email)
			if err != nil || len(byEmail[email]) == 0 {
				bad(r, "email", fmt.Errorf("no contact or lead with email %q", r.Email))
				continue
			}
			for _, p := range byEmail[email] {
				if p.rec.ID != r.Contact { // not attached twice
					p.rec.Deals = append(p.rec.Deals, deal)
				}
			}
			attached = true
		}
		if r.Company != "" {
			c, ok := companies[r.Company]
			if !ok {
				bad(r, "company", fmt.Errorf("no company with id %q", r.Company))
				continue
			}
			c.Deals = append(c.Deals, deal)
			attached = true
		}
		if !attached {
			bad(r, "contact", errors.New("deal names no contact, email or company"))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	idx := &index{emails: map[string][]sink.Record{}, domains: map[string][]sink.Record{}}
	for _, p := range people {
		if c, ok := companies[p.rec.Company]; ok {
			p.rec.CompanyName = c.Name
		}
		idx.emails[p.rec.Email] = append(idx.emails[p.rec.Email], p.rec)
	}
	for id, doms := range companyDomains {
		for _, d := range doms {
			rec := *companies[id]
			rec.Domain = d
			idx.domains[d] = append(idx.domains[d], rec)
		}
	}
	return idx, nil
}
