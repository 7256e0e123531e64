package apitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// quietTB records what the validator reports instead of failing the test,
// so tests can assert that a violation is caught.
type quietTB struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (q *quietTB) Cleanup(f func())               { q.cleanups = append(q.cleanups, f) }
func (q *quietTB) Errorf(format string, a ...any) { q.errors = append(q.errors, format) }
func (q *quietTB) finish() {
	for i := len(q.cleanups) - 1; i >= 0; i-- {
		q.cleanups[i]()
	}
}

func do(t *testing.T, h http.Handler, method, target, body string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func TestPipedriveValidator(t *testing.T) {
	okSearch := `{"success":true,"data":{"items":[{"result_score":1,"item":{"id":7,"type":"person","name":"Ada","emails":["ada@example.com"]}}]},"additional_data":{"pagination":{"start":0,"limit":100,"more_items_in_collection":false}}}`
	cases := []struct {
		name, method, target, body string
		status                     int    // the fake's answer
		answer                     string // the fake's body
		wantViolation              string // "" for none
	}{
		{"valid search", "GET", "/v1/persons/search?term=ada@example.com&fields=email&exact_match=true&api_token=x", "", 200, okSearch, ""},
		{"unknown path", "GET", "/v1/nothing/here?api_token=x", "", 200, `{}`, "not in the spec"},
		{"outside base path", "GET", "/persons/search?term=a&api_token=x", "", 200, `{}`, "not in the spec"},
		{"no token", "GET", "/v1/persons/search?term=ada", "", 200, okSearch, "request breaks the spec"},
		{"bad enum in query", "GET", "/v1/persons/search?term=ada&fields=mail&api_token=x", "", 200, okSearch, "request breaks the spec"},
		{"bad body type", "POST", "/v1/activities?api_token=x", `{"subject":"s","done":"yes"}`, 201, `{"success":true,"data":{"id":1}}`, "request breaks the spec"},
		{"bad response type", "GET", "/v1/persons/search?term=ada&api_token=x", "", 200, `{"success":"yes"}`, "response 200 breaks the spec"},
		{"documented 429", "GET", "/v1/persons/search?term=ada&api_token=x", "", 429, `{"success":false,"error":"Rate limit exceeded"}`, ""},
		{"429 with a wrong body", "GET", "/v1/persons/search?term=ada&api_token=x", "", 429, `{"ok":false}`, "response 429 breaks the spec"},
		{"undocumented status", "GET", "/v1/persons/search?term=ada&api_token=x", "", 418, `{}`, "response 418 breaks the spec"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &quietTB{TB: t}
			fake := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				io.WriteString(w, c.answer)
			})
			v := Pipedrive.Handler(q, fake)
			do(t, v, c.method, c.target, c.body)
			got := strings.Join(v.Violations(), "\n")
			q.finish()
			if c.wantViolation == "" {
				if got != "" {
					t.Errorf("violations = %s, want none", got)
				}
				return
			}
			if !strings.Contains(got, c.wantViolation) {
				t.Errorf("violations = %q, want one with %q", got, c.wantViolation)
			}
			if len(q.errors) == 0 {
				t.Errorf("the violation did not fail the test at cleanup")
			}
			if strings.Contains(got, "api_token=x") {
				t.Errorf("a violation shows the token: %s", got)
			}
		})
	}
}

func TestSalesforceValidator(t *testing.T) {
	const base = "/services/data/v59.0"
	record := func(i int) string {
		return `{"attributes":{"type":"EmailMessage"},"Subject":"s` + string(rune('a'+i%26)) + `"}`
	}
	var many []string
	for i := range 201 {
		many = append(many, record(i))
	}
	cases := []struct {
		name, method, target, body string
		auth                       bool
		status                     int
		answer                     string
		wantViolation              string
	}{
		{"query", "GET", base + "/query?q=SELECT+Id+FROM+Contact", "", true, 200, `{"totalSize":0,"done":true,"records":[]}`, ""},
		{"query without auth", "GET", base + "/query?q=SELECT+Id+FROM+Contact", "", false, 200, `{"totalSize":0,"done":true,"records":[]}`, "request breaks the spec"},
		{"collection", "POST", base + "/composite/sobjects", `{"allOrNone":false,"records":[` + record(0) + `]}`, true, 200, `[{"id":"02s000000000001","success":true,"errors":[]}]`, ""},
		{"collection over 200", "POST", base + "/composite/sobjects", `{"records":[` + strings.Join(many, ",") + `]}`, true, 200, `[]`, "request breaks the spec"},
		{"limit exceeded", "GET", base + "/query?q=x", "", true, 403, `[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"TotalRequests Limit exceeded."}]`, ""},
		{"dropped sobject", "GET", base + "/sobjects/AIApplication", "", true, 200, `{}`, "not in the spec"},
		{"email message describe", "GET", base + "/sobjects/EmailMessage", "", true, 200, `{"objectDescribe":{"name":"EmailMessage","createable":"yes"}}`, "response 200 breaks the spec"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &quietTB{TB: t}
			fake := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				io.WriteString(w, c.answer)
			})
			v := Salesforce.Handler(q, fake)
			req := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.auth {
				req.Header.Set("Authorization", "Bearer 00Dx!token")
			}
			v.ServeHTTP(httptest.NewRecorder(), req)
			got := strings.Join(v.Violations(), "\n")
			q.finish()
			if c.wantViolation == "" && got != "" {
				t.Errorf("violations = %s, want none", got)
			}
			if c.wantViolation != "" && !strings.Contains(got, c.wantViolation) {
				t.Errorf("violations = %q, want one with %q", got, c.wantViolation)
			}
		})
	}
}

func TestFetchRefusesWrongIntegrity(t *testing.T) {
	t.Setenv(CacheEnv, t.TempDir())
	p := Pipedrive.Package
	p.Integrity = "sha512-" + strings.Repeat("A", 86) + "=="
	if _, err := Fetch(t.Context(), p); err == nil || !strings.Contains(err.Error(), "integrity") {
		t.Fatalf("Fetch with a wrong integrity = %v, want an integrity error", err)
	}
}
