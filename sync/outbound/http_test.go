package outbound

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeRequestIdempotencyKeyHeader(t *testing.T) {
	tests := []struct {
		body, header, wantKey, wantField string
	}{
		{`{"to":["a@b.example"],"text":"x"}`, "from-header", "from-header", ""},
		{`{"to":["a@b.example"],"text":"x","idempotency_key":"k"}`, "", "k", ""},
		{`{"to":["a@b.example"],"text":"x","idempotency_key":"k"}`, "k", "k", ""},
		{`{"to":["a@b.example"],"text":"x","idempotency_key":"k"}`, "other", "", "idempotency_key"},
		{`{"to":["a@b.example"]} {"text":"x"}`, "", "", "body"},
		{``, "", "", "body"},
		{`{"attachments":[{"filename":"a","content":"not base64!"}]}`, "", "", "body"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/v1/accounts/x/send", strings.NewReader(tt.body))
		if tt.header != "" {
			r.Header.Set("Idempotency-Key", tt.header)
		}
		req, err := decodeRequest(httptest.NewRecorder(), r, MaxRequestBytes)
		if tt.wantField != "" {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Errorf("decodeRequest(%s, %q) = %v, want a FieldError on %s", tt.body, tt.header, err, tt.wantField)
			}
			continue
		}
		if err != nil || req.IdempotencyKey != tt.wantKey {
			t.Errorf("decodeRequest(%s, %q) = %+v, %v; want key %q", tt.body, tt.header, req, err, tt.wantKey)
		}
	}
}

func TestDecodeRequestTooLarge(t *testing.T) {
	const limit = 4096
	body := `{"text":"` + strings.Repeat("x", limit) + `"}`
	r := httptest.NewRequest(http.MethodPost, "/v1/accounts/x/send", strings.NewReader(body))
	if _, err := decodeRequest(httptest.NewRecorder(), r, limit); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("decodeRequest of %d bytes = %v, want ErrTooLarge", len(body), err)
	}
}
