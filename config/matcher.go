package config

import (
	"time"

	"github.com/mailsync/mailsync/matcher"
)

// Matcher is the global matcher section: the rules (package matcher owns
// their meaning and validation) plus where CRM records come from.
type Matcher struct {
	matcher.Config `mapstructure:",squash"`
	// DirectoryFile is a CSV or YAML export of CRM records used for
	// look-ups when the sink adapter has none.
	DirectoryFile string `mapstructure:"directory_file"`
	// CacheTTL and NegativeTTL bound how long look-ups are reused.
	CacheTTL    time.Duration `mapstructure:"cache_ttl"`
	NegativeTTL time.Duration `mapstructure:"negative_ttl"`
}

// AccountMatcher is an account's matching policy.
type AccountMatcher = matcher.AccountPolicy

func (m *Matcher) applyDefaults() {
	if m.CacheTTL == 0 {
		m.CacheTTL = 10 * time.Minute
	}
	if m.NegativeTTL == 0 {
		m.NegativeTTL = time.Minute
	}
}
