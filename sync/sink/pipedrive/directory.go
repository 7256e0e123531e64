package pipedrive

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// lookupConcurrency bounds the searches of one look-up in flight; the rate
// limiter paces them all.
const lookupConcurrency = 4

// searchLimit is how many persons one search returns; an address shared
// by more persons than that is not a useful match anyway.
const searchLimit = 20

type searchResult struct {
	Items []struct {
		Item struct {
			ID           int      `json:"id"`
			Name         string   `json:"name"`
			Emails       []string `json:"emails"`
			Organization *struct {
				ID   int    `json:"id"`
				Name string `json:"name"`
			} `json:"organization"`
		} `json:"item"`
	} `json:"items"`
}

type deal struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Status     string `json:"status"`
	UpdateTime string `json:"update_time"`
}

// searchPersons runs Pipedrive's person search on the email field.
func (c *Client) searchPersons(ctx context.Context, term string, exact bool) (searchResult, error) {
	q := url.Values{"term": {term}, "fields": {"email"}, "limit": {strconv.Itoa(searchLimit)}}
	if exact {
		q.Set("exact_match", "true")
	}
	var res searchResult
	err := c.api.call(ctx, "GET", "persons/search", "/persons/search", q, nil, &res, nil)
	return res, err
}

// openDeals lists the open deals of a person or an organization.
func (c *Client) openDeals(ctx context.Context, kind string, id int) ([]sink.Deal, error) {
	var ds []deal
	q := url.Values{"status": {"open"}, "limit": {"100"}}
	if err := c.api.call(ctx, "GET", kind+"/deals", "/"+kind+"/"+strconv.Itoa(id)+"/deals", q, nil, &ds, nil); err != nil {
		return nil, err
	}
	out := make([]sink.Deal, 0, len(ds))
	for _, d := range ds {
		out = append(out, sink.Deal{ID: strconv.Itoa(d.ID), Name: d.Title, Open: d.Status == "open", UpdatedAt: parseTime(d.UpdateTime)})
	}
	return out, nil
}

// LookupEmails finds persons by exact e-mail address (Pipedrive's search
// API, fields=email, exact_match). Each person's record carries its
// organization and the open deals of the person and of the organization.
func (c *Client) LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error) {
	return c.each(ctx, emails, func(ctx context.Context, email string) ([]sink.Record, error) {
		res, err := c.searchPersons(ctx, email, true)
		if err != nil {
			return nil, err
		}
		var recs []sink.Record
		for _, it := range res.Items {
			p := it.Item
			if !hasEmail(p.Emails, email) {
				continue // exact_match is per word in some accounts; check
			}
			r := sink.Record{Kind: sink.KindContact, ID: strconv.Itoa(p.ID), Name: p.Name, Email: email,
				Via: "pipedrive persons/search email exact"}
			deals, err := c.openDeals(ctx, "persons", p.ID)
			if err != nil {
				return nil, err
			}
			if p.Organization != nil && p.Organization.ID != 0 {
				r.Company, r.CompanyName = strconv.Itoa(p.Organization.ID), p.Organization.Name
				od, err := c.openDeals(ctx, "organizations", p.Organization.ID)
				if err != nil {
					return nil, err
				}
				deals = mergeDeals(deals, od)
			}
			r.Deals = deals
			recs = append(recs, r)
		}
		return recs, nil
	})
}

// LookupDomains finds organizations by domain. Pipedrive organizations
// have no domain field and its search cannot match an e-mail suffix
// exactly, so the organizations are those of the persons whose address
// is at the domain: a person search for "@domain" on the email field,
// filtered here to addresses that end in exactly "@domain".
func (c *Client) LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error) {
	return c.each(ctx, domains, func(ctx context.Context, domain string) ([]sink.Record, error) {
		res, err := c.searchPersons(ctx, "@"+domain, false)
		if err != nil {
			return nil, err
		}
		var recs []sink.Record
		seen := map[int]bool{}
		for _, it := range res.Items {
			p := it.Item
			o := p.Organization
			if o == nil || o.ID == 0 || seen[o.ID] || !hasDomain(p.Emails, domain) {
				continue
			}
			seen[o.ID] = true
			deals, err := c.openDeals(ctx, "organizations", o.ID)
			if err != nil {
				return nil, err
			}
			recs = append(recs, sink.Record{Kind: sink.KindCompany, ID: strconv.Itoa(o.ID), Name: o.Name, Domain: domain,
				Deals: deals, Via: "pipedrive organization of persons @" + domain})
		}
		return recs, nil
	})
}

// each runs look up for every key, a few at a time, and collects the
// non-empty answers. The first error fails the whole look-up (transient,
// per matcher.Directory).
func (c *Client) each(ctx context.Context, keys []string, look func(context.Context, string) ([]sink.Record, error)) (map[string][]sink.Record, error) {
	out := make(map[string][]sink.Record, len(keys))
	var (
		mu       stdsync.Mutex
		firstErr error
		wg       stdsync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, lookupConcurrency)
	for _, k := range keys {
		if k == "" {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			recs, err := look(ctx, k)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && firstErr == nil:
				firstErr = err
				cancel()
			case err == nil && len(recs) > 0:
				out[k] = recs
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func hasEmail(emails []string, email string) bool {
	for _, e := range emails {
		if strings.EqualFold(strings.TrimSpace(e), email) {
			return true
		}
	}
	return false
}

func hasDomain(emails []string, domain string) bool {
	for _, e := range emails {
		if strings.HasSuffix(strings.ToLower(strings.TrimSpace(e)), "@"+domain) {
			return true
		}
	}
	return false
}

func mergeDeals(a, b []sink.Deal) []sink.Deal {
	seen := map[string]bool{}
	for _, d := range a {
		seen[d.ID] = true
	}
	for _, d := range b {
		if !seen[d.ID] {
			a = append(a, d)
		}
	}
	return a
}

// parseTime reads Pipedrive's "YYYY-MM-DD HH:MM:SS" (UTC); zero if not that.
func parseTime(s string) time.Time {
	t, err := time.Parse(recentsLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
