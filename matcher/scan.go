package matcher

import "bytes"

// knownFields maps the lower-cased names of the fields the matcher reads to
// their canonical form; every other field is skipped without allocating.
var knownFields = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-Id", "In-Reply-To", "References",
		"Subject", "Date", "Return-Path", "List-Id", "List-Unsubscribe", "Auto-Submitted", "Precedence", "Content-Type"} {
		m[string(bytes.ToLower([]byte(k)))] = k
	}
	for _, k := range autoReplyHeaders {
		m[string(bytes.ToLower([]byte(k)))] = k
	}
	return m
}()

// maxKeyLen is longer than any known field name: longer keys are skipped
// without a look-up.
const maxKeyLen = 32

// scan walks the header fields of raw, unfolding continuation lines (RFC
// 5322 section 2.2.3), and stores the known ones. It stops at the empty line
// that ends the header. Unlike textproto.ReadHeader it reads on past a
// malformed line (recording it), and it neither builds a map of every field
// nor allocates for fields it does not need: half of ParseHeader's time went
// there. It returns the number of well-formed fields seen.
func (m *Message) scan(raw []byte) int {
	n := 0
	var lower [maxKeyLen]byte
	for i := 0; i < len(raw); {
		line, next := lineAt(raw, i)
		if len(line) == 0 {
			break // end of header
		}
		end := next // end of the field: after its continuation lines
		for end < len(raw) && (raw[end] == ' ' || raw[end] == '\t') {
			_, end = lineAt(raw, end)
		}
		if line[0] == ' ' || line[0] == '\t' {
			m.addErr("header: continuation line without a field: %q", clip(string(bytes.TrimSpace(line))))
			i = end
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			m.addErr("header: malformed line %q", clip(string(line)))
			i = end
			continue
		}
		key := bytes.Trim(line[:colon], " \t")
		if !validKey(key) {
			m.addErr("header: malformed field name %q", clip(string(key)))
			i = end
			continue
		}
		n++
		if len(key) <= maxKeyLen {
			for j, c := range key {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				lower[j] = c
			}
			if name, ok := knownFields[string(lower[:len(key)])]; ok {
				m.field(name, unfold(raw[i+colon+1:end]))
			}
		}
		i = end
	}
	return n
}

// lineAt returns the line starting at i without its CRLF or LF, and the
// index of the next line.
func lineAt(raw []byte, i int) (line []byte, next int) {
	j := bytes.IndexByte(raw[i:], '\n')
	if j < 0 {
		line, next = raw[i:], len(raw)
	} else {
		line, next = raw[i:i+j], i+j+1
	}
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, next
}

// validKey reports whether k is a field name: printable US-ASCII without
// colon (RFC 5322 section 2.2).
func validKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// unfold joins a field value's lines with single spaces, trimming the
// space around each line break, as go-message's textproto does.
func unfold(v []byte) string {
	v = bytes.TrimRight(v, "\r\n")
	if bytes.IndexByte(v, '\n') < 0 {
		return string(bytes.Trim(bytes.TrimSuffix(v, []byte("\r")), " \t"))
	}
	out := make([]byte, 0, len(v))
	for len(v) > 0 {
		seg := v
		if j := bytes.IndexByte(v, '\n'); j >= 0 {
			seg, v = v[:j], v[j+1:]
		} else {
			v = nil
		}
		seg = bytes.Trim(bytes.TrimSuffix(seg, []byte("\r")), " \t")
		if len(seg) == 0 {
			continue
		}
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = append(out, seg...)
	}
	return string(out)
}
