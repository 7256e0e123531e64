package hubspottest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/sink/apitest"
)

// quietTB keeps the validator's cleanup report out of this test, which
// provokes violations on purpose.
type quietTB struct{ testing.TB }

func (quietTB) Errorf(string, ...any) {}

// TestSpecIsStrict proves the document refuses what HubSpot refuses: an
// association type id HubSpot does not define for emails, an email without
// hs_timestamp, an unknown direction, a search operator that does not
// exist, a request without a bearer token.
func TestSpecIsStrict(t *testing.T) {
	d, err := Document()
	if err != nil {
		t.Fatal(err)
	}
	reached := 0
	v := apitest.Validate(quietTB{t}, d, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	for _, tt := range []struct{ path, body string }{
		{"/crm/v3/objects/emails/batch/create", `{"inputs":[{"properties":{"hs_timestamp":"1"},"associations":[{"to":{"id":"1"},"types":[{"associationCategory":"HUBSPOT_DEFINED","associationTypeId":1}]}]}]}`},
		{"/crm/v3/objects/emails/batch/create", `{"inputs":[{"properties":{"hs_email_subject":"x"}}]}`},
		{"/crm/v3/objects/emails/batch/create", `{"inputs":[{"properties":{"hs_timestamp":"1","hs_email_direction":"OUTGOING"}}]}`},
		{"/crm/v3/objects/contacts/search", `{"filterGroups":[{"filters":[{"propertyName":"email","operator":"ONE_OF","values":["a"]}]}]}`},
		{"/crm/v3/objects/leads/search", `{"filterGroups":[]}`},
	} {
		before := len(v.Violations())
		req := httptest.NewRequest("POST", "http://127.0.0.1"+tt.path, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer x")
		rec := httptest.NewRecorder()
		v.ServeHTTP(rec, req)
		if rec.Code < 400 || len(v.Violations()) != before+1 {
			t.Errorf("%s %s: status %d, violations %d, want refused and reported", tt.path, tt.body, rec.Code, len(v.Violations())-before)
		}
	}
	req := httptest.NewRequest("POST", "http://127.0.0.1/crm/v3/objects/emails/batch/create", strings.NewReader(`{"inputs":[{"properties":{"hs_timestamp":"1"}}]}`))
	req.Header.Set("Content-Type", "application/json")
	v.ServeHTTP(httptest.NewRecorder(), req)
	if reached != 0 {
		t.Errorf("%d invalid requests reached the fake", reached)
	}
}
