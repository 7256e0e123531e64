package apitest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// Normalizer rewrites a decoded OpenAPI document before kin-openapi loads
// it. Each one fixes a way the vendor's document breaks the validator;
// none may loosen what a request or response must look like.
type Normalizer func(doc map[string]any)

// Parse decodes an OpenAPI 3 document, applies the normalizers in order,
// loads it with kin-openapi and validates the document itself. HubSpot's
// hand-written document goes through here as the vendors' do.
func Parse(ctx context.Context, data []byte, normalize ...Normalizer) (*openapi3.T, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decode openapi document: %w", err)
	}
	for _, n := range normalize {
		n(raw)
	}
	norm, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromData(norm)
	if err != nil {
		return nil, fmt.Errorf("load openapi document: %w", err)
	}
	// Examples are documentation; Pipedrive's disagree with its own schemas
	// (a created_at that is not a date-time), which says nothing about
	// what its API sends. Everything else of the document is validated.
	if err := doc.Validate(ctx, openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("openapi document is invalid: %w", err)
	}
	return doc, nil
}

// walk calls f on every JSON object in v, depth first, parents first.
func walk(v any, f func(obj map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		f(x)
		for _, c := range x {
			walk(c, f)
		}
	case []any:
		for _, c := range x {
			walk(c, f)
		}
	}
}

// DropNullExamples removes "example": null, which documents nothing and
// which kin-openapi checks against the schema (a non-nullable schema
// then fails the document's own validation).
func DropNullExamples(doc map[string]any) {
	walk(doc, func(obj map[string]any) {
		if v, ok := obj["example"]; ok && v == nil {
			delete(obj, "example")
		}
	})
}

// AnyMediaIsJSON renames a "*/*" content entry to application/json when the
// operation has no application/json entry: the vendor's APIs only speak
// JSON, and kin-openapi would otherwise accept any body unchecked under
// the wildcard.
func AnyMediaIsJSON(doc map[string]any) {
	walk(doc, func(obj map[string]any) {
		content, ok := obj["content"].(map[string]any)
		if !ok {
			return
		}
		if any, ok := content["*/*"]; ok {
			if _, has := content["application/json"]; !has {
				content["application/json"] = any
			}
			delete(content, "*/*")
		}
	})
}
