package hubspottest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	stdsync "sync"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"

	"github.com/mailsync/mailsync/sync/sink/apitest"
)

// Spec is the OpenAPI document the fake holds the adapter to.
//
//go:embed openapi.yaml
var Spec []byte

var (
	docOnce stdsync.Once
	doc     *openapi3.T
	docErr  error
)

// Document loads and validates Spec once per test binary, through the
// same loader as the vendors' published documents (apitest.Parse).
func Document() (*openapi3.T, error) {
	docOnce.Do(func() {
		var v any
		if err := yaml.Unmarshal(Spec, &v); err != nil {
			docErr = fmt.Errorf("hubspot spec: %w", err)
			return
		}
		j, err := json.Marshal(v)
		if err != nil {
			docErr = fmt.Errorf("hubspot spec: %w", err)
			return
		}
		doc, docErr = apitest.Parse(context.Background(), j)
	})
	return doc, docErr
}
