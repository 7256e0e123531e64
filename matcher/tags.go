package matcher

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/mailsync/mailsync/sync/sink"
)

// Bounds on tag extraction: a body can be large and a pattern can match
// often, and neither should make one message expensive.
const (
	maxTagScan    = 64 << 10 // bytes of body searched
	maxTagMatches = 8        // records per tag rule and text
	maxTagID      = 128      // bytes of an expanded ID
)

type compiledTag struct {
	name      string
	re        *regexp.Regexp
	kind      sink.Kind
	tmpl      []byte
	inSubject bool
	inBody    bool
}

func compileTag(t TagRule) (*compiledTag, error) {
	if t.Pattern == "" {
		return nil, fmt.Errorf("pattern is empty")
	}
	re, err := regexp.Compile(t.Pattern)
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %w", t.Pattern, err)
	}
	k := sink.Kind(t.Kind)
	if !k.Valid() {
		return nil, fmt.Errorf("unknown record kind %q (want contact, lead, company or deal)", t.Kind)
	}
	c := &compiledTag{name: t.Name, re: re, kind: k, tmpl: []byte(t.ID)}
	if c.name == "" {
		c.name = t.Pattern
	}
	if len(c.tmpl) == 0 {
		if re.NumSubexp() < 1 {
			return nil, fmt.Errorf("pattern %q has no group and id template is empty", t.Pattern)
		}
		c.tmpl = []byte("$1")
	}
	if len(t.In) == 0 {
		c.inSubject, c.inBody = true, true
	}
	for _, in := range t.In {
		switch in {
		case "subject":
			c.inSubject = true
		case "body":
			c.inBody = true
		default:
			return nil, fmt.Errorf("unknown place %q in in (want subject or body)", in)
		}
	}
	return c, nil
}

// extract returns the record IDs the tag names in text, in order of
// appearance, without duplicates or empty IDs.
func (c *compiledTag) extract(text []byte, dst []string) []string {
	if len(text) > maxTagScan {
		text = text[:maxTagScan]
	}
	for _, loc := range c.re.FindAllSubmatchIndex(text, maxTagMatches) {
		id := string(c.re.Expand(nil, c.tmpl, text, loc))
		id = strings.TrimSpace(id)
		if !utf8.ValidString(id) {
			continue
		}
		if id == "" || len(id) > maxTagID {
			continue
		}
		dup := false
		for _, d := range dst {
			dup = dup || d == id
		}
		if !dup {
			dst = append(dst, id)
		}
	}
	return dst
}
