// Package config parses and validates mailsync's YAML configuration. It does
// no I/O beyond reading the reader it is given and, on request, the secret
// sources an account names; it never logs and never prints a secret.
package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Config is the whole configuration file.
type Config struct {
	// State is the bbolt state file holding cursors, the delivery ledger,
	// the outbox and the dead-letter list.
	State   string  `mapstructure:"state"`
	Log     Log     `mapstructure:"log"`
	Admin   Admin   `mapstructure:"admin"`
	Sync    Sync    `mapstructure:"sync"`
	Sink    Sink    `mapstructure:"sink"`
	Matcher Matcher `mapstructure:"matcher"`
	// Tokens says how OAuth2 tokens are protected at rest in the state file.
	Tokens   Tokens    `mapstructure:"tokens"`
	Accounts []Account `mapstructure:"accounts"`
	// SMTPFront is the optional SMTP submission listener for CRMs.
	SMTPFront SMTPFront `mapstructure:"smtp_front"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `mapstructure:"level"`  // debug | info | warn | error
	Format string `mapstructure:"format"` // text | json
	// TraceIMAP writes the IMAP wire protocol (credentials redacted) to the
	// log at debug level. Off by default: it includes message contents.
	TraceIMAP bool `mapstructure:"trace_imap"`
}

// Admin is the local operations surface: metrics, health and control.
type Admin struct {
	// Listen is the HTTP address for /metrics, /healthz and /readyz; empty
	// disables it.
	Listen string `mapstructure:"listen"`
	// Socket is the control socket path; empty means
	// $RUNTIME_DIRECTORY/mailsync.sock or next to the state file.
	Socket string `mapstructure:"socket"`
	// TokenFile holds the bearer token the CRM presents to the send API;
	// without it the API refuses every request.
	TokenFile string `mapstructure:"token_file"`
}

// Sync tunes the folder workers. The defaults suit most servers.
type Sync struct {
	// BatchSize is how many messages one fetch/deliver/commit round handles.
	BatchSize int `mapstructure:"batch_size"`
	// MaxBodyBytes caps how much of one message is fetched; a larger message
	// is delivered cut at the cap and marked truncated.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// CommandTimeout bounds every IMAP command.
	CommandTimeout time.Duration `mapstructure:"command_timeout"`
	// DialConcurrency bounds the connections being opened at once (TCP,
	// TLS handshake and login) per server host and port, so 1,000
	// accounts do not hit one server in the same second and no handshake
	// times out for want of CPU.
	DialConcurrency int `mapstructure:"dial_concurrency"`
	// IdleRestart re-issues IDLE this often (RFC 9051 §6.3.13 asks for < 30 min).
	IdleRestart time.Duration `mapstructure:"idle_restart"`
	// IdleCheck ends IDLE (DONE, then NOOP) this often to prove the
	// connection alive: a connection the network silently dropped is
	// noticed within IdleCheck + CommandTimeout and re-dialled.
	IdleCheck time.Duration `mapstructure:"idle_check"`
	// StallThreshold: a folder that has made no progress for this long
	// (waiting for the sink, reconnecting) makes /readyz answer 503.
	StallThreshold time.Duration `mapstructure:"stall_threshold"`
	// ParkAfter parks (dead-letters) a message that has failed transiently
	// for this long while the sink accepted other messages, so one message
	// cannot hold its folder.
	ParkAfter time.Duration `mapstructure:"park_after"`
	// PollInterval is how often folders without an IDLE connection are checked.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// RetryMin and RetryMax bound the exponential backoff for reconnects and
	// sink retries.
	RetryMin time.Duration `mapstructure:"retry_min"`
	RetryMax time.Duration `mapstructure:"retry_max"`
	// AuthRetry is the slow retry interval after an authentication failure.
	AuthRetry time.Duration `mapstructure:"auth_retry"`
	// ShutdownGrace bounds how long in-flight deliveries may finish on stop.
	ShutdownGrace time.Duration `mapstructure:"shutdown_grace"`
	// LoggedKeyword is stored on every mailbox copy of a message the CRM
	// acknowledged, so users see what is logged; "off" disables it.
	LoggedKeyword string `mapstructure:"logged_keyword"`
	// FlagScanWindow bounds the periodic FLAGS scan on servers without
	// CONDSTORE: only the newest this-many messages are watched.
	FlagScanWindow int `mapstructure:"flag_scan_window"`
	// ExpungeGrace is how long an expunged copy waits before the CRM is
	// told the message is deleted, so a MOVE to another synced folder (an
	// expunge here, a new copy there) is recognised as a move.
	ExpungeGrace time.Duration `mapstructure:"expunge_grace"`
}

// Sink selects the CRM adapter. Each adapter decodes and validates its own
// section (sink.jsonl, sink.webhook, ...).
type Sink struct {
	Type     string         `mapstructure:"type"`
	Settings map[string]any `mapstructure:",remain"`
}

// Account is one mailbox.
type Account struct {
	ID       string `mapstructure:"id"`
	Host     string `mapstructure:"host"`
	Port     int    `mapstructure:"port"`
	TLS      string `mapstructure:"tls"` // implicit | starttls | none
	CAFile   string `mapstructure:"ca_file"`
	Username string `mapstructure:"username"`
	// Auth is password (default) or oauth2.
	Auth   string `mapstructure:"auth"`
	OAuth2 OAuth2 `mapstructure:"oauth2"`
	// Exactly one secret source: an environment variable, a file, or a
	// systemd credential name (read from $CREDENTIALS_DIRECTORY).
	PasswordEnv        string   `mapstructure:"password_env"`
	PasswordFile       string   `mapstructure:"password_file"`
	PasswordCredential string   `mapstructure:"password_credential"`
	MaxConnections     int      `mapstructure:"max_connections"`
	Folders            []string `mapstructure:"folders"`
	// Start says where a never-synced folder begins: now, all, or a date.
	Start string `mapstructure:"start"`
	// Matcher holds the per-account matching policy.
	Matcher AccountMatcher `mapstructure:"matcher"`
	// SMTP is the submission server for mail the CRM sends from this
	// mailbox (POST /v1/accounts/{id}/send).
	SMTP SMTP `mapstructure:"smtp"`
}

// Folder roles: lower-case words in the folders list name a SPECIAL-USE
// role (RFC 6154); anything else is a literal mailbox name.
var folderRoles = map[string]bool{"inbox": true, "sent": true, "archive": true, "all": true}

// IsFolderRole reports whether a folders entry names a role rather than a mailbox.
func IsFolderRole(s string) bool { return folderRoles[s] }

// Defaults applied before decoding.
const (
	DefaultBatchSize      = 1000
	DefaultMaxBodyBytes   = 25 << 20
	DefaultCommandTimeout = 60 * time.Second
	DefaultIdleRestart    = 25 * time.Minute
	DefaultPollInterval   = 60 * time.Second
	// DefaultDialConcurrency: on loopback a dial, TLS handshake and login
	// take a few ms of CPU, so 1,000 accounts connect in about a second.
	DefaultDialConcurrency = 16
	DefaultIdleCheck       = 60 * time.Second
	DefaultStallThreshold  = 3 * time.Minute
	DefaultParkAfter       = 10 * time.Minute
)

func setDefaults(v *viper.Viper) {
	v.SetDefault("log.level", "info")
	v.SetDefault("log.format", "text")
	v.SetDefault("sync.batch_size", DefaultBatchSize)
	v.SetDefault("sync.max_body_bytes", DefaultMaxBodyBytes)
	v.SetDefault("sync.command_timeout", DefaultCommandTimeout)
	v.SetDefault("sync.dial_concurrency", DefaultDialConcurrency)
	v.SetDefault("sync.idle_restart", DefaultIdleRestart)
	v.SetDefault("sync.poll_interval", DefaultPollInterval)
	v.SetDefault("sync.idle_check", DefaultIdleCheck)
	v.SetDefault("sync.stall_threshold", DefaultStallThreshold)
	v.SetDefault("sync.park_after", DefaultParkAfter)
	v.SetDefault("sync.retry_min", time.Second)
	v.SetDefault("sync.retry_max", 5*time.Minute)
	v.SetDefault("sync.auth_retry", 15*time.Minute)
	v.SetDefault("sync.shutdown_grace", 20*time.Second)
	v.SetDefault("sync.logged_keyword", "$CRMLogged")
	v.SetDefault("sync.flag_scan_window", 2000)
	v.SetDefault("sync.expunge_grace", 30*time.Second)
	v.SetDefault("sink.type", "jsonl")
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		ce := newError(err)
		ce.Path = path
		return nil, ce
	}
	// Relative paths in the file are relative to the file, not to the
	// daemon's working directory (systemd starts it in /).
	cfg.resolvePaths(filepath.Dir(path))
	return cfg, nil
}

// Parse decodes YAML from r, applies defaults and validates. Unknown keys
// and invalid values are errors naming the key path.
func Parse(r io.Reader) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	setDefaults(v)
	if err := v.ReadConfig(r); err != nil {
		return nil, newError(translateYAMLError(err))
	}
	var cfg Config
	err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
	})
	if err != nil {
		return nil, newError(translateDecodeError(err, accountIDs(v), rawLookup(v)))
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, newError(err)
	}
	return &cfg, nil
}

// rawLookup returns the value the file holds at a decoder key path such as
// "accounts[0].port", for error messages.
func rawLookup(v *viper.Viper) func(string) any {
	return func(path string) any {
		var cur any = v.AllSettings()
		for _, seg := range strings.Split(path, ".") {
			name, idx, indexed := strings.Cut(strings.TrimSuffix(seg, "]"), "[")
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[strings.ToLower(name)]
			if indexed {
				list, _ := cur.([]any)
				i, err := strconv.Atoi(idx)
				if err != nil || i < 0 || i >= len(list) {
					return nil
				}
				cur = list[i]
			}
		}
		return cur
	}
}

func accountIDs(v *viper.Viper) []string {
	raw, _ := v.Get("accounts").([]any)
	ids := make([]string, len(raw))
	for i, a := range raw {
		if m, ok := a.(map[string]any); ok {
			ids[i], _ = m["id"].(string)
		}
	}
	return ids
}

func (c *Config) applyDefaults() {
	for i := range c.Accounts {
		a := &c.Accounts[i]
		if a.TLS == "" {
			a.TLS = "implicit"
		}
		if a.Auth == "" {
			a.Auth = "password"
		}
		if a.Port == 0 {
			if a.TLS == "implicit" {
				a.Port = 993
			} else {
				a.Port = 143
			}
		}
		if a.MaxConnections == 0 {
			a.MaxConnections = 3
		}
		if a.Start == "" {
			a.Start = "now"
		}
		if len(a.Folders) == 0 {
			a.Folders = []string{"inbox", "sent"}
		}
	}
	c.Matcher.applyDefaults()
}

func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.State)
	abs(&c.Admin.TokenFile)
	for i := range c.Accounts {
		abs(&c.Accounts[i].CAFile)
		abs(&c.Accounts[i].PasswordFile)
		c.Accounts[i].SMTP.resolvePaths(dir)
	}
	abs(&c.Matcher.DirectoryFile)
	c.SMTPFront.resolvePaths(dir)
	c.resolveOAuthPaths(dir)
	for _, sec := range c.Sink.Settings {
		if m, ok := sec.(map[string]any); ok {
			resolveSinkPaths(m, dir)
		}
	}
}

// resolveSinkPaths makes the files an adapter section names relative to
// dir, as the rest of the config's: by the convention every adapter
// follows, keys ending in _file (token_file, oauth2.client_secret_file, ...)
// and jsonl's path, at any depth.
func resolveSinkPaths(sec map[string]any, dir string) {
	for k, v := range sec {
		switch v := v.(type) {
		case map[string]any:
			resolveSinkPaths(v, dir)
		case string:
			if (strings.HasSuffix(k, "_file") || k == "path") && v != "" && !filepath.IsAbs(v) {
				sec[k] = filepath.Join(dir, v)
			}
		}
	}
}

// Account returns the account with the given id.
func (c *Config) Account(id string) (*Account, bool) {
	for i := range c.Accounts {
		if c.Accounts[i].ID == id {
			return &c.Accounts[i], true
		}
	}
	return nil, false
}

// SinkSettings returns the adapter's own section (sink.<type>).
func (c *Config) SinkSettings() map[string]any {
	m, _ := c.Sink.Settings[c.Sink.Type].(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// Path returns the error path prefix of the account, e.g. "accounts[sales]".
func (a *Account) Path() string { return fmt.Sprintf("accounts[%s]", a.ID) }

// Addr is host:port.
func (a *Account) Addr() string { return fmt.Sprintf("%s:%d", a.Host, a.Port) }

// Password reads the account's secret from its configured source. The error
// names the source, never the value.
func (a *Account) Password() (string, error) {
	return readSecret(a.Path(), a.PasswordEnv, a.PasswordFile, a.PasswordCredential)
}

func readSecret(path, env, file, cred string) (string, error) {
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("%s.password_env: environment variable %s is not set", path, env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s.password_file: %w", path, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case cred != "":
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", fmt.Errorf("%s.password_credential: $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)", path)
		}
		b, err := os.ReadFile(filepath.Join(dir, cred))
		if err != nil {
			return "", fmt.Errorf("%s.password_credential: %w", path, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("%s: no password source (set password_env, password_file or password_credential)", path)
}
