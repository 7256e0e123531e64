package jsonl

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	stdsync "sync"
	"unicode/utf8"

	"github.com/mailsync/mailsync/sync/sink"
)

// The wire format is one JSON object per message, the same object the
// webhook adapter POSTs. It is sink.Message's own JSON with two changes:
//
//   - "key" is always the first field, so a reader can index a file by
//     looking at the first bytes of each line (see lineKey).
//   - The body is not base64 (encoding/json's default for []byte): mail is
//     almost always valid UTF-8, so it is written as a JSON string under
//     "body", readable with jq and about 25% smaller. A body that is not
//     valid UTF-8 (8bit mail in a legacy charset) goes under "body_base64"
//     instead, because a JSON string cannot carry those bytes unchanged.
//     Exactly one of the two is present when the message has a body.

// fields is sink.Message without its methods, so embedding it in wire
// does not recurse into a custom marshaller.
type fields sink.Message

// wire shadows fields.Body: encoding/json prefers the shallower field of
// the same name, so fields.Body is never encoded or decoded directly.
type wire struct {
	*fields
	Body       string `json:"body,omitempty"`
	BodyBase64 []byte `json:"body_base64,omitempty"`
}

// keyPrefix is how every line starts; json.Encoder writes struct fields in
// declaration order and Key is sink.Message's first field.
const keyPrefix = `{"key":"`

// encoder turns messages into JSON lines. The header (every field but the
// body) goes through encoding/json; the body, which is nearly all of the
// bytes, is escaped by hand without reflection.
type encoder struct {
	hdr bytes.Buffer
	enc *json.Encoder
}

var encoders = stdsync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.hdr)
	e.enc.SetEscapeHTML(false) // no reason to turn <a@b> into \u003c
	return e
}}

// AppendMessage appends m's JSON encoding to dst, without a newline. It
// fails for an empty key or one that is not valid UTF-8, because JSON would
// store a different key than the caller's and idempotency would break.
func AppendMessage(dst []byte, m *sink.Message) ([]byte, error) {
	dst, body, err := appendHead(dst, m)
	if err != nil || body == nil {
		return dst, err
	}
	dst = append(dst, body...)
	return append(dst, '}'), nil
}

// appendHead is AppendMessage, except that a body Prepare encoded is not
// copied: it is returned, and the object is what was appended, then body,
// then "}". The sink writes such a body from where Prepare left it
// (writev), so the bytes of a line are copied once, by the kernel. body is
// nil when the object was appended whole.
func appendHead(dst []byte, m *sink.Message) (_ []byte, body preparedBody, _ error) {
	if m == nil {
		return dst, nil, errors.New("nil message")
	}
	if m.Key == "" {
		return dst, nil, errors.New("empty key")
	}
	if !utf8.ValidString(m.Key) {
		return dst, nil, errors.New("key is not valid UTF-8")
	}
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	e.hdr.Reset()
	if err := e.enc.Encode(wire{fields: (*fields)(m)}); err != nil {
		return dst, nil, fmt.Errorf("encode message %q: %w", m.Key, err)
	}
	h := e.hdr.Bytes()
	// Encode wrote `{...}\n`; drop the `}\n` to append the body.
	h = h[:len(h)-2]
	if !bytes.HasPrefix(h, []byte(keyPrefix)) {
		return dst, nil, fmt.Errorf("encode message %q: key is not the first field", m.Key)
	}
	if len(m.Body) == 0 {
		dst = append(dst, h...)
		return append(dst, '}'), nil, nil
	}
	if pb, ok := m.Prepared().(preparedBody); ok {
		return append(dst, h...), pb, nil
	}
	dst = slices.Grow(dst, len(h)+len(m.Body)+len(m.Body)/16+16)
	dst = append(dst, h...)
	dst = appendBody(dst, m.Body)
	return append(dst, '}'), nil, nil
}

// preparedBody is a body's encoding, `,"body":"..."` or
// `,"body_base64":"..."`, made by Prepare ahead of the delivery.
type preparedBody []byte

// Prepare encodes the bodies of ms ahead of their delivery (see
// sink.Preparer): nearly all of a line's bytes, and of the encoder's time,
// are the body, which the worker fetches while the previous batch is being
// written. The rest of the line is small and encoded at delivery, so a
// message changed after Prepare is still written as it is then.
func (s *Sink) Prepare(ms []*sink.Message) {
	for _, m := range ms {
		if m != nil && len(m.Body) > 0 {
			m.SetPrepared(preparedBody(appendBody(make([]byte, 0, len(m.Body)+len(m.Body)/16+16), m.Body)))
		}
	}
}

// appendBody appends the body field: a JSON string when body is valid
// UTF-8, else base64.
func appendBody(dst, body []byte) []byte {
	mark := len(dst)
	dst = append(dst, `,"body":`...)
	if out, ok := appendString(dst, body); ok {
		return out
	}
	dst = dst[:mark]
	dst = slices.Grow(dst, base64.StdEncoding.EncodedLen(len(body))+16)
	dst = append(dst, `,"body_base64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, body)
	return append(dst, '"')
}

// Marshal returns m's JSON encoding.
func Marshal(m *sink.Message) ([]byte, error) { return AppendMessage(nil, m) }

// Unmarshal decodes one JSON object written by AppendMessage.
func Unmarshal(data []byte) (*sink.Message, error) {
	w := wire{fields: new(fields)}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	m := (*sink.Message)(w.fields)
	switch {
	case w.Body != "" && w.BodyBase64 != nil:
		return nil, errors.New(`both "body" and "body_base64" are set`)
	case w.BodyBase64 != nil:
		m.Body = w.BodyBase64
	case w.Body != "":
		m.Body = []byte(w.Body)
	}
	return m, nil
}

// escape[c] is the escape sequence's second byte for a byte that must be
// escaped inside a JSON string (RFC 8259 §7), 'u' for \u00XX, 0 otherwise.
var escape = func() (t [256]byte) {
	for c := range 0x20 {
		t[c] = 'u'
	}
	t['\n'], t['\r'], t['\t'], t['\b'], t['\f'] = 'n', 'r', 't', 'b', 'f'
	t['"'], t['\\'] = '"', '\\'
	return t
}()

// SWAR constants: one bit or byte value in every byte of a word.
const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
)

// special returns a word with the high bit set in each of x's 8 bytes
// (little-endian) that needs attention: a control byte, quote, backslash or
// non-ASCII byte. Each term is a classic "has a byte less than n / equal
// to n" trick; they can flag false bytes, but only above a true one, so the
// lowest set bit is always exact and that is all appendString uses.
func special(x uint64) uint64 {
	ctl := (x - ones*0x20) &^ x
	q := x ^ (ones * '"')
	q = (q - ones) &^ q
	b := x ^ (ones * '\\')
	b = (b - ones) &^ b
	return (ctl | q | b | x) & high
}

// appendString appends s as a quoted JSON string and reports true, or
// reports false if s is not valid UTF-8 (dst's contents are then
// unspecified). It checks UTF-8 while escaping, so a body is read once, and
// steps over plain bytes 8 at a time: mail has a CRLF to escape about every
// 76 bytes, and the runs between are where a byte loop spends its time.
func appendString(dst, s []byte) ([]byte, bool) {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start, i := 0, 0
	for i < len(s) {
		if i+16 <= len(s) {
			m := special(binary.LittleEndian.Uint64(s[i:]))
			if m == 0 {
				m = special(binary.LittleEndian.Uint64(s[i+8:]))
				if m == 0 {
					i += 16
					continue
				}
				i += 8
			}
			i += bits.TrailingZeros64(m) >> 3
		} else if i+8 <= len(s) {
			m := special(binary.LittleEndian.Uint64(s[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				return dst, false
			}
			i += n
			continue
		}
		e := escape[c]
		if e == 0 {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		if e == 'u' {
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		} else {
			dst = append(dst, '\\', e)
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), true
}

// lineKey returns the key of a line written by AppendMessage, reading only
// the line's first bytes. ok is false when the line does not start like one.
func lineKey(line []byte) (key string, ok bool) {
	if !bytes.HasPrefix(line, []byte(keyPrefix)) {
		return "", false
	}
	rest := line[len(keyPrefix):]
	escaped := false
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '\\':
			escaped = true
			i++ // the escaped byte cannot end the string
		case '"':
			if !escaped {
				return string(rest[:i]), i > 0
			}
			// Rare: keys are hashes. Let encoding/json undo the escapes.
			if err := json.Unmarshal(line[len(keyPrefix)-1:len(keyPrefix)+i+1], &key); err != nil {
				return "", false
			}
			return key, key != ""
		case '\n':
			return "", false
		}
	}
	return "", false
}
