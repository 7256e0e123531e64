package matcher

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/mailsync/mailsync/sync/sink"
)

// Rule names, in the default order.
const (
	RuleThread  = "thread"
	RuleTag     = "tag"
	RuleAddress = "address"
	RuleDomain  = "domain"
)

// DefaultRules is the rule order used when Config.Rules is empty.
var DefaultRules = []string{RuleThread, RuleTag, RuleAddress, RuleDomain}

// Deal policies: which open deals of a matched contact or company to link.
const (
	DealsMostRecent = "most_recent" // the open deal updated last
	DealsAll        = "all"         // every open deal
	DealsNone       = "none"        // no deal
)

// Defaults applied by New to empty Config fields.
const (
	DefaultPrivateKeyword = "$CRMPrivate"
	DefaultLogKeyword     = "$CRMLog"
)

// Config is the global `matcher:` section of the configuration file.
type Config struct {
	// OwnDomains are the organisation's domains; subdomains count too.
	OwnDomains []string `mapstructure:"own_domains" yaml:"own_domains" json:"own_domains,omitempty"`
	// FoldPlusAddresses folds "john+tag@x.com" to "john@x.com" before any
	// comparison or look-up.
	FoldPlusAddresses bool `mapstructure:"fold_plus_addresses" yaml:"fold_plus_addresses" json:"fold_plus_addresses,omitempty"`
	// Freemail lists domains added to the built-in freemail list; "name.*"
	// matches every top-level domain of name.
	Freemail []string `mapstructure:"freemail" yaml:"freemail" json:"freemail,omitempty"`
	// Blocklist excludes any message with a matching participant.
	Blocklist Blocklist `mapstructure:"blocklist" yaml:"blocklist" json:"blocklist"`
	// PrivateKeyword excludes a message flagged with it (default $CRMPrivate).
	PrivateKeyword string `mapstructure:"private_keyword" yaml:"private_keyword" json:"private_keyword,omitempty"`
	// LogKeyword selects a message for logging (default $CRMLog).
	LogKeyword string `mapstructure:"log_keyword" yaml:"log_keyword" json:"log_keyword,omitempty"`
	// Rules lists the rules to run, in order; a rule not listed is off.
	// Default: thread, tag, address, domain.
	Rules []string `mapstructure:"rules" yaml:"rules" json:"rules,omitempty"`
	// Tags are the patterns of the tag rule.
	Tags []TagRule `mapstructure:"tags" yaml:"tags" json:"tags,omitempty"`
	// DealPolicy is most_recent (default), all or none.
	DealPolicy string `mapstructure:"deal_policy" yaml:"deal_policy" json:"deal_policy,omitempty"`
	// Keep turns exclusions off: mail of a kept class is matched like any
	// other.
	Keep Keep `mapstructure:"keep" yaml:"keep" json:"keep"`
}

// Keep lists classes of mail that are excluded unless kept. The zero value
// excludes all of them, which is the safe default.
type Keep struct {
	Internal    bool `mapstructure:"internal" yaml:"internal" json:"internal,omitempty"`
	Bulk        bool `mapstructure:"bulk" yaml:"bulk" json:"bulk,omitempty"` // Precedence, List-Id, List-Unsubscribe
	AutoReplies bool `mapstructure:"auto_replies" yaml:"auto_replies" json:"auto_replies,omitempty"`
	Bounces     bool `mapstructure:"bounces" yaml:"bounces" json:"bounces,omitempty"`
}

// Blocklist names participants whose mail is never logged.
type Blocklist struct {
	Addresses []string `mapstructure:"addresses" yaml:"addresses" json:"addresses,omitempty"`
	// Domains match subdomains too.
	Domains []string `mapstructure:"domains" yaml:"domains" json:"domains,omitempty"`
	// Patterns are globs on the address ("*@noreply.*"), or regular
	// expressions when prefixed with "re:".
	Patterns []string `mapstructure:"patterns" yaml:"patterns" json:"patterns,omitempty"`
}

// TagRule links a message to a record named by a tag in its subject or body.
type TagRule struct {
	// Name labels the rule in explanations; defaults to the pattern.
	Name string `mapstructure:"name" yaml:"name" json:"name,omitempty"`
	// Pattern is a regular expression, e.g. `\[#DEAL-(\d+)\]`.
	Pattern string `mapstructure:"pattern" yaml:"pattern" json:"pattern"`
	// Kind is the kind of the record the tag names.
	Kind string `mapstructure:"kind" yaml:"kind" json:"kind"`
	// ID is the record ID template, expanded with regexp.Expand ($1,
	// ${name}); default "$1".
	ID string `mapstructure:"id" yaml:"id" json:"id,omitempty"`
	// In lists where to look: subject, body (default both).
	In []string `mapstructure:"in" yaml:"in" json:"in,omitempty"`
}

// Capture modes.
const (
	CaptureAll       = "all"       // every message not excluded
	CaptureMatched   = "matched"   // messages with a record or an intent
	CaptureSelective = "selective" // messages the user marked
)

// Privacy levels.
const (
	PrivacyFull     = "full"     // everything
	PrivacyMetadata = "metadata" // headers and subject, no body or attachments
	PrivacyHeaders  = "headers"  // participants and date only
)

// AccountPolicy is the per-account `matcher:` section.
type AccountPolicy struct {
	// Aliases are the account's own addresses besides own domains; an
	// entry "@domain" makes a whole domain the account's own.
	Aliases []string `mapstructure:"aliases" yaml:"aliases" json:"aliases,omitempty"`
	// Capture is all, matched (default) or selective.
	Capture string `mapstructure:"capture" yaml:"capture" json:"capture,omitempty"`
	// Privacy is full (default), metadata or headers.
	Privacy string `mapstructure:"privacy" yaml:"privacy" json:"privacy,omitempty"`
	// PrivateFolders hold mail never logged; LogFolders select mail for
	// logging; ExcludedFolders are not logged either. Entries are folder
	// names or path.Match globs; INBOX matches case-insensitively.
	PrivateFolders  []string `mapstructure:"private_folders" yaml:"private_folders" json:"private_folders,omitempty"`
	LogFolders      []string `mapstructure:"log_folders" yaml:"log_folders" json:"log_folders,omitempty"`
	ExcludedFolders []string `mapstructure:"excluded_folders" yaml:"excluded_folders" json:"excluded_folders,omitempty"`
	// ExcludedRoles are folder roles never logged (default junk, trash).
	ExcludedRoles []string `mapstructure:"excluded_roles" yaml:"excluded_roles" json:"excluded_roles,omitempty"`
	// DealPolicy overrides Config.DealPolicy for this account.
	DealPolicy string `mapstructure:"deal_policy" yaml:"deal_policy" json:"deal_policy,omitempty"`
	// AutoCreate asks the CRM for new records; all off by default.
	AutoCreate AutoCreate `mapstructure:"auto_create" yaml:"auto_create" json:"auto_create"`
}

// AutoCreate configures record creation for unknown participants.
type AutoCreate struct {
	// Lead: an unknown inbound sender (kind default lead).
	Lead CreateRule `mapstructure:"lead" yaml:"lead" json:"lead"`
	// Contact: an unknown outbound recipient (kind default contact).
	Contact CreateRule `mapstructure:"contact" yaml:"contact" json:"contact"`
	// Deal: a known contact without an open deal (kind default deal).
	Deal CreateRule `mapstructure:"deal" yaml:"deal" json:"deal"`
}

// CreateRule configures one kind of auto-creation.
type CreateRule struct {
	Enabled bool `mapstructure:"enabled" yaml:"enabled" json:"enabled"`
	// Kind is the record kind to create.
	Kind string `mapstructure:"kind" yaml:"kind" json:"kind,omitempty"`
	// Source and Owner are passed to the CRM as they are (default source
	// "email").
	Source string `mapstructure:"source" yaml:"source" json:"source,omitempty"`
	Owner  string `mapstructure:"owner" yaml:"owner" json:"owner,omitempty"`
	// Name is the new record's name template: {subject}, {name}, {email},
	// {company}. Default "{name}" for people, "{subject}" for deals.
	Name string `mapstructure:"name" yaml:"name" json:"name,omitempty"`
}

// Validate checks the configuration; each error names its field path, as
// in `matcher.rules[2]: unknown rule "x"`. All errors are joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("matcher.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for i, d := range c.OwnDomains {
		if _, err := NormalizeDomain(d); err != nil || strings.Contains(d, "@") {
			bad(fmt.Sprintf("own_domains[%d]", i), "invalid domain %q", d)
		}
	}
	for i, d := range c.Freemail {
		if _, err := NormalizeDomain(strings.TrimSuffix(d, ".*")); err != nil {
			bad(fmt.Sprintf("freemail[%d]", i), "invalid domain %q", d)
		}
	}
	for i, a := range c.Blocklist.Addresses {
		if _, err := NormalizeAddress(a); err != nil {
			bad(fmt.Sprintf("blocklist.addresses[%d]", i), "invalid address %q: %v", a, err)
		}
	}
	for i, d := range c.Blocklist.Domains {
		if _, err := NormalizeDomain(d); err != nil {
			bad(fmt.Sprintf("blocklist.domains[%d]", i), "invalid domain %q", d)
		}
	}
	for i, p := range c.Blocklist.Patterns {
		if _, err := compilePattern(p); err != nil {
			bad(fmt.Sprintf("blocklist.patterns[%d]", i), "%v", err)
		}
	}
	seen := map[string]int{}
	for i, r := range c.Rules {
		switch r {
		case RuleThread, RuleTag, RuleAddress, RuleDomain:
		default:
			bad(fmt.Sprintf("rules[%d]", i), "unknown rule %q (want thread, tag, address or domain)", r)
			continue
		}
		if j, dup := seen[r]; dup {
			bad(fmt.Sprintf("rules[%d]", i), "rule %q already listed at rules[%d]", r, j)
		}
		seen[r] = i
	}
	for i, t := range c.Tags {
		if _, err := compileTag(t); err != nil {
			bad(fmt.Sprintf("tags[%d]", i), "%v", err)
		}
	}
	if err := validDealPolicy(c.DealPolicy); err != nil {
		bad("deal_policy", "%v", err)
	}
	if strings.ContainsAny(c.PrivateKeyword, " ()[]{}%*\"\\") {
		bad("private_keyword", "invalid IMAP keyword %q", c.PrivateKeyword)
	}
	if strings.ContainsAny(c.LogKeyword, " ()[]{}%*\"\\") {
		bad("log_keyword", "invalid IMAP keyword %q", c.LogKeyword)
	}
	return errors.Join(errs...)
}

// Validate checks an account policy; at is the policy's own field path
// (e.g. "accounts[sales].matcher") and prefixes every error.
func (p *AccountPolicy) Validate(at string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", at, field, fmt.Sprintf(format, args...)))
	}
	for i, a := range p.Aliases {
		var err error
		if d, ok := strings.CutPrefix(a, "@"); ok {
			_, err = NormalizeDomain(d)
		} else {
			_, err = NormalizeAddress(a)
		}
		if err != nil {
			bad(fmt.Sprintf("aliases[%d]", i), "invalid address %q: %v", a, err)
		}
	}
	switch p.Capture {
	case "", CaptureAll, CaptureMatched, CaptureSelective:
	default:
		bad("capture", "unknown capture mode %q (want all, matched or selective)", p.Capture)
	}
	switch p.Privacy {
	case "", PrivacyFull, PrivacyMetadata, PrivacyHeaders:
	default:
		bad("privacy", "unknown privacy level %q (want full, metadata or headers)", p.Privacy)
	}
	for name, l := range map[string][]string{"private_folders": p.PrivateFolders, "log_folders": p.LogFolders, "excluded_folders": p.ExcludedFolders} {
		for i, f := range l {
			if _, err := path.Match(f, ""); err != nil || f == "" {
				bad(fmt.Sprintf("%s[%d]", name, i), "invalid folder pattern %q", f)
			}
		}
	}
	if err := validDealPolicy(p.DealPolicy); err != nil {
		bad("deal_policy", "%v", err)
	}
	for name, r := range map[string]CreateRule{"lead": p.AutoCreate.Lead, "contact": p.AutoCreate.Contact, "deal": p.AutoCreate.Deal} {
		if r.Kind != "" && !sink.Kind(r.Kind).Valid() {
			bad("auto_create."+name+".kind", "unknown record kind %q", r.Kind)
		}
	}
	return errors.Join(errs...)
}

func validDealPolicy(s string) error {
	switch s {
	case "", DealsMostRecent, DealsAll, DealsNone:
		return nil
	}
	return fmt.Errorf("unknown deal policy %q (want most_recent, all or none)", s)
}

// pattern matches an address by glob or regular expression.
type pattern struct {
	glob string
	re   *regexp.Regexp
}

func compilePattern(p string) (pattern, error) {
	if r, ok := strings.CutPrefix(p, "re:"); ok {
		re, err := regexp.Compile(r)
		if err != nil {
			return pattern{}, fmt.Errorf("invalid regular expression %q: %w", r, err)
		}
		return pattern{re: re}, nil
	}
	p = strings.ToLower(p)
	if _, err := path.Match(p, ""); err != nil || p == "" {
		return pattern{}, fmt.Errorf("invalid glob %q", p)
	}
	return pattern{glob: p}, nil
}

func (p pattern) match(addr string) bool {
	if p.re != nil {
		return p.re.MatchString(addr)
	}
	ok, _ := path.Match(p.glob, addr)
	return ok
}

func (p pattern) String() string {
	if p.re != nil {
		return "re:" + p.re.String()
	}
	return p.glob
}
