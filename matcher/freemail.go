package matcher

import (
	_ "embed"
	"strings"
)

//go:embed freemail.txt
var freemailList string

// freemail answers whether a domain belongs to a freemail provider.
type freemail struct {
	exact map[string]bool
	// names holds the "name" of "name.*" entries: any domain whose first
	// label is name and which has exactly one or two labels after it
	// ("hotmail.com", "hotmail.co.uk").
	names map[string]bool
}

func newFreemail(extra []string) *freemail {
	f := &freemail{exact: map[string]bool{}, names: map[string]bool{}}
	add := func(d string) {
		d = strings.TrimSpace(d)
		if d == "" || d[0] == '#' {
			return
		}
		if name, ok := strings.CutSuffix(d, ".*"); ok {
			f.names[strings.ToLower(name)] = true
			return
		}
		if n, err := NormalizeDomain(d); err == nil {
			f.exact[n] = true
		}
	}
	for _, l := range strings.Split(freemailList, "\n") {
		add(l)
	}
	for _, d := range extra {
		add(d)
	}
	return f
}

// has reports whether domain (normalised) is a freemail domain.
func (f *freemail) has(domain string) bool {
	if f.exact[domain] {
		return true
	}
	name, rest, ok := strings.Cut(domain, ".")
	if !ok || !f.names[name] {
		return false
	}
	return strings.Count(rest, ".") <= 1
}
