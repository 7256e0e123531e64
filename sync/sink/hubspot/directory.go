package hubspot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// LookupEmails implements matcher.Directory: contacts whose email is one
// of emails (one search per 100 addresses), each with its primary company
// and its open deals. The error is transient, as the interface says.
func (c *Client) LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error) {
	if err := c.open(); err != nil {
		return nil, err
	}
	var found []object
	for chunk := range slices.Chunk(emails, maxIn) {
		objs, err := c.searchIn(ctx, "contacts", "email", chunk, []string{"email", "firstname", "lastname", "associatedcompanyid"})
		if err != nil {
			return nil, fmt.Errorf("look up %d contacts: %w", len(chunk), err)
		}
		found = append(found, objs...)
	}
	deals, err := c.openDeals(ctx, "contacts", found)
	if err != nil {
		return nil, fmt.Errorf("look up deals of %d contacts: %w", len(found), err)
	}
	out := map[string][]sink.Record{}
	for _, o := range found {
		email := strings.ToLower(o.prop("email"))
		if email == "" {
			continue
		}
		name := strings.TrimSpace(o.prop("firstname") + " " + o.prop("lastname"))
		out[email] = append(out[email], sink.Record{Kind: sink.KindContact, ID: o.ID, Name: name, Email: email,
			Company: o.prop("associatedcompanyid"), Deals: deals[o.ID], Via: "hubspot contacts email"})
	}
	return out, nil
}

// LookupDomains implements matcher.Directory: companies whose domain is
// one of domains, each with its open deals.
func (c *Client) LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error) {
	if err := c.open(); err != nil {
		return nil, err
	}
	var found []object
	for chunk := range slices.Chunk(domains, maxIn) {
		objs, err := c.searchIn(ctx, "companies", "domain", chunk, []string{"name", "domain"})
		if err != nil {
			return nil, fmt.Errorf("look up %d company domains: %w", len(chunk), err)
		}
		found = append(found, objs...)
	}
	deals, err := c.openDeals(ctx, "companies", found)
	if err != nil {
		return nil, fmt.Errorf("look up deals of %d companies: %w", len(found), err)
	}
	out := map[string][]sink.Record{}
	for _, o := range found {
		dom := strings.ToLower(o.prop("domain"))
		if dom == "" {
			continue
		}
		out[dom] = append(out[dom], sink.Record{Kind: sink.KindCompany, ID: o.ID, Name: o.prop("name"), Domain: dom,
			Deals: deals[o.ID], Via: "hubspot companies domain"})
	}
	return out, nil
}

// openDeals returns the deals not yet closed won or lost (hs_is_closed is
// not true) of each record, through its v4 associations.
func (c *Client) openDeals(ctx context.Context, typ string, recs []object) (map[string][]sink.Deal, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	assoc, err := c.associated(ctx, typ, "deals", ids)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var dealIDs []string
	for _, ds := range assoc {
		for _, d := range ds {
			if !seen[d] {
				seen[d] = true
				dealIDs = append(dealIDs, d)
			}
		}
	}
	objs, err := c.readDeals(ctx, dealIDs)
	if err != nil {
		return nil, err
	}
	open := map[string]sink.Deal{}
	for _, o := range objs {
		if o.prop("hs_is_closed") == "true" {
			continue
		}
		t, _ := time.Parse(time.RFC3339Nano, o.prop("hs_lastmodifieddate"))
		open[o.ID] = sink.Deal{ID: o.ID, Name: o.prop("dealname"), Open: true, UpdatedAt: t}
	}
	out := map[string][]sink.Deal{}
	for rec, ds := range assoc {
		for _, d := range ds {
			if deal, ok := open[d]; ok {
				out[rec] = append(out[rec], deal)
			}
		}
	}
	return out, nil
}
