package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// Validate checks every field and returns all problems at once, each
// naming its key path, so an admin fixes the file in one pass.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.State == "" {
		bad("state", "state file path is empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, not %q", c.Log.Format)
	}
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			bad("admin.listen", "not a host:port address: %v", err)
		}
	}
	s := c.Sync
	if s.BatchSize < 1 || s.BatchSize > 10000 {
		bad("sync.batch_size", "must be between 1 and 10000, not %d", s.BatchSize)
	}
	if s.DialConcurrency < 1 || s.DialConcurrency > 1000 {
		bad("sync.dial_concurrency", "must be between 1 and 1000, not %d", s.DialConcurrency)
	}
	if s.MaxBodyBytes < 4096 {
		bad("sync.max_body_bytes", "must be at least 4096, not %d", s.MaxBodyBytes)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"command_timeout", s.CommandTimeout}, {"idle_restart", s.IdleRestart}, {"poll_interval", s.PollInterval},
		{"retry_min", s.RetryMin}, {"retry_max", s.RetryMax}, {"auth_retry", s.AuthRetry}, {"shutdown_grace", s.ShutdownGrace},
		{"expunge_grace", s.ExpungeGrace}} {
		if d.v <= 0 {
			bad("sync."+d.key, "must be a positive duration such as 30s, not %s", d.v)
		}
	}
	if s.IdleRestart > 29*time.Minute {
		bad("sync.idle_restart", "must be under 29m: servers may drop an IDLE older than 30 minutes (RFC 9051 §6.3.13)")
	}
	if k := s.LoggedKeyword; k != "off" && !keywordPattern.MatchString(k) {
		bad("sync.logged_keyword", "must be an IMAP keyword such as $CRMLogged (atom characters, no backslash) or off, not %q", k)
	}
	if s.FlagScanWindow < 0 {
		bad("sync.flag_scan_window", "must not be negative")
	}
	if s.RetryMax < s.RetryMin {
		bad("sync.retry_max", "is smaller than sync.retry_min")
	}
	if c.Sink.Type == "" {
		bad("sink.type", "is empty")
	}
	for k := range c.Sink.Settings {
		if _, ok := c.Sink.Settings[k].(map[string]any); !ok {
			bad("sink."+k, "unknown key (adapter sections are maps, e.g. sink.jsonl.path)")
		}
	}
	if err := c.Matcher.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Matcher.CacheTTL < 0 || c.Matcher.NegativeTTL < 0 {
		bad("matcher.cache_ttl", "must not be negative")
	}
	errs = append(errs, c.Tokens.validate("tokens", c.Accounts)...)
	errs = append(errs, c.SMTPFront.validate("smtp_front")...)
	if len(c.Accounts) == 0 {
		bad("accounts", "no accounts configured")
	}
	seen := map[string]bool{}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		path := a.Path()
		if a.ID == "" {
			path = fmt.Sprintf("accounts[%d]", i)
			bad(path+".id", "is empty")
		} else if !idPattern.MatchString(a.ID) {
			bad(path+".id", "must be letters, digits, '-', '_' or '.', not %q", a.ID)
		} else if seen[a.ID] {
			bad(path+".id", "duplicate account id")
		}
		seen[a.ID] = true
		errs = append(errs, a.validate(path)...)
	}
	return errors.Join(errs...)
}

var (
	idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	// keywordPattern is an IMAP flag-keyword atom (RFC 9051 §9: atom
	// without the atom-specials, no leading backslash).
	keywordPattern = regexp.MustCompile(`^[!#$&'+,\-./0-9:;<=>?@A-Z^_` + "`" + `a-z|~]{1,64}$`)
)

func (a *Account) validate(path string) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, key, fmt.Sprintf(format, args...)))
	}
	if a.Host == "" {
		bad("host", "is empty")
	}
	if a.Port < 1 || a.Port > 65535 {
		bad("port", "must be 1-65535, not %d", a.Port)
	}
	switch a.TLS {
	case "implicit", "starttls":
	case "none":
		if !IsLoopback(a.Host) {
			bad("tls", "none is refused for %s: passwords would cross the network in clear (allowed only for loopback hosts)", a.Host)
		}
	default:
		bad("tls", "must be implicit, starttls or none, not %q", a.TLS)
	}
	if a.Username == "" {
		bad("username", "is empty")
	}
	switch a.Auth {
	case "password":
		n := 0
		for _, s := range []string{a.PasswordEnv, a.PasswordFile, a.PasswordCredential} {
			if s != "" {
				n++
			}
		}
		switch {
		case n == 0:
			bad("password_env", "no password source: set one of password_env, password_file, password_credential")
		case n > 1:
			bad("password_env", "set only one of password_env, password_file, password_credential")
		}
	case "oauth2":
		errs = append(errs, a.OAuth2.validate(path+".oauth2")...)
	default:
		bad("auth", "must be password or oauth2, not %q", a.Auth)
	}
	if a.MaxConnections < 1 || a.MaxConnections > 50 {
		bad("max_connections", "must be 1-50, not %d", a.MaxConnections)
	}
	folders := map[string]bool{}
	for j, f := range a.Folders {
		fp := fmt.Sprintf("folders[%d]", j)
		switch {
		case strings.TrimSpace(f) == "":
			bad(fp, "folder name is empty")
		case folders[f]:
			bad(fp, "folder %q listed twice", f)
		}
		folders[f] = true
	}
	if _, err := ParseStart(a.Start); err != nil {
		bad("start", "%v", err)
	}
	errs = append(errs, a.SMTP.validate(path+".smtp")...)
	if err := a.Matcher.Validate(path + ".matcher"); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Start says where a folder that was never synced begins.
type Start struct {
	All   bool      // from the first message
	Now   bool      // only mail arriving from now on
	Since time.Time // messages with an internal date on or after this day
}

// ParseStart parses "now", "all" or a date (2006-01-02).
func ParseStart(s string) (Start, error) {
	switch s {
	case "now":
		return Start{Now: true}, nil
	case "all":
		return Start{All: true}, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return Start{}, fmt.Errorf("must be now, all or a date like 2026-01-31, not %q", s)
	}
	return Start{Since: t}, nil
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
