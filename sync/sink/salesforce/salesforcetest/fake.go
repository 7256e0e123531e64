// Package salesforcetest is a stateful fake of the Salesforce REST API
// (v59.0) behind the apitest validator: every request and answer is checked
// against Salesforce's OpenAPI document (plus the /query and
// /composite/sobjects resources apitest adds from the developer guide).
// It understands exactly the SOQL shapes the adapter sends.
package salesforcetest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/mailsync/mailsync/sync/sink/apitest"
)

// Token is the access token the fake accepts unless SetToken changes it.
const Token = "00Dfake!test-access-token"

// Record is any sObject the fake stores: its type and fields.
type Record struct {
	Type   string
	Fields map[string]any
}

// Server is the fake; safe for concurrent use.
type Server struct {
	URL       string // instance URL (no /services path)
	Validator *apitest.Validator
	srv       *httptest.Server
	schemas   openapi3.Schemas

	mu      stdsync.Mutex
	token   string
	records []*Record
	next    int
	fail    []int // statuses to answer next; 403 means REQUEST_LIMIT_EXCEEDED
	calls   map[string]int
	deleted []deletion // what GET /sobjects/{type}/deleted reports
}

type deletion struct {
	typ, id string
	when    time.Time
}

// Start runs the fake on 127.0.0.1; it stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{token: Token, calls: map[string]int{}}
	s.Validator = apitest.Salesforce.Handler(t, http.HandlerFunc(s.serve))
	s.schemas = apitest.Salesforce.Load(t).Components.Schemas
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: s.Validator}}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// SetToken changes the accepted token.
func (s *Server) SetToken(tok string) { s.mu.Lock(); s.token = tok; s.mu.Unlock() }

// FailNext answers the next requests with these statuses.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	s.fail = append(s.fail, statuses...)
	s.mu.Unlock()
}

// Calls counts requests by "METHOD /path" below the API root.
func (s *Server) Calls(op string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls[op] }

// Add stores a record and returns its id.
func (s *Server) Add(typ string, fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(typ, fields)
}

var prefixes = map[string]string{"Contact": "003", "Lead": "00Q", "Account": "001", "Opportunity": "006", "EmailMessage": "02s", "EmailMessageRelation": "0Rc"}

func (s *Server) add(typ string, fields map[string]any) string {
	s.next++
	id := fmt.Sprintf("%s%015d", prefixes[typ], s.next)
	f := map[string]any{"Id": id}
	for k, v := range fields {
		f[k] = v
	}
	s.records = append(s.records, &Record{Type: typ, Fields: f})
	return id
}

// Drop deletes the records of one type and returns how many there were:
// the state a SIGKILL between two calls leaves behind.
func (s *Server) Drop(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept, n := s.records[:0], 0
	for _, r := range s.records {
		if r.Type == typ {
			n++
			continue
		}
		kept = append(kept, r)
	}
	s.records = kept
	return n
}

// Records returns copies of the records of one type.
func (s *Server) Records(typ string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.records {
		if r.Type == typ {
			f := map[string]any{}
			for k, v := range r.Fields {
				f[k] = v
			}
			out = append(out, Record{Type: r.Type, Fields: f})
		}
	}
	return out
}

// Identifiers counts EmailMessages per MessageIdentifier.
func (s *Server) Identifiers() map[string]int {
	out := map[string]int{}
	for _, r := range s.Records("EmailMessage") {
		id, _ := r.Fields["MessageIdentifier"].(string)
		out[id]++
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, []map[string]any{{"errorCode": code, "message": msg}})
}

const root = "/services/data/v59.0"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, root)
	s.mu.Lock()
	s.calls[r.Method+" "+path]++
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/100000", s.total()))
	if r.Header.Get("Authorization") != "Bearer "+s.token || s.token == "" {
		s.mu.Unlock()
		fail(w, 401, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	if len(s.fail) > 0 {
		st := s.fail[0]
		s.fail = s.fail[1:]
		s.mu.Unlock()
		if st == 403 {
			fail(w, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		} else {
			fail(w, st, "SERVER_UNAVAILABLE", http.StatusText(st))
		}
		return
	}
	defer s.mu.Unlock()
	switch {
	case r.Method == "GET" && path == "/query":
		s.query(w, r.URL.Query().Get("q"))
	case r.Method == "POST" && path == "/composite/sobjects":
		s.collection(w, r)
	case r.Method == "GET" && strings.HasPrefix(path, "/sobjects/") && strings.HasSuffix(path, "/deleted"):
		s.getDeleted(w, r, strings.TrimSuffix(strings.TrimPrefix(path, "/sobjects/"), "/deleted"))
	case r.Method == "DELETE" && strings.HasPrefix(path, "/sobjects/EmailMessage/"):
		if !s.remove("EmailMessage", strings.TrimPrefix(path, "/sobjects/EmailMessage/")) {
			fail(w, 404, "NOT_FOUND", "The requested resource does not exist")
			return
		}
		w.WriteHeader(204)
	case r.Method == "GET" && (path == "/sobjects/EmailMessage" || path == "/sobjects/EmailMessageRelation"):
		name := strings.TrimPrefix(path, "/sobjects/")
		writeJSON(w, 200, map[string]any{"objectDescribe": map[string]any{"name": name, "createable": true, "queryable": true}, "recentItems": []any{}})
	default:
		fail(w, 404, "NOT_FOUND", "The requested resource does not exist")
	}
}

func (s *Server) total() int {
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

var (
	fromRE  = regexp.MustCompile(`(?i)^SELECT (.+) FROM (\w+)(?: WHERE (.+))?$`)
	condRE  = regexp.MustCompile(`(?i)^(\w+) (IN|LIKE|=) (.+)$`)
	valueRE = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'|(true|false)`)
)

func unquote(s string) string {
	return strings.NewReplacer(`\'`, `'`, `\\`, `\`, `\"`, `"`).Replace(s)
}

// query evaluates SELECT fields FROM type WHERE c1 AND c2 with conditions
// "F IN ('a','b')", "F LIKE '%x%'" and "F = false".
func (s *Server) query(w http.ResponseWriter, q string) {
	m := fromRE.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		fail(w, 400, "MALFORMED_QUERY", "unexpected query: "+q)
		return
	}
	fields := strings.Split(m[1], ",")
	typ := m[2]
	var conds [][]string
	if m[3] != "" {
		for _, c := range strings.Split(m[3], " AND ") {
			cm := condRE.FindStringSubmatch(strings.TrimSpace(c))
			if cm == nil {
				fail(w, 400, "MALFORMED_QUERY", "unexpected condition: "+c)
				return
			}
			conds = append(conds, cm[1:])
		}
	}
	out := []map[string]any{}
	for _, r := range s.records {
		if r.Type != typ || !matches(r, conds) {
			continue
		}
		rec := map[string]any{"attributes": map[string]any{"type": typ, "url": root + "/sobjects/" + typ + "/" + r.Fields["Id"].(string)}}
		for _, f := range fields {
			f = strings.TrimSpace(f)
			if rel, field, ok := strings.Cut(f, "."); ok { // Account.Name
				if id, _ := r.Fields[rel+"Id"].(string); id != "" {
					for _, p := range s.records {
						if p.Fields["Id"] == id {
							rec[rel] = map[string]any{"attributes": map[string]any{"type": rel}, field: p.Fields[field]}
						}
					}
				}
				continue
			}
			rec[f] = r.Fields[f]
		}
		out = append(out, rec)
	}
	writeJSON(w, 200, map[string]any{"totalSize": len(out), "done": true, "records": out})
}

func matches(r *Record, conds [][]string) bool {
	for _, c := range conds {
		field, op, arg := c[0], strings.ToUpper(c[1]), c[2]
		v := r.Fields[field]
		switch op {
		case "IN":
			hit := false
			for _, vm := range valueRE.FindAllStringSubmatch(arg, -1) {
				if s, ok := v.(string); ok && strings.EqualFold(s, unquote(vm[1])) {
					hit = true
				}
			}
			if !hit {
				return false
			}
		case "LIKE":
			vm := valueRE.FindStringSubmatch(arg)
			s, _ := v.(string)
			if vm == nil || !strings.Contains(strings.ToLower(s), strings.ToLower(strings.Trim(unquote(vm[1]), "%"))) {
				return false
			}
		case "=":
			b, _ := v.(bool)
			if (arg == "true") != b {
				return false
			}
		}
	}
	return true
}

func (s *Server) collection(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Records []map[string]any `json:"records"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		fail(w, 400, "JSON_PARSER_ERROR", err.Error())
		return
	}
	out := []map[string]any{}
	for _, rec := range in.Records {
		attrs, _ := rec["attributes"].(map[string]any)
		typ, _ := attrs["type"].(string)
		// The collection's document only says "records"; each record must
		// still be a valid sObject of its type.
		if ref := s.schemas[typ+"SObject"]; ref == nil || ref.Value == nil {
			s.Validator.Report("composite/sobjects: record of type %q has no sObject schema in the spec", typ)
		} else if err := ref.Value.VisitJSON(rec); err != nil {
			s.Validator.Report("composite/sobjects: %s record breaks the spec: %v", typ, err)
		}
		delete(rec, "attributes")
		if typ == "EmailMessageRelation" {
			if id, _ := rec["EmailMessageId"].(string); !s.exists("EmailMessage", id) {
				out = append(out, map[string]any{"success": false, "errors": []map[string]any{{"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid EmailMessageId", "fields": []string{"EmailMessageId"}}}})
				continue
			}
		}
		if typ == "EmailMessage" {
			if _, ok := rec["Status"].(string); !ok {
				out = append(out, map[string]any{"success": false, "errors": []map[string]any{{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Status]", "fields": []string{"Status"}}}})
				continue
			}
		}
		id := s.add(typ, rec)
		out = append(out, map[string]any{"id": id, "success": true, "errors": []any{}})
	}
	writeJSON(w, 200, out)
}

// Delete removes a record as a user would in Salesforce: it is reported
// by GET /sobjects/{type}/deleted from then on.
func (s *Server) Delete(typ, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remove(typ, id)
}

func (s *Server) remove(typ, id string) bool {
	for i, r := range s.records {
		if r.Type == typ && r.Fields["Id"] == id {
			s.records = append(s.records[:i], s.records[i+1:]...)
			s.deleted = append(s.deleted, deletion{typ: typ, id: id, when: time.Now().UTC()})
			return true
		}
	}
	return false
}

// getDeleted answers GET /sobjects/{type}/deleted?start=&end= as
// Salesforce does: seconds ignored, start no more than 15 days back and
// before end, the deletions from start to the end of end's minute, and
// latestDateCovered (end's minute) in Salesforce's own date format.
func (s *Server) getDeleted(w http.ResponseWriter, r *http.Request, typ string) {
	start, err1 := time.Parse(time.RFC3339, r.URL.Query().Get("start"))
	end, err2 := time.Parse(time.RFC3339, r.URL.Query().Get("end"))
	start, end = start.UTC().Truncate(time.Minute), end.UTC().Truncate(time.Minute)
	now := time.Now().UTC()
	switch {
	case err1 != nil || err2 != nil:
		fail(w, 400, "INVALID_DATE_FORMAT", "start and end must be ISO 8601 date-times")
		return
	case start.Before(now.Add(-15*24*time.Hour)) || !end.After(start):
		fail(w, 400, "INVALID_REPLICATION_DATE", "start must be within 15 days and before end")
		return
	}
	recs := []map[string]any{}
	for _, d := range s.deleted {
		if d.typ == typ && !d.when.Before(start) && d.when.Before(end.Add(time.Minute)) {
			recs = append(recs, map[string]any{"id": d.id, "deletedDate": d.when.Format(sfDate)})
		}
	}
	writeJSON(w, 200, map[string]any{"deletedRecords": recs,
		"earliestDateAvailable": now.Add(-15 * 24 * time.Hour).Truncate(time.Minute).Format(sfDate),
		"latestDateCovered":     end.Format(sfDate)})
}

// sfDate is how Salesforce writes date-times in answers.
const sfDate = "2006-01-02T15:04:05.000-0700"

func (s *Server) exists(typ, id string) bool {
	for _, r := range s.records {
		if r.Type == typ && r.Fields["Id"] == id {
			return true
		}
	}
	return false
}
