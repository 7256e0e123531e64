package imapconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrLineTooLong is wrapped by read errors when the server sends more than
// Options.MaxLineBytes bytes outside literals in one response.
var ErrLineTooLong = errors.New("response line too long")

// ErrLiteralTooLarge is wrapped by read errors when the server announces a
// literal larger than Options.MaxLiteralBytes.
var ErrLiteralTooLarge = errors.New("literal too large")

const (
	// headCap bounds the response prefix kept to classify a response
	// ("* 12345 PREAUTH [" fits many times over). A prefix that is still
	// ambiguous at this length is something go-imap rejects anyway.
	headCap = 64
	// tailCap bounds the end-of-segment window kept to spot a literal
	// announcement: "{" + 19 digits + "+}" + SP + CR is 24 bytes, and one
	// more byte shows whether the digit run is longer than 19.
	tailCap = 32
	// maxLiteralDigits is the longest size field recognised as a literal
	// announcement; 19 digits always fit in a uint64.
	maxLiteralDigits = 19
)

// Response kinds, from the first bytes of a response.
const (
	kindUnknown = iota
	// kindText: tagged, continuation and untagged status responses
	// (OK/NO/BAD/BYE/PREAUTH). go-imap reads their text up to the line end
	// and never a literal or a quoted string, but it discards an unknown
	// response code up to "]" across line ends.
	kindText
	// kindData: every other untagged response. Quoted strings and literals.
	kindData
)

// scanner watches the server-to-client byte stream and enforces size limits
// without copying or buffering it. It tracks just enough of the IMAP grammar
// (RFC 9051 §4.3 strings, §7 responses) to know where go-imap accumulates
// bytes into memory:
//
//   - A response's bytes outside literals are counted and capped at maxLine.
//     The count spans every line end that does not end the response for
//     go-imap: one announcing a literal, one inside a quoted string (go-imap
//     accepts CR/LF there, RFC 9051 §4.3 does not), one inside an open
//     "[code" of a status response. Resetting at every LF would let a server
//     chain literals or quoted line breaks into one unbounded response.
//   - A segment of a data response that ends, outside quotes, in
//     "{N}", "{N+}" or "~{N}" followed by [SP] [CR] LF (RFC 9051 §4.3,
//     RFC 7888, RFC 3516; go-imap also accepts SP and bare LF) announces N
//     literal bytes; N > maxLit is refused, else N bytes pass uncounted.
//
// Any stretch go-imap could read into one string therefore holds at most
// maxLine bytes outside literals plus literals of at most maxLit each.
//
// A scanner is used by one goroutine at a time.
type scanner struct {
	maxLine int
	maxLit  int64
	err     error

	litLeft int64 // bytes of an announced literal still to pass
	respLen int   // bytes of the current response counted against maxLine

	kind     int
	head     [headCap]byte // first bytes of the response, to classify it
	headLen  int
	inQuote  bool // data response: inside a quoted string
	esc      bool // data response: the next byte is escaped by '\'
	codeOpen bool // text response: inside "[code" and before "]"

	tail    [tailCap]byte // last bytes of the segment, from earlier reads
	tailLen int
}

func newScanner(maxLine int, maxLit int64) *scanner {
	return &scanner{maxLine: maxLine, maxLit: maxLit}
}

// scan examines p, the next bytes read from the server. It returns how many
// leading bytes of p may be handed on; when that is less than len(p), err
// says which limit the byte at p[n] broke, and every later call fails too.
func (s *scanner) scan(p []byte) (n int, err error) {
	if s.err != nil {
		return 0, s.err
	}
	i := 0
	// seg is where the current segment starts in p; bytes of it from
	// earlier reads are in s.tail.
	seg := 0
	// lf caches the index of the next LF at or after i (len(p) if none),
	// so that a line with many quotes is searched for its end once.
	lf := -1
	for i < len(p) {
		if s.litLeft > 0 {
			take := int64(len(p) - i)
			if take > s.litLeft {
				take = s.litLeft
			}
			i += int(take)
			s.litLeft -= take
			seg = i
			continue
		}
		if lf < i {
			if k := bytes.IndexByte(p[i:], '\n'); k >= 0 {
				lf = i + k
			} else {
				lf = len(p)
			}
		}
		rest := p[i:]
		if s.kind == kindUnknown {
			j := min(lf-i, headCap-s.headLen)
			copy(s.head[s.headLen:], rest[:j])
			s.headLen += j
			if k, ok := s.count(j); !ok {
				return i + k, s.err
			}
			i += j
			final := i < len(p) || s.headLen == headCap
			if kind, codeAt, ok := classify(s.head[:s.headLen], final); ok {
				s.start(kind, codeAt)
			}
			continue
		}
		nl, line := -1, rest
		if lf < len(p) {
			nl, line = lf-i, rest[:lf-i]
		}
		if s.kind == kindText {
			if s.codeOpen {
				if cb := bytes.IndexByte(line, ']'); cb >= 0 {
					if k, ok := s.count(cb + 1); !ok {
						return i + k, s.err
					}
					i += cb + 1
					s.codeOpen = false
					continue
				}
			}
			if nl < 0 {
				if k, ok := s.count(len(rest)); !ok {
					return i + k, s.err
				}
				i = len(p)
				continue
			}
			if s.codeOpen {
				// go-imap keeps discarding up to "]": the LF belongs to
				// this response.
				if k, ok := s.count(nl + 1); !ok {
					return i + k, s.err
				}
				i += nl + 1
				continue
			}
			if k, ok := s.count(nl); !ok {
				return i + k, s.err
			}
			i += nl + 1
			s.endResponse()
			seg = i
			continue
		}

		// kindData.
		if s.esc {
			if k, ok := s.count(1); !ok {
				return i + k, s.err
			}
			s.esc = false
			i++
			if p[i-1] == '\n' {
				s.tailLen, seg = 0, i
			}
			continue
		}
		if s.inQuote {
			// Quoted strings are short, where a plain loop beats two
			// IndexByte calls.
			q := 0
			for q < len(line) && line[q] != '"' && line[q] != '\\' {
				q++
			}
			if q < len(line) && line[q] == '\\' {
				if k, ok := s.count(q + 1); !ok {
					return i + k, s.err
				}
				i += q + 1
				s.esc = true
				continue
			}
			if q < len(line) {
				if k, ok := s.count(q + 1); !ok {
					return i + k, s.err
				}
				i += q + 1
				s.inQuote = false
				continue
			}
			if nl < 0 {
				if k, ok := s.count(len(rest)); !ok {
					return i + k, s.err
				}
				i = len(p)
				continue
			}
			// A line break inside a quoted string: go-imap keeps reading
			// the string, so the response goes on.
			if k, ok := s.count(nl + 1); !ok {
				return i + k, s.err
			}
			i += nl + 1
			s.tailLen, seg = 0, i
			continue
		}
		if q := bytes.IndexByte(line, '"'); q >= 0 {
			if k, ok := s.count(q + 1); !ok {
				return i + k, s.err
			}
			i += q + 1
			s.inQuote = true
			continue
		}
		if nl < 0 {
			if k, ok := s.count(len(rest)); !ok {
				return i + k, s.err
			}
			i = len(p)
			continue
		}
		if k, ok := s.count(nl); !ok {
			return i + k, s.err
		}
		size, isLit, tooBig := literalAnnounced(s.window(p[seg:lf]), s.maxLit)
		if tooBig {
			s.err = fmt.Errorf("%w: server announced a literal of %d bytes, limit is %d", ErrLiteralTooLarge, size, s.maxLit)
			return lf, s.err
		}
		if isLit {
			if _, ok := s.count(1); !ok {
				return lf, s.err
			}
			s.litLeft = int64(size)
			i = lf + 1
			s.tailLen, seg = 0, i
			continue
		}
		i = lf + 1
		s.endResponse()
		seg = i
	}
	if s.litLeft == 0 && seg < len(p) {
		s.pushTail(p[seg:])
	}
	return len(p), nil
}

// count adds n bytes to the response. When that passes maxLine it records
// the error and returns the offset, within those n, of the first byte over.
func (s *scanner) count(n int) (int, bool) {
	if n > s.maxLine-s.respLen {
		k := s.maxLine - s.respLen
		s.respLen = s.maxLine
		s.err = fmt.Errorf("%w: more than %d bytes outside literals in one response", ErrLineTooLong, s.maxLine)
		return k, false
	}
	s.respLen += n
	return 0, true
}

// start sets the state for a response whose kind just became known by
// replaying the head bytes already passed.
func (s *scanner) start(kind, codeAt int) {
	s.kind = kind
	h := s.head[:s.headLen]
	switch kind {
	case kindText:
		s.codeOpen = codeAt >= 0 && bytes.IndexByte(h[codeAt+1:], ']') < 0
	case kindData:
		// Nothing changes before the first quote; most heads have none.
		if q := bytes.IndexByte(h, '"'); q >= 0 {
			for _, b := range h[q:] {
				s.quoteStep(b)
			}
		}
	}
}

// quoteStep follows go-imap's quoted-string reading for one byte: '\'
// escapes any next byte, including CR and LF.
func (s *scanner) quoteStep(b byte) {
	switch {
	case s.esc:
		s.esc = false
	case s.inQuote && b == '\\':
		s.esc = true
	case b == '"':
		s.inQuote = !s.inQuote
	}
}

func (s *scanner) endResponse() {
	s.respLen = 0
	s.kind = kindUnknown
	s.headLen = 0
	s.inQuote, s.esc, s.codeOpen = false, false, false
	s.tailLen = 0
}

// window returns the last tailCap bytes of the segment ending with cur,
// joining bytes kept from earlier reads.
func (s *scanner) window(cur []byte) []byte {
	if len(cur) >= tailCap || s.tailLen == 0 {
		if len(cur) > tailCap {
			return cur[len(cur)-tailCap:]
		}
		return cur
	}
	var buf [2 * tailCap]byte
	n := copy(buf[:], s.tail[:s.tailLen])
	n += copy(buf[n:], cur)
	if n > tailCap {
		return buf[n-tailCap : n]
	}
	return buf[:n]
}

// pushTail remembers the last bytes of a segment that continues in the next
// read.
func (s *scanner) pushTail(b []byte) {
	if len(b) >= tailCap {
		s.tailLen = copy(s.tail[:], b[len(b)-tailCap:])
		return
	}
	if keep := tailCap - len(b); s.tailLen > keep {
		copy(s.tail[:], s.tail[s.tailLen-keep:s.tailLen])
		s.tailLen = keep
	}
	s.tailLen += copy(s.tail[s.tailLen:], b)
}

// cappedReader applies a scanner to a reader.
type cappedReader struct {
	r io.Reader
	s *scanner
}

// Read passes on what the underlying reader returns up to the first byte
// that breaks a limit; from then on it returns the limit error.
func (c *cappedReader) Read(p []byte) (int, error) {
	if c.s.err != nil {
		return 0, c.s.err
	}
	n, err := c.r.Read(p)
	k, serr := c.s.scan(p[:n])
	if serr != nil {
		return k, serr
	}
	return n, err
}
