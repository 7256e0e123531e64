// Package salesforce is a sink for Salesforce (REST API, sObjects and
// SOQL). Each message becomes one EmailMessage (MessageIdentifier = the
// Message-ID, Incoming, Status, MessageDate, the addresses, the text and
// HTML bodies, RelatedToId = the open opportunity, else the account) and
// one EmailMessageRelation per matched contact or lead, created in
// batches through the sObject Collections resource (at most 200 records
// a call). Before creating, a SOQL query by MessageIdentifier finds what
// an earlier run (with or without the state file) already created, so a
// message is logged once as long as its EmailMessage exists.
//
// Credentials: an access token read from token_file (a connected app's
// OAuth2 token or a session id), re-read once when Salesforce answers 401,
// and/or a connected app (oauth2) that issues new ones: from a refresh
// token, or with the JWT bearer flow. When nothing yields a token that
// works the adapter reports that re-authentication is needed (status
// shows it) and holds delivery.
package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/mailbody"
)

// ErrClosed is returned by deliveries after Close.
var ErrClosed = errors.New("salesforce sink is closed")

func init() {
	sink.Register("salesforce", sink.Adapter{
		Parse: func(section map[string]any) (any, error) { return ParseSettings(section) },
		Open: func(_ context.Context, cfg any, deps sink.Deps) (sink.Sink, error) {
			return New(cfg.(Config), deps)
		},
		Shared: true,
		Login:  login,
	})
}

// Client is the Salesforce sink; safe for concurrent use.
type Client struct {
	api       *api
	kv        sink.KV
	log       *slog.Logger
	closed    atomic.Bool
	deliverMu stdsync.Mutex // one search-then-create at a time

	unlinkMu      stdsync.Mutex
	pendingCursor string   // where the next poll starts once AckUnlinked is called
	pendingIDs    []string // the EmailMessages that poll reported
}

var (
	_ sink.Sink         = (*Client)(nil)
	_ sink.Checker      = (*Client)(nil)
	_ sink.Unlinker     = (*Client)(nil)
	_ sink.Health       = (*Client)(nil)
	_ matcher.Directory = (*Client)(nil)
)

// New reads the token and builds the client; it makes no call.
func New(conf Config, deps sink.Deps) (*Client, error) {
	if err := conf.Validate(); err != nil {
		return nil, err
	}
	tok, err := conf.readToken()
	if err != nil {
		return nil, err
	}
	if deps.HTTP == nil {
		deps.HTTP = sink.NewHTTPClient(sink.DefaultHTTPTimeout)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.KV == nil {
		deps.KV = &sink.MemoryKV{}
	}
	hc := *deps.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	g, stored, err := newGrant(conf.OAuth2, &hc, deps.Tokens)
	if err != nil {
		return nil, err
	}
	a := &api{conf: conf, base: conf.InstanceURL + "/services/data/v" + conf.APIVersion, hc: &hc, log: deps.Logger, grant: g,
		now: time.Now, token: tok, fileToken: tok, lim: rate.NewLimiter(rate.Limit(conf.RequestsPerSecond), max(1, int(conf.RequestsPerSecond)))}
	if tok == "" && stored != nil {
		a.token = stored.AccessToken // from the last run; a 401 renews it
	}
	if deps.Metrics != nil {
		if err := registerMetrics(deps.Metrics, a); err != nil {
			return nil, fmt.Errorf("%s: metrics: %w", configPath, err)
		}
	} else if err := registerMetrics(nopRegisterer{}, a); err != nil {
		return nil, err
	}
	return &Client{api: a, kv: deps.KV, log: deps.Logger}, nil
}

// Health implements sink.Health: whether Salesforce refused the
// connected app's grant.
func (c *Client) Health() string { return c.api.health() }

// Close makes later deliveries fail; a second Close returns nil.
func (c *Client) Close() error { c.closed.Store(true); return nil }

// soqlString quotes s for SOQL (single quotes, backslash escapes).
func soqlString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`, `"`, `\"`)
	return "'" + r.Replace(s) + "'"
}

func soqlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = soqlString(x)
	}
	return "(" + strings.Join(q, ",") + ")"
}

// query runs SOQL and decodes the records of the first page (up to 2,000
// records; every query here is bounded well below that by its IN list).
func (c *Client) query(ctx context.Context, soql string, out any) error {
	var res struct {
		Records json.RawMessage `json:"records"`
	}
	if err := c.api.call(ctx, "GET", "query", "/query", url.Values{"q": {soql}}, nil, &res); err != nil {
		return err
	}
	return json.Unmarshal(res.Records, out)
}

// inChunk bounds the values of one IN list, to keep URLs well under
// Salesforce's 16,384-character limit.
const inChunk = 100

func chunks(xs []string, n int) [][]string {
	var out [][]string
	for len(xs) > n {
		out = append(out, xs[:n])
		xs = xs[n:]
	}
	if len(xs) > 0 {
		out = append(out, xs)
	}
	return out
}

// LookupEmails finds Contacts and unconverted Leads by Email, each with
// its Account and the Account's open Opportunities.
func (c *Client) LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error) {
	out := map[string][]sink.Record{}
	for _, part := range chunks(emails, inChunk) {
		var contacts []struct {
			ID, Name, Email, AccountID string
			Account                    *struct{ Name string }
		}
		if err := c.query(ctx, "SELECT Id, Name, Email, AccountId, Account.Name FROM Contact WHERE Email IN "+soqlList(part), &contacts); err != nil {
			return nil, err
		}
		var accounts []string
		for _, ct := range contacts {
			r := sink.Record{Kind: sink.KindContact, ID: ct.ID, Name: ct.Name, Email: strings.ToLower(ct.Email), Company: ct.AccountID,
				Via: "salesforce Contact.Email"}
			if ct.Account != nil {
				r.CompanyName = ct.Account.Name
			}
			if ct.AccountID != "" {
				accounts = append(accounts, ct.AccountID)
			}
			out[r.Email] = append(out[r.Email], r)
		}
		var leads []struct{ ID, Name, Email, Company string }
		if err := c.query(ctx, "SELECT Id, Name, Email, Company FROM Lead WHERE IsConverted = false AND Email IN "+soqlList(part), &leads); err != nil {
			return nil, err
		}
		for _, l := range leads {
			e := strings.ToLower(l.Email)
			out[e] = append(out[e], sink.Record{Kind: sink.KindLead, ID: l.ID, Name: l.Name, Email: e, CompanyName: l.Company, Via: "salesforce Lead.Email"})
		}
		deals, err := c.openOpportunities(ctx, accounts)
		if err != nil {
			return nil, err
		}
		for e, rs := range out {
			for i := range rs {
				if rs[i].Company != "" {
					rs[i].Deals = deals[rs[i].Company]
				}
			}
			out[e] = rs
		}
	}
	return out, nil
}

func (c *Client) openOpportunities(ctx context.Context, accounts []string) (map[string][]sink.Deal, error) {
	out := map[string][]sink.Deal{}
	for _, part := range chunks(accounts, inChunk) {
		var opps []struct {
			ID, Name, AccountID string
			LastModifiedDate    string
		}
		if err := c.query(ctx, "SELECT Id, Name, AccountId, LastModifiedDate FROM Opportunity WHERE IsClosed = false AND AccountId IN "+soqlList(part), &opps); err != nil {
			return nil, err
		}
		for _, o := range opps {
			t, _ := time.Parse("2006-01-02T15:04:05.000-0700", o.LastModifiedDate)
			out[o.AccountID] = append(out[o.AccountID], sink.Deal{ID: o.ID, Name: o.Name, Open: true, UpdatedAt: t})
		}
	}
	return out, nil
}

// LookupDomains finds Accounts whose Website's host is the domain (or
// www. and the domain). SOQL cannot compare a URL's host, so a LIKE finds
// candidates and the host is compared here.
func (c *Client) LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error) {
	out := map[string][]sink.Record{}
	for _, d := range domains {
		var accts []struct{ ID, Name, Website string }
		if err := c.query(ctx, "SELECT Id, Name, Website FROM Account WHERE Website LIKE "+soqlString("%"+d+"%"), &accts); err != nil {
			return nil, err
		}
		var ids []string
		for _, a := range accts {
			if websiteHost(a.Website) == d {
				out[d] = append(out[d], sink.Record{Kind: sink.KindCompany, ID: a.ID, Name: a.Name, Domain: d, Via: "salesforce Account.Website"})
				ids = append(ids, a.ID)
			}
		}
		deals, err := c.openOpportunities(ctx, ids)
		if err != nil {
			return nil, err
		}
		for i := range out[d] {
			out[d][i].Deals = deals[out[d][i].ID]
		}
	}
	return out, nil
}

func websiteHost(w string) string {
	w = strings.TrimSpace(strings.ToLower(w))
	if !strings.Contains(w, "://") {
		w = "https://" + w
	}
	u, err := url.Parse(w)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Hostname(), "www.")
}

// Check verifies the token and that EmailMessage and EmailMessageRelation
// records can be created (their describe says createable).
func (c *Client) Check(ctx context.Context) error {
	for _, obj := range []string{"EmailMessage", "EmailMessageRelation"} {
		var d struct {
			ObjectDescribe struct {
				Createable bool `json:"createable"`
			} `json:"objectDescribe"`
		}
		if err := c.api.call(ctx, "GET", "describe", "/sobjects/"+obj, nil, nil, &d); err != nil {
			return err
		}
		if !d.ObjectDescribe.Createable {
			return fmt.Errorf("salesforce: the token's user cannot create %s records; grant Create on %s (profile or permission set)", obj, obj)
		}
	}
	return nil
}

// clipBody is the most of each body an EmailMessage gets (its fields hold
// 32,000 characters).
const clipBody = 32000

func bodies(m *sink.Message) (text, html string) {
	if m.BodyOmitted || len(m.Body) == 0 {
		return "", ""
	}
	p := mailbody.Extract(m.Body, clipBody)
	return p.Text, p.HTML
}

type nopRegisterer struct{}

func (nopRegisterer) Register(prometheus.Collector) error  { return nil }
func (nopRegisterer) MustRegister(...prometheus.Collector) {}
func (nopRegisterer) Unregister(prometheus.Collector) bool { return true }
