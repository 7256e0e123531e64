package apitest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	stdsync "sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// Spec is a vendor's OpenAPI document with how to load it and where the
// vendor serves it.
type Spec struct {
	Package Package
	// BasePath prefixes the document's paths on the vendor's host.
	BasePath string
	// Normalize fixes, in order, what stops kin-openapi from loading the
	// vendor's document as published. Read them: they are the whole
	// difference between the vendor's document and what the fakes are held to.
	Normalize []Normalizer
}

// Pipedrive is Pipedrive's API v1 as @opensdks/sdk-pipedrive ships it.
var Pipedrive = &Spec{
	Package: Package{
		Name:      "@opensdks/sdk-pipedrive",
		Version:   "0.0.1",
		Integrity: "sha512-cNZsDdpQY0CUeM4Bs0UACFeYDRuxKyDlEpC7bpeDVFH5a87D5dqyNJcA4Do9SACbrpXgp7tyzZbdkq4KSKC81g==",
		File:      "package/pipedrive.oas.json",
	},
	BasePath:  "/v1",
	Normalize: []Normalizer{DropNullExamples, AnyMediaIsJSON, PipedriveErrorResponses},
}

// Salesforce is the Lightning Platform REST API v59.0 as
// @opensdks/sdk-salesforce ships it: the sObject resources only, to which
// SalesforceQueryAndCollections adds the two resources mailsync needs.
var Salesforce = &Spec{
	Package: Package{
		Name:      "@opensdks/sdk-salesforce",
		Version:   "0.0.2",
		Integrity: "sha512-gjHwKwfAwtqMgCFrFlWkYfYWlwRm0mYx2Wv3efhgryvpaKGboVZ3519vQlkC1cPGUD1g+WqAzbhb0crlhPSMow==",
		File:      "package/salesforce.oas.json",
	},
	BasePath: "/services/data/v59.0",
	Normalize: []Normalizer{
		DropNullExamples, AnyMediaIsJSON,
		KeepPaths("/sobjects/EmailMessage", "/sobjects/EmailMessage/{id}",
			"/sobjects/EmailMessageRelation", "/sobjects/Contact", "/sobjects/Lead",
			"/sobjects/Account", "/sobjects/Opportunity"),
		SalesforceQueryAndCollections,
	},
}

type loaded struct {
	once stdsync.Once
	doc  *openapi3.T
	err  error
}

// docs memoises documents per process: Salesforce's takes seconds to load.
var docs docCache

type docCache struct {
	mu stdsync.Mutex
	m  map[*Spec]*loaded
}

func (s *docCache) get(sp *Spec) *loaded {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[*Spec]*loaded{}
	}
	if s.m[sp] == nil {
		s.m[sp] = &loaded{}
	}
	return s.m[sp]
}

// Load fetches, normalises and loads the document once per process. The
// test fails (never skips) when that cannot be done.
func (s *Spec) Load(t testing.TB) *openapi3.T {
	t.Helper()
	l := docs.get(s)
	l.once.Do(func() {
		ctx := context.Background()
		data, err := Fetch(ctx, s.Package)
		if err != nil {
			l.err = err
			return
		}
		l.doc, l.err = Parse(ctx, data, s.Normalize...)
		if l.err != nil {
			l.err = fmt.Errorf("%s@%s: %w", s.Package.Name, s.Package.Version, l.err)
		}
	})
	if l.err != nil {
		t.Fatalf("apitest: %v", l.err)
	}
	return l.doc
}

// Handler wraps a fake's handler in a Validator for this spec.
func (s *Spec) Handler(t testing.TB, fake http.Handler) *Validator {
	t.Helper()
	return Validate(t, s.Load(t), s.BasePath, fake)
}

// KeepPaths drops every path but these. It only removes: a request to a
// dropped path fails as "not in the spec", so the fakes cannot drift onto
// resources nobody checked, and a document of 2,180 sObject resources
// loads in a fraction of the time.
func KeepPaths(keep ...string) Normalizer {
	return func(doc map[string]any) {
		paths, _ := doc["paths"].(map[string]any)
		for p := range paths {
			if !contains(keep, p) {
				delete(paths, p)
			}
		}
		dropUnreferenced(doc)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// dropUnreferenced removes component schemas nothing reachable from the
// paths refers to.
func dropUnreferenced(doc map[string]any) {
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	if schemas == nil {
		return
	}
	const prefix = "#/components/schemas/"
	used := map[string]bool{}
	var queue []any
	queue = append(queue, doc["paths"])
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		walk(v, func(obj map[string]any) {
			ref, _ := obj["$ref"].(string)
			name, ok := strings.CutPrefix(ref, prefix)
			if ok && !used[name] {
				used[name] = true
				queue = append(queue, schemas[name])
			}
		})
	}
	for name := range schemas {
		if !used[name] {
			delete(schemas, name)
		}
	}
}
