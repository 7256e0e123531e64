package apitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	stdsync "sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// routeHost is the server every loaded document is routed under: the fake
// listens on 127.0.0.1:port, the vendor's documents name the vendor's host,
// so both sides are rewritten to this one.
const routeHost = "apitest.invalid"

// maxBody bounds a request or response body the validator buffers.
const maxBody = 64 << 20

// Validator is an http.Handler that checks every request against the
// document before handing it to the fake, and every response the fake
// writes before it reaches the client. Violations are recorded and fail
// the test at cleanup; a request that breaks the document is answered 400
// (the fake never sees it), so the client under test fails too.
type Validator struct {
	t      testing.TB
	router routers.Router
	next   http.Handler
	prefix string

	mu         stdsync.Mutex
	violations []string
	requests   int
}

// Validate wraps next. basePath is the path under which the vendor serves
// the document's paths ("/v1" for Pipedrive, "/services/data/v59.0" for
// Salesforce); requests outside it are violations too. The document's
// servers are replaced; the document is otherwise used as loaded.
func Validate(t testing.TB, doc *openapi3.T, basePath string, next http.Handler) *Validator {
	t.Helper()
	routed := *doc
	routed.Servers = openapi3.Servers{{URL: "http://" + routeHost + strings.TrimSuffix(basePath, "/")}}
	r, err := gorillamux.NewRouter(&routed)
	if err != nil {
		t.Fatalf("apitest: router: %v", err)
	}
	v := &Validator{t: t, router: r, next: next, prefix: strings.TrimSuffix(basePath, "/")}
	t.Cleanup(func() {
		for _, s := range v.Violations() {
			t.Errorf("apitest: %s", s)
		}
	})
	return v
}

// Violations returns what broke the document so far.
func (v *Validator) Violations() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.violations...)
}

// Requests counts the requests that reached the validator.
func (v *Validator) Requests() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.requests
}

// Report records a violation a fake found itself, for what the document
// describes but the router cannot check (the records inside a Salesforce
// collection, validated against their sObject schema).
func (v *Validator) Report(format string, args ...any) { v.violate(format, args...) }

func (v *Validator) violate(format string, args ...any) {
	v.mu.Lock()
	v.violations = append(v.violations, fmt.Sprintf(format, args...))
	v.mu.Unlock()
}

// options: every status the fake answers must be documented, a body the
// operation does not declare is refused, and credentials must be present
// where the operation's security scheme puts them (the fake checks their
// value).
func options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus:             true,
		RejectWhenRequestBodyNotSpecified: true,
		MultiError:                        true,
		AuthenticationFunc:                authenticate,
	}
}

// authenticate checks that a request carries credentials of the scheme's
// kind; which values are valid is the fake's business.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	r := in.RequestValidationInput.Request
	switch s.Type {
	case "apiKey":
		switch s.In {
		case "query":
			if r.URL.Query().Get(s.Name) == "" {
				return fmt.Errorf("query parameter %s is missing", s.Name)
			}
		case "header":
			if r.Header.Get(s.Name) == "" {
				return fmt.Errorf("header %s is missing", s.Name)
			}
		case "cookie":
			if _, err := r.Cookie(s.Name); err != nil {
				return fmt.Errorf("cookie %s is missing", s.Name)
			}
		}
		return nil
	case "http":
		want := strings.ToLower(s.Scheme) + " "
		if !strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), want) {
			return fmt.Errorf("no %s Authorization header", s.Scheme)
		}
		return nil
	case "oauth2", "openIdConnect":
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			return fmt.Errorf("no bearer token")
		}
		return nil
	}
	return fmt.Errorf("unknown security scheme type %q", s.Type)
}

// ServeHTTP validates r, serves it with the fake, validates the response
// and sends it on.
func (v *Validator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.requests++
	v.mu.Unlock()
	what := r.Method + " " + redactQuery(r.URL)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		v.violate("%s: read request body: %v", what, err)
		http.Error(w, "apitest: unreadable body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	// Route a copy addressed to the document's server; the fake gets r.
	rr := r.Clone(r.Context())
	u := *r.URL
	u.Scheme, u.Host = "http", routeHost
	rr.URL, rr.Host = &u, routeHost
	rr.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := v.router.FindRoute(rr)
	if err != nil {
		v.violate("%s: not in the spec: %v", what, err)
		http.Error(w, "apitest: not in the spec", http.StatusNotFound)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: rr, PathParams: params, Route: route, Options: options()}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		v.violate("%s: request breaks the spec: %v", what, err)
		http.Error(w, "apitest: request breaks the spec", http.StatusBadRequest)
		return
	}

	rec := &recorder{header: http.Header{}}
	r.Body = io.NopCloser(bytes.NewReader(body))
	v.next.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.status,
		Header:                 rec.header,
		Body:                   io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		Options:                options(),
	}
	if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
		v.violate("%s: response %d breaks the spec: %v", what, rec.status, err)
	}
	for k, vs := range rec.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// redactQuery keeps query keys but not values: Pipedrive's token is one.
func redactQuery(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Path
	}
	q := u.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	return u.Path + "?" + strings.Join(keys, "&")
}

// recorder buffers the fake's response so it can be validated before the
// client sees it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
