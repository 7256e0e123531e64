package hubspottest

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	stdsync "sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Spec is the OpenAPI document the fake holds the adapter to.
//
//go:embed openapi.yaml
var Spec []byte

// specHost is the server the document names; requests to the fake are
// matched as if sent there.
const specHost = "api.hubapi.com"

var (
	loadOnce   stdsync.Once
	loadedDoc  *openapi3.T
	loadRouter routers.Router
	loadErr    error
)

// router loads and validates the spec once per test binary.
func router() (*openapi3.T, routers.Router, error) {
	loadOnce.Do(func() {
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(Spec)
		if err != nil {
			loadErr = fmt.Errorf("load hubspot spec: %w", err)
			return
		}
		if err := doc.Validate(l.Context); err != nil {
			loadErr = fmt.Errorf("hubspot spec is invalid: %w", err)
			return
		}
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			loadErr = fmt.Errorf("hubspot spec router: %w", err)
			return
		}
		loadedDoc, loadRouter = doc, r
	})
	return loadedDoc, loadRouter, loadErr
}

// Violation is one request or response that broke the spec.
type Violation struct {
	Method, Path string
	Response     bool // false: the request broke it
	Status       int
	Err          string
}

func (v Violation) String() string {
	what := "request"
	if v.Response {
		what = fmt.Sprintf("response %d", v.Status)
	}
	return fmt.Sprintf("%s %s: %s violates the HubSpot spec: %s", v.Method, v.Path, what, v.Err)
}

// validating wraps next so every request is checked before next sees it
// (a request that breaks the spec is answered 400, as HubSpot would, and
// never reaches next) and every response next writes is checked before it
// is sent. Each violation is passed to report.
func validating(next http.Handler, report func(Violation)) (http.Handler, error) {
	_, rt, err := router()
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		r.Body.Close()
		// Match against the spec's server whatever address the fake has.
		probe := r.Clone(r.Context())
		probe.URL = &url.URL{Scheme: "https", Host: specHost, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		probe.Host = specHost
		probe.Body = io.NopCloser(bytes.NewReader(body))
		route, params, err := rt.FindRoute(probe)
		if err != nil {
			report(Violation{Method: r.Method, Path: r.URL.Path, Err: "no such operation: " + err.Error()})
			writeError(w, http.StatusNotFound, "NOT_FOUND", "no such operation in the spec")
			return
		}
		in := &openapi3filter.RequestValidationInput{
			Request: probe, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			report(Violation{Method: r.Method, Path: r.URL.Path, Err: err.Error()})
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "request does not match the API: "+firstLine(err.Error()))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		res := rec.Result()
		out := rec.Body.Bytes()
		rin := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		rin.SetBodyBytes(out)
		if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
			report(Violation{Method: r.Method, Path: r.URL.Path, Response: true, Status: res.StatusCode, Err: err.Error()})
		}
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		w.Write(out)
	}), nil
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
