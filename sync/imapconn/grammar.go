package imapconn

import "unicode"

// atomChar mirrors go-imap's imapwire.IsAtomChar, which decides where the
// client's decoder ends an atom (RFC 9051 §9 ATOM-CHAR, but bytes 0x80-0x9f
// count as controls because go-imap tests rune(b)).
var atomChar = func() (t [256]bool) {
	for i := range t {
		switch b := byte(i); b {
		case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		default:
			t[i] = !unicode.IsControl(rune(b))
		}
	}
	return t
}()

// classify tells the kind of a response from its first bytes h, the way
// go-imap's client reads them (imapclient.Client.readResponse): untagged
// "*" SP [number SP] type, continuation "+", or tag SP type. It also returns
// the index of "[" when a status response opens a response code, since
// go-imap then discards up to "]" across line ends. ok is false while more
// bytes could change the answer; final says no more bytes will come before
// the line end.
func classify(h []byte, final bool) (kind, codeAt int, ok bool) {
	codeAt = -1
	if len(h) == 0 {
		return kindText, codeAt, final
	}
	pos := 0
	switch h[0] {
	case '+':
		return kindText, codeAt, true
	case '*':
		if len(h) < 2 {
			return kindText, codeAt, final
		}
		if h[1] != ' ' {
			return kindText, codeAt, true // go-imap fails the response
		}
		pos = 2
	default: // tagged: tag SP type
		end := atomEnd(h, 0)
		if end == len(h) && !final {
			return 0, codeAt, false
		}
		if end == 0 || end == len(h) || h[end] != ' ' {
			return kindText, codeAt, true
		}
		pos = end + 1
	}
	typEnd := atomEnd(h, pos)
	if typEnd == len(h) && !final {
		return 0, codeAt, false
	}
	typ := h[pos:typEnd]
	if h[0] == '*' && len(typ) > 0 && typ[0] >= '0' && typ[0] <= '9' {
		// "* 12 FETCH": the type is the second atom.
		if typEnd == len(h) {
			return kindText, codeAt, true
		}
		if h[typEnd] != ' ' {
			return kindText, codeAt, true
		}
		pos = typEnd + 1
		typEnd = atomEnd(h, pos)
		if typEnd == len(h) && !final {
			return 0, codeAt, false
		}
		typ = h[pos:typEnd]
	}
	if h[0] == '*' && !isStatusType(typ) {
		return kindData, codeAt, true
	}
	// Status response: a code opens when the type is followed by " [".
	if len(h) < typEnd+2 {
		return kindText, codeAt, final
	}
	if h[typEnd] == ' ' && h[typEnd+1] == '[' {
		codeAt = typEnd + 1
	}
	return kindText, codeAt, true
}

// atomEnd returns the index of the first non-atom byte in h at or after i.
func atomEnd(h []byte, i int) int {
	for i < len(h) && atomChar[h[i]] {
		i++
	}
	return i
}

// isStatusType reports whether typ is an untagged status response type,
// ASCII case-insensitively (go-imap upper-cases it).
func isStatusType(typ []byte) bool {
	for _, w := range [...]string{"OK", "NO", "BAD", "BYE", "PREAUTH"} {
		if len(typ) == len(w) && asciiEqualFold(typ, w) {
			return true
		}
	}
	return false
}

func asciiEqualFold(b []byte, upper string) bool {
	for i := range b {
		c := b[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// literalAnnounced reports whether w, the end of a segment just before its
// LF, announces a literal: "{" 1*19DIGIT ["+"] "}" [SP] [CR]. Longer digit
// runs are not recognised (the bytes that follow stay counted as line
// bytes, which is the safe side). tooBig is set when the size exceeds max.
func literalAnnounced(w []byte, max int64) (size uint64, isLit, tooBig bool) {
	i := len(w)
	if i > 0 && w[i-1] == '\r' {
		i--
	}
	if i > 0 && w[i-1] == ' ' {
		i--
	}
	if i == 0 || w[i-1] != '}' {
		return 0, false, false
	}
	i--
	if i > 0 && w[i-1] == '+' {
		i--
	}
	end := i
	for i > 0 && w[i-1] >= '0' && w[i-1] <= '9' {
		i--
		if end-i > maxLiteralDigits {
			return 0, false, false
		}
	}
	if i == end || i == 0 || w[i-1] != '{' {
		return 0, false, false
	}
	for _, d := range w[i:end] {
		size = size*10 + uint64(d-'0')
	}
	return size, true, size > uint64(max)
}
