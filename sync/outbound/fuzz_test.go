package outbound

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzComposeRaw feeds arbitrary bytes as a raw message. compose must not
// panic; when it accepts the message, what is submitted must carry no Bcc
// field, the Sent copy must end with the same body, both must have one
// Message-ID that the key derivation reads back, and every line must end
// in CRLF.
func FuzzComposeRaw(f *testing.F) {
	f.Add([]byte("From: a@acme.example\r\nTo: b@x.example\r\nBcc: c@acme.example\r\n\r\nbody\r\n"))
	f.Add([]byte("From: a@acme.example\nTo: b@x.example\nSubject: lf only\n\nbody\n"))
	f.Add([]byte("Message-ID: <>\r\nFrom: a@acme.example\r\nCc: b@x.example\r\n\r\n"))
	f.Add([]byte("From: =?utf-8?q?=C3=A9?= <a@acme.example>\r\nTo: b@x.example,\r\n c@x.example\r\nDate: nonsense\r\n\r\nx"))
	f.Add([]byte("From: a@acme.example\r\nBCC: b@x.example\r\nbcc: c@x.example\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := Request{Raw: raw, IdempotencyKey: "k"}
		if req.Validate() != nil {
			return
		}
		out, err := compose(testAcct, &req, composeNow)
		if err != nil {
			return
		}
		for name, msg := range map[string][]byte{"wire": out.wire, "copy": out.copy} {
			if bytes.Contains(bytes.ReplaceAll(msg, []byte("\r\n"), nil), []byte("\n")) {
				t.Fatalf("%s has a bare LF: %q", name, msg)
			}
		}
		hdr := string(headerBlock(out.wire))
		for _, line := range strings.Split(hdr, "\r\n") {
			if k, _, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "bcc") {
				t.Fatalf("submitted header keeps %q", line)
			}
		}
		if len(out.rcpts) == 0 {
			t.Fatal("accepted a message without recipients")
		}
		id := identify(out.copy)
		if id.messageID == "" {
			t.Fatalf("no usable Message-ID in %q", headerBlock(out.copy))
		}
		if identify(out.wire).key != id.key {
			t.Fatalf("wire and copy keys differ for %q", raw)
		}
	})
}

// FuzzDecodeRequest feeds arbitrary bodies to the JSON decoding. It must
// not panic, and every refusal must name a field.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"to":["a@b.example"],"text":"x","idempotency_key":"k"}`))
	f.Add([]byte(`{"raw":"RnJvbTogYUBiLmV4YW1wbGUNCg0KeA==","idempotency_key":"k"}`))
	f.Add([]byte(`{"to":"a@b.example"}`))
	f.Add([]byte(`{"records":[{"kind":1}]}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`{"raw":"!!"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/accounts/x/send", bytes.NewReader(body))
		req, err := decodeRequest(httptest.NewRecorder(), r, MaxRequestBytes)
		if err == nil {
			_ = req.Validate()
			return
		}
		fe, ok := err.(*FieldError)
		if !ok {
			t.Fatalf("decodeRequest error %T %v is not a FieldError", err, err)
		}
		if fe.Field == "" {
			t.Fatalf("decodeRequest error %v names no field", err)
		}
	})
}
