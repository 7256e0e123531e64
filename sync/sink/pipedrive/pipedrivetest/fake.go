// Package pipedrivetest is a stateful fake of Pipedrive's API v1 behind the
// apitest validator: every request the adapter sends and every answer the
// fake gives is checked against Pipedrive's own OpenAPI document, and any
// violation fails the test. It keeps persons, organizations, deals and
// activities, enforces a rate limit with Pipedrive's headers, and can be
// told to fail.
package pipedrivetest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink/apitest"
)

// Token is the API token the fake accepts unless SetToken changes it.
const Token = "pd-test-token-0123456789"

// Person, Org and Deal are the fake's records.
type Person struct {
	ID     int
	Name   string
	Emails []string
	OrgID  int
}

type Org struct {
	ID   int
	Name string
}

type Deal struct {
	ID       int
	Title    string
	Status   string // open, won, lost
	PersonID int
	OrgID    int
}

// Activity is an activity as the fake stores it.
type Activity struct {
	ID       int
	Subject  string
	Type     string
	Done     bool
	DueDate  string
	DueTime  string
	Note     string
	PersonID int
	OrgID    int
	DealID   int
	Active   bool
	Updated  time.Time
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	URL       string // base URL including /v1
	Validator *apitest.Validator
	srv       *httptest.Server

	mu         stdsync.Mutex
	token      string
	persons    []Person
	orgs       []Org
	deals      []Deal
	activities []*Activity
	nextID     int
	fail       []int // statuses to answer next, one per request
	// rate limit: at most limit requests per window, like Pipedrive's
	// rolling 2-second window.
	limit   int
	window  time.Duration
	stamps  []time.Time
	limited int // 429s sent
	calls   map[string]int
}

// Start starts the fake on 127.0.0.1 behind the validator; it stops when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{token: Token, nextID: 1000, window: 2 * time.Second, calls: map[string]int{}}
	s.Validator = apitest.Pipedrive.Handler(t, http.HandlerFunc(s.serve))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: s.Validator}}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL + "/v1"
	return s
}

// SetToken changes the token the fake accepts (an empty one refuses all).
func (s *Server) SetToken(tok string) { s.mu.Lock(); s.token = tok; s.mu.Unlock() }

// SetRateLimit makes the fake answer 429 beyond limit requests per window
// (0: no limit).
func (s *Server) SetRateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	s.limit, s.window = limit, window
	s.mu.Unlock()
}

// FailNext answers the next len(statuses) requests with these statuses.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	s.fail = append(s.fail, statuses...)
	s.mu.Unlock()
}

// AddPerson, AddOrg and AddDeal add records and return their ids.
func (s *Server) AddOrg(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.orgs = append(s.orgs, Org{ID: s.nextID, Name: name})
	return s.nextID
}

func (s *Server) AddPerson(name string, orgID int, emails ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.persons = append(s.persons, Person{ID: s.nextID, Name: name, Emails: emails, OrgID: orgID})
	return s.nextID
}

func (s *Server) AddDeal(title, status string, personID, orgID int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.deals = append(s.deals, Deal{ID: s.nextID, Title: title, Status: status, PersonID: personID, OrgID: orgID})
	return s.nextID
}

// Activities returns a copy of the live activities.
func (s *Server) Activities() []Activity {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Activity
	for _, a := range s.activities {
		if a.Active {
			out = append(out, *a)
		}
	}
	return out
}

// Markers counts live activities per mailsync key marker.
func (s *Server) Markers() map[string]int {
	out := map[string]int{}
	for _, a := range s.Activities() {
		if i := strings.Index(a.Note, "mailsync-key: "); i >= 0 {
			k := a.Note[i+len("mailsync-key: "):]
			if j := strings.IndexAny(k, "< \t\r\n"); j >= 0 {
				k = k[:j]
			}
			out[k]++
		}
	}
	return out
}

// DeleteActivity deletes as a user would in Pipedrive's UI.
func (s *Server) DeleteActivity(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.activities {
		if a.ID == id {
			a.Active, a.Updated = false, time.Now().UTC()
		}
	}
}

// Limited returns how many requests got a 429; Calls how many reached
// each endpoint ("GET /activities").
func (s *Server) Limited() int { s.mu.Lock(); defer s.mu.Unlock(); return s.limited }
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func failure(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"success": false, "error": msg, "error_info": "Please check developers.pipedrive.com"})
}

func ok(w http.ResponseWriter, status int, data any, extra any) {
	body := map[string]any{"success": true, "data": data}
	if extra != nil {
		body["additional_data"] = extra
	}
	writeJSON(w, status, body)
}

// admit applies the token, scripted failures and the rate limit; it
// reports whether the request may be served.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.Method+" "+strings.TrimPrefix(r.URL.Path, "/v1")]++
	if s.token == "" || r.URL.Query().Get("api_token") != s.token {
		failure(w, http.StatusUnauthorized, "You need to be authorized to make this request.")
		return false
	}
	if s.limit > 0 {
		now := time.Now()
		cut := 0
		for cut < len(s.stamps) && now.Sub(s.stamps[cut]) >= s.window {
			cut++
		}
		s.stamps = s.stamps[cut:]
		reset := 1
		if len(s.stamps) > 0 {
			reset = max(1, int((s.window-now.Sub(s.stamps[0])+time.Second-1)/time.Second))
		}
		w.Header().Set("X-Ratelimit-Limit", strconv.Itoa(s.limit))
		w.Header().Set("X-Ratelimit-Reset", strconv.Itoa(reset))
		if len(s.stamps) >= s.limit {
			s.limited++
			w.Header().Set("X-Ratelimit-Remaining", "0")
			failure(w, http.StatusTooManyRequests, "Request over limit")
			return false
		}
		s.stamps = append(s.stamps, now)
		w.Header().Set("X-Ratelimit-Remaining", strconv.Itoa(s.limit-len(s.stamps)))
	}
	if len(s.fail) > 0 {
		st := s.fail[0]
		s.fail = s.fail[1:]
		if st == http.StatusTooManyRequests {
			s.limited++
			w.Header().Set("X-Ratelimit-Remaining", "0")
			w.Header().Set("X-Ratelimit-Reset", "1")
		}
		failure(w, st, http.StatusText(st))
		return false
	}
	return true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r) {
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == "GET" && path == "/users/me":
		ok(w, 200, map[string]any{"id": 1, "name": "API User", "email": "api@example.com", "active_flag": true}, nil)
	case r.Method == "GET" && path == "/activityTypes":
		ok(w, 200, []map[string]any{{"id": 1, "name": "Call", "key_string": "call", "active_flag": true}, {"id": 5, "name": "Email", "key_string": "email", "active_flag": true}}, nil)
	case r.Method == "GET" && path == "/persons/search":
		s.searchPersons(w, r)
	case r.Method == "GET" && len(parts) == 3 && parts[2] == "deals" && (parts[0] == "persons" || parts[0] == "organizations"):
		s.listDeals(w, r, parts[0], parts[1])
	case r.Method == "GET" && path == "/activities":
		s.listActivities(w, r)
	case r.Method == "POST" && path == "/activities":
		s.addActivity(w, r)
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "activities":
		s.deleteActivity(w, parts[1])
	case r.Method == "GET" && path == "/recents":
		s.recents(w, r)
	default:
		failure(w, http.StatusNotFound, "Unknown method .")
	}
}

func (s *Server) searchPersons(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	term := strings.ToLower(q.Get("term"))
	exact := q.Get("exact_match") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	items := []map[string]any{}
	for _, p := range s.persons {
		hit := false
		for _, e := range p.Emails {
			e = strings.ToLower(e)
			if (exact && e == term) || (!exact && strings.Contains(e, term)) {
				hit = true
			}
		}
		if !hit {
			continue
		}
		item := map[string]any{"id": p.ID, "type": "person", "name": p.Name, "emails": p.Emails, "phones": []string{}}
		if p.OrgID != 0 {
			for _, o := range s.orgs {
				if o.ID == p.OrgID {
					item["organization"] = map[string]any{"id": o.ID, "name": o.Name}
				}
			}
		}
		items = append(items, map[string]any{"result_score": 1.0, "item": item})
	}
	ok(w, 200, map[string]any{"items": items}, map[string]any{"pagination": map[string]any{"start": 0, "limit": 100, "more_items_in_collection": false}})
}

func (s *Server) listDeals(w http.ResponseWriter, r *http.Request, kind, id string) {
	n, _ := strconv.Atoi(id)
	status := r.URL.Query().Get("status")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, d := range s.deals {
		if (kind == "persons" && d.PersonID != n) || (kind == "organizations" && d.OrgID != n) {
			continue
		}
		if status != "" && d.Status != status {
			continue
		}
		out = append(out, map[string]any{"id": d.ID, "title": d.Title, "status": d.Status, "update_time": "2025-03-01 10:00:00"})
	}
	ok(w, 200, out, map[string]any{"pagination": map[string]any{"start": 0, "limit": 100, "more_items_in_collection": false}})
}

func (a *Activity) json() map[string]any {
	m := map[string]any{"id": a.ID, "subject": a.Subject, "type": a.Type, "done": a.Done, "due_date": a.DueDate,
		"due_time": a.DueTime, "note": a.Note, "active_flag": a.Active, "update_time": a.Updated.Format("2006-01-02 15:04:05"), "user_id": 1}
	if a.PersonID != 0 {
		m["person_id"] = a.PersonID
	}
	if a.OrgID != 0 {
		m["org_id"] = a.OrgID
	}
	if a.DealID != 0 {
		m["deal_id"] = a.DealID
	}
	return m
}

func (s *Server) listActivities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, _ := strconv.Atoi(q.Get("start"))
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []map[string]any
	for _, a := range s.activities {
		if !a.Active || (q.Get("type") != "" && a.Type != q.Get("type")) ||
			(q.Get("start_date") != "" && a.DueDate < q.Get("start_date")) ||
			(q.Get("end_date") != "" && a.DueDate > q.Get("end_date")) {
			continue
		}
		match = append(match, a.json())
	}
	page := []map[string]any{}
	if start < len(match) {
		page = match[start:min(len(match), start+limit)]
	}
	more := start+limit < len(match)
	ok(w, 200, page, map[string]any{"pagination": map[string]any{"start": start, "limit": limit, "more_items_in_collection": more, "next_start": start + limit}})
}

func (s *Server) addActivity(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Subject  string `json:"subject"`
		Type     string `json:"type"`
		Done     int    `json:"done"`
		DueDate  string `json:"due_date"`
		DueTime  string `json:"due_time"`
		Note     string `json:"note"`
		PersonID int    `json:"person_id"`
		OrgID    int    `json:"org_id"`
		DealID   int    `json:"deal_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		failure(w, 400, "Bad request: "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.Type != "email" && in.Type != "call" {
		failure(w, 400, fmt.Sprintf("Activity type %q does not exist", in.Type))
		return
	}
	if in.PersonID != 0 && !slices.ContainsFunc(s.persons, func(p Person) bool { return p.ID == in.PersonID }) {
		failure(w, 404, "Person not found")
		return
	}
	s.nextID++
	a := &Activity{ID: s.nextID, Subject: in.Subject, Type: in.Type, Done: in.Done == 1, DueDate: in.DueDate, DueTime: in.DueTime,
		Note: in.Note, PersonID: in.PersonID, OrgID: in.OrgID, DealID: in.DealID, Active: true, Updated: time.Now().UTC()}
	s.activities = append(s.activities, a)
	ok(w, 201, a.json(), nil)
}

func (s *Server) deleteActivity(w http.ResponseWriter, id string) {
	n, _ := strconv.Atoi(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.activities {
		if a.ID == n && a.Active {
			a.Active, a.Updated = false, time.Now().UTC()
			ok(w, 200, map[string]any{"id": n}, nil)
			return
		}
	}
	failure(w, 404, "Activity not found")
}

func (s *Server) recents(w http.ResponseWriter, r *http.Request) {
	since, err := time.Parse("2006-01-02 15:04:05", r.URL.Query().Get("since_timestamp"))
	if err != nil {
		failure(w, 400, "since_timestamp is invalid")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items := []map[string]any{}
	last := since
	for _, a := range s.activities {
		if a.Updated.Truncate(time.Second).Before(since) {
			continue
		}
		items = append(items, map[string]any{"item": "activity", "id": a.ID, "data": a.json()})
		if a.Updated.After(last) {
			last = a.Updated
		}
	}
	ok(w, 200, items, map[string]any{"since_timestamp": since.Format("2006-01-02 15:04:05"), "last_timestamp_on_page": last.Format("2006-01-02 15:04:05"),
		"pagination": map[string]any{"start": 0, "limit": 500, "more_items_in_collection": false}})
}
