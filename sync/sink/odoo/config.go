package odoo

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

const configPath = "sink.odoo"

// Defaults for the optional settings.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultAttachmentsMax = 10 << 20
	DefaultConcurrency    = 4
)

// Config is the sink.odoo section.
type Config struct {
	// URL is Odoo's base URL; JSON-RPC is served at URL/jsonrpc.
	URL      string `mapstructure:"url"`
	Database string `mapstructure:"database"`
	Username string `mapstructure:"username"`
	// APIKeyFile or APIKeyEnv holds the user's API key (Preferences ›
	// Account Security › New API Key); Odoo takes it in place of the
	// password.
	APIKeyFile string `mapstructure:"api_key_file"`
	APIKeyEnv  string `mapstructure:"api_key_env"`
	// Timeout bounds one JSON-RPC call.
	Timeout time.Duration `mapstructure:"timeout"`
	// AttachmentsMaxBytes caps the attachments of one message that are
	// uploaded; larger ones are listed in the body by name and size only.
	AttachmentsMaxBytes int64 `mapstructure:"attachments_max_bytes"`
	// Concurrency is how many calls mailsync makes to Odoo at once.
	Concurrency int `mapstructure:"concurrency"`
}

var knownKeys = []string{"url", "database", "username", "api_key_file", "api_key_env", "timeout", "attachments_max_bytes", "concurrency"}

// ParseSettings decodes and validates the sink.odoo section. Errors name
// the key: "sink.odoo.url: is required".
func ParseSettings(settings map[string]any) (Config, error) {
	var cfg Config
	for k := range settings {
		if !slices.Contains(knownKeys, k) {
			return cfg, fmt.Errorf("%s.%s: unknown key (known: %s)", configPath, k, strings.Join(knownKeys, ", "))
		}
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToTimeDurationHookFunc(),
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		Result:           &cfg,
	})
	if err != nil {
		return cfg, err
	}
	if err := dec.Decode(settings); err != nil {
		var de *mapstructure.DecodeError
		if errors.As(err, &de) && de.Name() != "" {
			return cfg, fmt.Errorf("%s.%s: %w", configPath, de.Name(), de.Unwrap())
		}
		return cfg, fmt.Errorf("%s: %w", configPath, err)
	}
	return cfg, cfg.Validate()
}

// Validate checks what needs no I/O and fills in defaults.
func (c *Config) Validate() error {
	if c.URL == "" {
		return fmt.Errorf("%s.url: is required (Odoo's address, e.g. https://odoo.example.com)", configPath)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s.url: %q is not an http(s) URL", configPath, c.URL)
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.Database == "" {
		return fmt.Errorf("%s.database: is required (the Odoo database name)", configPath)
	}
	if c.Username == "" {
		return fmt.Errorf("%s.username: is required (the login of the Odoo user mailsync posts as)", configPath)
	}
	switch {
	case c.APIKeyFile != "" && c.APIKeyEnv != "":
		return fmt.Errorf("%s.api_key_file: set one of api_key_file and api_key_env, not both", configPath)
	case c.APIKeyFile == "" && c.APIKeyEnv == "":
		return fmt.Errorf("%s.api_key_file: an API key is required (api_key_file or api_key_env)", configPath)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%s.timeout: must not be negative", configPath)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.AttachmentsMaxBytes < 0 {
		return fmt.Errorf("%s.attachments_max_bytes: must not be negative", configPath)
	}
	if c.AttachmentsMaxBytes == 0 {
		c.AttachmentsMaxBytes = DefaultAttachmentsMax
	}
	if c.Concurrency < 0 {
		return fmt.Errorf("%s.concurrency: must not be negative", configPath)
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	return nil
}

// apiKey reads the key from its file or environment variable. The error
// names the key's source, never its value.
func (c *Config) apiKey() (string, error) {
	if c.APIKeyEnv != "" {
		v := strings.TrimSpace(os.Getenv(c.APIKeyEnv))
		if v == "" {
			return "", fmt.Errorf("%s.api_key_env: environment variable %s is empty or unset", configPath, c.APIKeyEnv)
		}
		return v, nil
	}
	b, err := os.ReadFile(c.APIKeyFile)
	if err != nil {
		return "", fmt.Errorf("%s.api_key_file: %w", configPath, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s.api_key_file: %s is empty", configPath, c.APIKeyFile)
	}
	return v, nil
}
