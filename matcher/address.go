package matcher

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// idnaProfile maps domains the way a resolver would (UTS #46, non-transitional
// so "ß" stays "ß") but accepts the underscores and odd hyphens that real mail
// domains carry: we compare names, we do not register them.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// Errors returned by NormalizeAddress.
var (
	ErrNoAt        = errors.New("address has no @")
	ErrEmptyLocal  = errors.New("address has an empty local part")
	ErrEmptyDomain = errors.New("address has an empty domain")
	ErrInvalidUTF8 = errors.New("address is not valid UTF-8")
	ErrBadDomain   = errors.New("domain holds spaces or control characters")
)

// NormalizeAddress returns addr in the form used for every comparison and
// directory look-up: surrounding space and angle brackets removed, lower-case,
// and the domain in Unicode form (IDNA "xn--" labels decoded, case and width
// mapped). Plus-address folding is separate (FoldPlus) because it is a policy.
//
// When the domain is not valid IDNA the lower-cased address is returned with
// the error, so a caller can still use it as a key.
func NormalizeAddress(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	for len(addr) >= 2 && addr[0] == '<' && addr[len(addr)-1] == '>' {
		addr = strings.TrimSpace(addr[1 : len(addr)-1])
	}
	if !utf8.ValidString(addr) {
		return "", ErrInvalidUTF8
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", ErrNoAt
	}
	local, domain := addr[:at], addr[at+1:]
	if local == "" {
		return "", ErrEmptyLocal
	}
	local = lowerLocal(local)
	domain, err := NormalizeDomain(domain)
	if domain == "" {
		return "", ErrEmptyDomain
	}
	out := local + "@" + domain
	if err != nil {
		return out, fmt.Errorf("normalize %q: %w", out, err)
	}
	return out, nil
}

// lowerLocal lower-cases a local part. Local parts are case-sensitive in
// theory (RFC 5321 section 2.4) but no real provider treats them so, and CRMs
// store them lower-cased.
func lowerLocal(s string) string {
	if isLowerASCII(s) {
		return s
	}
	return strings.ToLower(s)
}

// NormalizeDomain lower-cases domain and converts it to Unicode form; a
// trailing root dot is dropped and an address literal ("[192.0.2.1]") is kept
// as it is. On an IDNA error it returns the lower-cased input and the error.
func NormalizeDomain(domain string) (string, error) {
	domain = strings.TrimRight(strings.TrimSpace(domain), ".")
	if domain == "" {
		return "", ErrEmptyDomain
	}
	if domain[0] == '[' {
		return strings.ToLower(domain), nil
	}
	if plainDomain(domain) {
		return domain, nil // fast path: nothing to map
	}
	lower := strings.ToLower(domain)
	if plainDomain(lower) {
		return lower, nil
	}
	if strings.IndexFunc(lower, badDomainRune) >= 0 {
		return lower, fmt.Errorf("domain %q: %w", lower, ErrBadDomain)
	}
	u, err := idnaProfile.ToUnicode(lower)
	if err == nil && strings.Contains(u, "xn--") {
		// A label that decodes to another A-label: map once more so
		// the result is a fixed point.
		u, err = idnaProfile.ToUnicode(u)
	}
	// Mapping can leave a trailing root dot ("x.xn--", "x。").
	u = strings.TrimRight(u, ".")
	if err == nil && (u == "" || strings.IndexFunc(u, badDomainRune) >= 0) {
		err = ErrBadDomain
	}
	if err != nil {
		return lower, fmt.Errorf("idna %q: %w", lower, err)
	}
	return u, nil
}

// badDomainRune reports characters no domain holds, even decoded from
// punycode: spaces and controls.
func badDomainRune(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r)
}

// plainDomain reports whether s is printable ASCII without upper-case
// letters or A-labels, so that it is its own normal form.
func plainDomain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return !strings.Contains(s, "xn--")
}

// isLowerASCII reports whether s is ASCII without upper-case letters.
func isLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// FoldPlus removes a "+tag" sub-address from a normalised address:
// "john+crm@x.com" becomes "john@x.com". Quoted local parts and a leading
// "+" are left alone, as they are not sub-addresses.
func FoldPlus(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || addr[0] == '"' {
		return addr
	}
	plus := strings.IndexByte(addr[:at], '+')
	if plus <= 0 {
		return addr
	}
	return addr[:plus] + addr[at:]
}

// DomainOf returns the domain part of a normalised address, or "".
func DomainOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return addr[at+1:]
}

// parentDomains returns domain and its parents down to two labels, most
// specific first: "eu.mail.acme.com" gives eu.mail.acme.com, mail.acme.com,
// acme.com. Without a public-suffix list "acme.co.uk" also yields "co.uk",
// which no CRM company owns, so the extra look-up is harmless.
func parentDomains(domain string) []string {
	out := []string{domain}
	for {
		dot := strings.IndexByte(domain, '.')
		if dot < 0 {
			return out
		}
		rest := domain[dot+1:]
		if strings.IndexByte(rest, '.') < 0 {
			return out
		}
		out = append(out, rest)
		domain = rest
	}
}

// domainMatches reports whether domain equals suffix or is a subdomain of it.
func domainMatches(domain, suffix string) bool {
	if len(domain) == len(suffix) {
		return domain == suffix
	}
	return len(domain) > len(suffix) && domain[len(domain)-len(suffix)-1] == '.' && strings.HasSuffix(domain, suffix)
}
