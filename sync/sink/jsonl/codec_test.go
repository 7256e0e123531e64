package jsonl

import (
	"bytes"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

func testMessage(key string, body []byte) *sink.Message {
	return &sink.Message{
		Key:        key,
		Event:      sink.EventMessage,
		Provenance: []sink.Provenance{{Account: "a", Folder: "INBOX", UIDValidity: 7, UID: 42}},
		Direction:  sink.Inbound,
		Date:       time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		From:       []sink.Address{{Name: "Zoë <z>", Email: "z@example.com"}},
		Subject:    "tab\there & <html>",
		Match:      &sink.Match{Rule: "r", Records: []sink.Record{{Kind: "contact", ID: "1"}}},
		Body:       body,
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		body      []byte
		wantField string // the body's JSON field, "" for none
	}{
		{"ascii mail", "k1", []byte("Subject: hi\r\n\r\nline \"one\"\\\r\n\ttab\x00\x1f\x7f\r\n"), "body"},
		{"utf-8 mail", "k2", []byte("Subject: Grüße\r\n\r\n€ \u2028 \U0001F600\r\n"), "body"},
		{"latin-1 mail", "k3", []byte("Subject: Gr\xfc\xdfe\r\n\r\n\xff\xfe\x00"), "body_base64"},
		{"no body", "k4", nil, ""},
		{"escaped key", "a\"b\\c\u00e9\n", []byte("x"), "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage(tt.key, tt.body)
			line, err := Marshal(m)
			if err != nil {
				t.Fatalf("Marshal() error: %v", err)
			}
			if !json.Valid(line) {
				t.Fatalf("Marshal() = %s, not valid JSON", line)
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("Marshal() output has a raw newline: %s", line)
			}
			if !bytes.HasPrefix(line, []byte(keyPrefix)) {
				t.Fatalf("Marshal() = %.40s..., want it to start with %s", line, keyPrefix)
			}
			var fields map[string]any
			if err := json.Unmarshal(line, &fields); err != nil {
				t.Fatal(err)
			}
			_, hasBody := fields["body"]
			_, hasB64 := fields["body_base64"]
			if got, want := hasBody, tt.wantField == "body"; got != want {
				t.Errorf("has body = %v, want %v", got, want)
			}
			if got, want := hasB64, tt.wantField == "body_base64"; got != want {
				t.Errorf("has body_base64 = %v, want %v", got, want)
			}
			if tt.wantField == "body" && fields["body"] != string(tt.body) {
				t.Errorf("body decoded by encoding/json = %q, want %q", fields["body"], tt.body)
			}
			got, err := Unmarshal(line)
			if err != nil {
				t.Fatalf("Unmarshal() error: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("Unmarshal(Marshal(m)) = %+v, want %+v", got, m)
			}
			if k, ok := lineKey(append(line, '\n')); !ok || k != tt.key {
				t.Errorf("lineKey() = %q, %v, want %q, true", k, ok, tt.key)
			}
		})
	}
}

func TestMarshalRefusesBadKeys(t *testing.T) {
	for _, key := range []string{"", "bad\xffkey"} {
		if _, err := Marshal(testMessage(key, nil)); err == nil {
			t.Errorf("Marshal(key %q) succeeded, want an error", key)
		}
	}
	if _, err := Marshal(nil); err == nil {
		t.Error("Marshal(nil) succeeded, want an error")
	}
}

func TestUnmarshalRefusesBothBodies(t *testing.T) {
	if _, err := Unmarshal([]byte(`{"key":"k","body":"a","body_base64":"YQ=="}`)); err == nil {
		t.Error("Unmarshal() with body and body_base64 succeeded, want an error")
	}
}

func TestLineKey(t *testing.T) {
	tests := []struct {
		line string
		want string
		ok   bool
	}{
		{`{"key":"abc","event":"message"}` + "\n", "abc", true},
		{`{"key":"a\"b","x":1}`, `a"b`, true},
		{`{"key":"a\\","x":1}`, `a\`, true},
		{`{"key":"\u00e9"}`, "é", true},
		{`{"key":""}`, "", false},
		{`{"key":"abc`, "", false},
		{`{"key":"ab` + "\n", "", false},
		{`{"event":"x","key":"a"}`, "", false},
		{"\x00\x00\x00\n", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := lineKey([]byte(tt.line))
		if got != tt.want || ok != tt.ok {
			t.Errorf("lineKey(%q) = %q, %v, want %q, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// TestAppendStringMatchesEncodingJSON checks the hand-written escaper
// against encoding/json on every byte value.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for c := range 0x80 {
		all.WriteByte(byte(c))
	}
	all.WriteString("é€\U0001F600")
	s := []byte(all.String())
	out, ok := appendString(nil, s)
	if !ok {
		t.Fatal("appendString refused valid UTF-8")
	}
	var back string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("appendString output does not decode: %v", err)
	}
	if back != string(s) {
		t.Errorf("appendString round trip = %q, want %q", back, s)
	}
}

func TestAppendStringRefusesInvalidUTF8(t *testing.T) {
	base := []byte(strings.Repeat("abcdefgh", 4))
	for pos := range len(base) {
		for _, bad := range [][]byte{{0xff}, {0xc3}, {0xed, 0xa0, 0x80}} { // stray, cut, surrogate
			s := append(append(append([]byte{}, base[:pos]...), bad...), base[pos:]...)
			if _, ok := appendString(nil, s); ok {
				t.Errorf("appendString(% x at %d) = ok, want refused", bad, pos)
			}
		}
	}
}

// TestSpecial checks the 8-byte shortcut against a byte loop: the lowest
// flagged byte must be the first byte that needs attention.
func TestSpecial(t *testing.T) {
	naive := func(x uint64) int {
		for i := range 8 {
			c := byte(x >> (8 * i))
			if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				return i
			}
		}
		return 8
	}
	rng := rand.New(rand.NewPCG(1, 2))
	interesting := []byte{0, 0x1f, 0x20, 0x21, '"', '\\', 'a', 0x7f, 0x80, 0xff, '\n', '\r'}
	for range 200000 {
		var x uint64
		for i := range 8 {
			c := byte(rng.Uint32())
			if rng.IntN(2) == 0 {
				c = interesting[rng.IntN(len(interesting))]
			}
			x |= uint64(c) << (8 * i)
		}
		if got, want := bits.TrailingZeros64(special(x))>>3, naive(x); got != want {
			t.Fatalf("first special byte of %#016x = %d, want %d", x, got, want)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("key", []byte("Subject: x\r\n\r\nbody"))
	f.Add("k\"\\", []byte{0xff, 0x00, '\n'})
	f.Add("\u2028", []byte("\u2029"))
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		m := &sink.Message{Key: key, Event: sink.EventMessage, Body: body}
		line, err := Marshal(m)
		if err != nil {
			return // empty or non-UTF-8 key, refused by design
		}
		if !json.Valid(line) || bytes.IndexByte(line, '\n') >= 0 {
			t.Fatalf("Marshal() = %q, not one valid JSON line", line)
		}
		if k, ok := lineKey(line); !ok || k != key {
			t.Fatalf("lineKey() = %q, %v, want %q", k, ok, key)
		}
		got, err := Unmarshal(line)
		if err != nil {
			t.Fatalf("Unmarshal() error: %v", err)
		}
		if got.Key != key || !bytes.Equal(got.Body, body) {
			t.Fatalf("round trip = (%q, %q), want (%q, %q)", got.Key, got.Body, key, body)
		}
	})
}

// TestPrepareEncodesTheSameLine: a body encoded ahead by Prepare gives the
// line Marshal gives without it, UTF-8 or not, and a body replaced after
// Prepare is written as it is at delivery, never from the stale cache.
func TestPrepareEncodesTheSameLine(t *testing.T) {
	s, err := Open(Config{Path: filepath.Join(t.TempDir(), "m.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, body := range [][]byte{[]byte("Subject: hi\r\n\r\n\"quoted\" \\ \t body\r\n"), {0xff, 0xfe, 'x'}} {
		plain := &sink.Message{Key: "k", Event: sink.EventMessage, Subject: "s", Body: body}
		want, err := Marshal(plain)
		if err != nil {
			t.Fatal(err)
		}
		prepared := &sink.Message{Key: "k", Event: sink.EventMessage, Subject: "s", Body: body}
		s.Prepare([]*sink.Message{prepared})
		if prepared.Prepared() == nil {
			t.Fatal("Prepare attached nothing")
		}
		if got, _ := Marshal(prepared); !bytes.Equal(got, want) {
			t.Errorf("prepared line\n%s\nwant\n%s", got, want)
		}
		prepared.Body = []byte("Subject: other\r\n\r\nreplaced")
		plain.Body = prepared.Body
		want, _ = Marshal(plain)
		if got, _ := Marshal(prepared); !bytes.Equal(got, want) {
			t.Errorf("line after the body was replaced\n%s\nwant\n%s", got, want)
		}
	}
}
