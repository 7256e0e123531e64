package hubspottest

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestSpecLoads(t *testing.T) {
	if _, _, err := router(); err != nil {
		t.Fatal(err)
	}
}

// TestValidatorRejects proves the validator is strict: a request with an
// association type id HubSpot does not define for emails, or without the
// required hs_timestamp, is refused 400 and reported.
func TestValidatorRejects(t *testing.T) {
	var got []Violation
	h, err := validating(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("an invalid request reached the handler")
	}), func(v Violation) { got = append(got, v) })
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"inputs":[{"properties":{"hs_timestamp":"1"},"associations":[{"to":{"id":"1"},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":1}]}]}]}`,
		`{"inputs":[{"properties":{"hs_email_subject":"x"}}]}`,
		`{"inputs":[{"properties":{"hs_timestamp":"1","hs_email_direction":"OUTGOING"}}]}`,
	} {
		got = nil
		rec := &recorder{h: http.Header{}}
		req, _ := http.NewRequest("POST", "http://127.0.0.1/crm/v3/objects/emails/batch/create", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer x")
		h.ServeHTTP(rec, req)
		if rec.status != 400 || len(got) != 1 {
			t.Errorf("body %s: status %d, %d violations, want 400 and 1", body, rec.status, len(got))
		}
	}
}

type recorder struct {
	h      http.Header
	status int
	b      bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(s int)           { r.status = s }
func (r *recorder) Write(b []byte) (int, error) { return r.b.Write(b) }
