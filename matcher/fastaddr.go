package matcher

import "strings"

// fastAddressList parses the address lists most headers carry
// ("a@b.c", "Name <a@b.c>", "\"Last, First\" <a@b.c>", comma-separated)
// without net/mail, which costs a fifth of ParseHeader. Anything unusual
// (encoded words, comments, escapes, groups, non-ASCII, odd dots) reports
// ok=false and goes to the full parser. FuzzFastAddressList checks that
// whatever it accepts, net/mail parses the same way.
func fastAddressList(v string, dst []Address) (out []Address, ok bool) {
	if strings.Contains(v, "=?") {
		return dst, false
	}
	start, quoted, angle := 0, false, false
	for i := 0; i <= len(v); i++ {
		if i < len(v) {
			switch c := v[i]; {
			case c >= 0x7f || (c < ' ' && c != '\t') || c == '\\' || c == '(' || c == ')' || c == ';' || c == ':' || c == '[':
				return dst, false
			case c == '"':
				quoted = !quoted
				continue
			case quoted:
				continue
			case c == '<':
				angle = true
				continue
			case c == '>':
				angle = false
				continue
			case c != ',' || angle:
				continue
			}
		}
		if quoted || angle {
			return dst, false
		}
		name, addr, ok := fastAddress(v[start:i])
		if !ok {
			return dst, false
		}
		dst = append(dst, Address{Name: name, Email: addr})
		start = i + 1
	}
	return dst, true
}

// fastAddress parses one address of the forms fastAddressList accepts.
func fastAddress(s string) (name, addr string, ok bool) {
	s = strings.Trim(s, " \t")
	lt := strings.IndexByte(s, '<')
	if lt < 0 {
		return "", s, isAddrSpec(s)
	}
	if !strings.HasSuffix(s, ">") || strings.Count(s, "<") != 1 {
		return "", "", false
	}
	addr = s[lt+1 : len(s)-1]
	if !isAddrSpec(addr) {
		return "", "", false
	}
	name, ok = phrase(strings.TrimRight(s[:lt], " \t"))
	return name, addr, ok
}

// phrase parses a display name made of atoms and quoted strings, joined
// by single spaces as net/mail joins them.
func phrase(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	simple := true // one atom, or atoms separated by single spaces: s itself
	var words []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			if c == '\t' || (i+1 < len(s) && (s[i+1] == ' ' || s[i+1] == '\t')) {
				simple = false
			}
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return "", false
			}
			words = append(words, s[i+1:i+1+j])
			simple = false
			i += j + 2
		case isNameChar(c):
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			words = append(words, s[i:j])
			i = j
		default:
			return "", false
		}
	}
	if simple {
		return s, true
	}
	return strings.Join(words, " "), true
}

func isNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' || c == '\'' || c == '&'
}

// isAddrSpec accepts local@domain with conservative characters and dots
// only between other characters.
func isAddrSpec(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	return dotted(s[:at], true) && dotted(s[at+1:], false)
}

func dotted(s string, local bool) bool {
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-':
		case local && (c == '_' || c == '+'):
		default:
			return false
		}
	}
	return true
}
