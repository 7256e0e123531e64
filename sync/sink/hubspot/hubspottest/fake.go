// Package hubspottest is a stateful fake of the part of HubSpot's API that
// mailsync uses: contacts, companies, deals, v4 associations and email
// engagements, with HubSpot's rate limits, error bodies and token checks.
// Every request it receives and every response it sends is validated
// against openapi.yaml (written from HubSpot's public API reference) by
// apitest, as the other vendors' fakes are; a violation fails the test
// that started the server.
package hubspottest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink/apitest"
)

// HubSpot-defined association type ids from an email.
const (
	EmailToContact = 198
	EmailToCompany = 186
	EmailToDeal    = 210
)

// DefaultKeyProperty is the custom email property the fake defines.
const DefaultKeyProperty = "mailsync_key"

// Scopes a private app for mailsync is given.
var Scopes = []string{"crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.companies.read", "crm.objects.deals.read", "sales-email-read"}

type object struct {
	id         int64
	props      map[string]string
	created    time.Time
	updated    time.Time
	archived   bool
	archivedAt time.Time
}

type assoc struct {
	to     int64
	typeID int
}

// Email is an email engagement as stored by the fake.
type Email struct {
	ID         string
	Properties map[string]string
	// Associations maps association type id to the record ids.
	Associations map[int][]string
	Archived     bool
}

// Options shape a fake.
type Options struct {
	// PerTenSeconds is the app's limit per rolling 10 s (default 100, the
	// documented limit of Free and Starter accounts).
	PerTenSeconds int
	// SearchPerSecond is the search endpoints' limit (default 5).
	SearchPerSecond int
	// KeyProperty is the custom email property the portal defines
	// (default mailsync_key).
	KeyProperty string
	// OAuth makes the fake an OAuth app: access tokens come from
	// /oauth/v1/token with the client credentials and refresh token below.
	OAuth bool
	// SearchLag keeps new records out of search results this long, as
	// HubSpot's search index trails writes by seconds.
	SearchLag time.Duration
}

// Server is a running fake.
type Server struct {
	srv  *httptest.Server
	val  *apitest.Validator
	opts Options

	mu        stdsync.Mutex
	nextID    int64
	objects   map[string]map[int64]*object // type -> id -> object
	assocs    map[string][]assoc           // "fromType/id/toType" -> to
	token     string                       // the valid access token
	scopes    []string
	refresh   string
	refreshes int
	codes     map[string]string // sign-in code -> redirect_uri it was issued for
	rotate    bool
	calls     []Call
	window    []time.Time // non-search calls in the last 10 s
	searchWin []time.Time // search calls in the last second
	faults    []fault
}

// Call is one request the fake answered.
type Call struct {
	At     time.Time
	Op     string // e.g. "POST /crm/v3/objects/emails/batch/create"
	Status int
}

// OAuth client credentials the fake accepts.
const (
	ClientID     = "mailsync-client"
	ClientSecret = "mailsync-client-secret"
)

// New starts a fake on 127.0.0.1; it stops when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.PerTenSeconds == 0 {
		opts.PerTenSeconds = 100
	}
	if opts.SearchPerSecond == 0 {
		opts.SearchPerSecond = 5
	}
	if opts.KeyProperty == "" {
		opts.KeyProperty = DefaultKeyProperty
	}
	s := &Server{opts: opts, nextID: 1000, codes: map[string]string{}, objects: map[string]map[int64]*object{}, assocs: map[string][]assoc{},
		scopes: append([]string(nil), Scopes...)}
	for _, typ := range []string{"contacts", "companies", "deals", "emails"} {
		s.objects[typ] = map[int64]*object{}
	}
	s.token = s.newToken()
	if opts.OAuth {
		s.refresh = "refresh-" + s.newToken()
	}
	d, err := Document()
	if err != nil {
		t.Fatal(err)
	}
	s.val = apitest.Validate(t, d, "", http.HandlerFunc(s.serve))
	s.srv = httptest.NewServer(s.val)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the fake's base URL (the adapter's base_url).
func (s *Server) URL() string { return s.srv.URL }

// Token is the access token the fake accepts now (the private-app token,
// or the OAuth access token issued last).
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// RefreshToken is the OAuth refresh token (OAuth fakes only).
func (s *Server) RefreshToken() string { return s.refresh }

// Refreshes counts access tokens issued from the refresh token.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// ExpireToken makes the current access token invalid, as an expired OAuth
// token or a rotated private-app token is.
func (s *Server) ExpireToken() {
	s.mu.Lock()
	s.token = s.newToken()
	s.mu.Unlock()
}

// RevokeRefresh makes the refresh token invalid too: re-auth is needed.
func (s *Server) RevokeRefresh() {
	s.mu.Lock()
	s.refresh = "revoked-" + s.newToken()
	s.mu.Unlock()
}

// SetScopes replaces the scopes the token carries.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	s.scopes = scopes
	s.mu.Unlock()
}

func (s *Server) newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "pat-na1-" + hex.EncodeToString(b)
}

// add seeds a record the test set up (AddContact, AddCompany, ...): it is
// old enough to be in the search index.
func (s *Server) add(typ string, props map[string]string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seedLocked(typ, props)
}

func (s *Server) seedLocked(typ string, props map[string]string) int64 {
	id := s.addLocked(typ, props)
	s.objects[typ][id].created = time.Now().Add(-s.opts.SearchLag)
	return id
}

func (s *Server) addLocked(typ string, props map[string]string) int64 {
	s.nextID++
	now := time.Now().UTC()
	p := map[string]string{"hs_object_id": strconv.FormatInt(s.nextID, 10), "hs_createdate": now.Format(time.RFC3339Nano), "hs_lastmodifieddate": now.Format(time.RFC3339Nano)}
	for k, v := range props {
		p[k] = v
	}
	s.objects[typ][s.nextID] = &object{id: s.nextID, props: p, created: now, updated: now}
	return s.nextID
}

func (s *Server) associateLocked(fromType string, from int64, toType string, to int64, typeID int) {
	k := assocKey(fromType, from, toType)
	for _, a := range s.assocs[k] {
		if a.to == to && a.typeID == typeID {
			return
		}
	}
	s.assocs[k] = append(s.assocs[k], assoc{to: to, typeID: typeID})
}

func assocKey(fromType string, id int64, toType string) string {
	return fromType + "/" + strconv.FormatInt(id, 10) + "/" + toType
}

// AddCompany adds a company and returns its id.
func (s *Server) AddCompany(name, domain string) string {
	return strconv.FormatInt(s.add("companies", map[string]string{"name": name, "domain": domain}), 10)
}

// AddContact adds a contact, with companyID as its primary company when
// not empty, and returns its id.
func (s *Server) AddContact(email, first, last, companyID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := map[string]string{"email": strings.ToLower(email), "firstname": first, "lastname": last}
	if companyID != "" {
		p["associatedcompanyid"] = companyID
	}
	id := s.seedLocked("contacts", p)
	if companyID != "" {
		cid, _ := strconv.ParseInt(companyID, 10, 64)
		s.associateLocked("contacts", id, "companies", cid, 1)
		s.associateLocked("companies", cid, "contacts", id, 2)
	}
	return strconv.FormatInt(id, 10)
}

// AddDeal adds a deal associated with the given contacts and companies.
func (s *Server) AddDeal(name string, closed bool, updated time.Time, contactIDs, companyIDs []string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.seedLocked("deals", map[string]string{"dealname": name, "hs_is_closed": strconv.FormatBool(closed),
		"hs_lastmodifieddate": updated.UTC().Format(time.RFC3339Nano)})
	for _, c := range contactIDs {
		cid, _ := strconv.ParseInt(c, 10, 64)
		s.associateLocked("contacts", cid, "deals", id, 4)
		s.associateLocked("deals", id, "contacts", cid, 3)
	}
	for _, c := range companyIDs {
		cid, _ := strconv.ParseInt(c, 10, 64)
		s.associateLocked("companies", cid, "deals", id, 342)
		s.associateLocked("deals", id, "companies", cid, 341)
	}
	return strconv.FormatInt(id, 10)
}

// Emails returns the email engagements, archived ones included, by id.
func (s *Server) Emails() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Email
	for _, o := range s.objects["emails"] {
		e := Email{ID: strconv.FormatInt(o.id, 10), Properties: map[string]string{}, Associations: map[int][]string{}, Archived: o.archived}
		for k, v := range o.props {
			e.Properties[k] = v
		}
		for _, to := range []string{"contacts", "companies", "deals"} {
			for _, a := range s.assocs[assocKey("emails", o.id, to)] {
				e.Associations[a.typeID] = append(e.Associations[a.typeID], strconv.FormatInt(a.to, 10))
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// KeyCounts counts the live email engagements per key property value.
func (s *Server) KeyCounts() map[string]int {
	n := map[string]int{}
	for _, e := range s.Emails() {
		if !e.Archived {
			n[e.Properties[s.opts.KeyProperty]]++
		}
	}
	return n
}

// Archive deletes an email engagement as a user in HubSpot would.
func (s *Server) Archive(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, _ := strconv.ParseInt(id, 10, 64)
	if o := s.objects["emails"][n]; o != nil && !o.archived {
		o.archived, o.archivedAt = true, time.Now().UTC()
	}
}

// Calls returns the requests answered so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Violations returns the spec violations seen so far (each also fails
// the test when it ends).
func (s *Server) Violations() []string { return s.val.Violations() }

// String names the fake.
func (s *Server) String() string { return fmt.Sprintf("hubspottest(%s)", s.srv.URL) }
