package webhook

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/mailsync/mailsync/sync/sink"
)

// configPath prefixes errors about the config section.
const configPath = "sink.webhook"

// Defaults.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 8
)

// Config is the sink.webhook section. It holds where the secret is, not the
// secret, unless a program sets Secret directly.
type Config struct {
	// URL receives the POSTs. https is required unless the host is loopback.
	URL string `mapstructure:"url"`
	// SecretEnv names an environment variable holding the signing secret.
	SecretEnv string `mapstructure:"secret_env"`
	// SecretFile is a file holding the signing secret.
	SecretFile string `mapstructure:"secret_file"`
	// Timeout bounds one request, reading the response included.
	Timeout time.Duration `mapstructure:"timeout"`
	// CAFile, if set, is the only CA trusted for the server's certificate
	// (a private CA); otherwise the system roots are. TLS is always verified.
	CAFile string `mapstructure:"ca_file"`
	// Concurrency is how many requests of one batch run at once.
	Concurrency int `mapstructure:"concurrency"`
	// Headers are sent with every request.
	Headers map[string]string `mapstructure:"headers"`
	// Secret, if set, is used instead of SecretEnv and SecretFile.
	Secret Secret `mapstructure:"-"`
}

var knownKeys = []string{"url", "secret_env", "secret_file", "timeout", "ca_file", "concurrency", "headers"}

// reservedHeaders are set by the client; a static header cannot replace them.
var reservedHeaders = []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Type", "Content-Length", "Host"}

// ParseSettings decodes and validates the sink.webhook config section.
// Errors name the key: "sink.webhook.timeout: ...". It does not read the
// secret; New does.
func ParseSettings(settings map[string]any) (Config, error) {
	var cfg Config
	for k := range settings {
		if !slices.Contains(knownKeys, k) {
			return cfg, fmt.Errorf("%s.%s: unknown key", configPath, k)
		}
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.StringToTimeDurationHookFunc(),
		ErrorUnused: true,
		Result:      &cfg,
	})
	if err != nil {
		return cfg, err
	}
	if err := dec.Decode(settings); err != nil {
		return cfg, sink.SettingError(configPath, settings, err)
	}
	// Validate fills in defaults; call it before cfg is read.
	err = cfg.Validate()
	return cfg, err
}

// Validate checks the fields that need no I/O and fills in defaults.
func (c *Config) Validate() error {
	if _, err := parseURL(c.URL); err != nil {
		return err
	}
	if c.SecretEnv != "" && c.SecretFile != "" {
		return fmt.Errorf("%s: set one of secret_env and secret_file, not both", configPath)
	}
	if c.Secret.IsZero() && c.SecretEnv == "" && c.SecretFile == "" {
		return fmt.Errorf("%s.secret_env: a signing secret is required (secret_env or secret_file)", configPath)
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("%s.timeout: must not be negative", configPath)
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Concurrency < 0:
		return fmt.Errorf("%s.concurrency: must not be negative", configPath)
	case c.Concurrency == 0:
		c.Concurrency = DefaultConcurrency
	}
	for name, v := range c.Headers {
		switch {
		case name == "" || strings.ContainsAny(name, " \t\r\n:"):
			return fmt.Errorf("%s.headers: %q is not a valid header name", configPath, name)
		case strings.ContainsAny(v, "\r\n"):
			return fmt.Errorf("%s.headers.%s: value contains a line break", configPath, name)
		case slices.Contains(reservedHeaders, http.CanonicalHeaderKey(name)):
			return fmt.Errorf("%s.headers.%s: is set by mailsync and cannot be overridden", configPath, name)
		}
	}
	return nil
}

// parseURL checks the endpoint: absolute, http(s), and https unless the
// host is loopback, because signatures protect integrity but not the
// privacy of the mail in the body.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s.url: is required", configPath)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may carry a token; say less.
		return nil, fmt.Errorf("%s.url: not a valid URL", configPath)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s.url: has no host", configPath)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%s.url: http is only allowed to a loopback host; use https for %s", configPath, u.Hostname())
		}
	default:
		return nil, fmt.Errorf("%s.url: scheme must be https (or http to loopback), not %q", configPath, u.Scheme)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readSecret returns the configured secret. Errors name the source, never
// the value.
func (c *Config) readSecret() (Secret, error) {
	if !c.Secret.IsZero() {
		return c.Secret, nil
	}
	var raw, key string
	switch {
	case c.SecretEnv != "":
		key = "secret_env"
		v, ok := os.LookupEnv(c.SecretEnv)
		if !ok {
			return Secret{}, fmt.Errorf("%s.%s: environment variable %s is not set", configPath, key, c.SecretEnv)
		}
		raw = v
	case c.SecretFile != "":
		key = "secret_file"
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return Secret{}, fmt.Errorf("%s.%s: %w", configPath, key, err)
		}
		raw = string(b)
	default:
		return Secret{}, fmt.Errorf("%s.secret_env: a signing secret is required (secret_env or secret_file)", configPath)
	}
	s, err := ParseSecret(raw)
	if err != nil {
		return Secret{}, fmt.Errorf("%s.%s: %w", configPath, key, err)
	}
	return s, nil
}

// String describes the config without the secret or header values (an
// Authorization header is a secret too).
func (c Config) String() string {
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	return fmt.Sprintf("webhook{url=%s secret_env=%s secret_file=%s timeout=%s ca_file=%s concurrency=%d headers=%v secret=%s}",
		redactURL(c.URL), c.SecretEnv, c.SecretFile, c.Timeout, c.CAFile, c.Concurrency, names, redacted)
}

// GoString is String, so %#v does not print the fields raw.
func (c Config) GoString() string { return c.String() }

// Format prints String for every verb.
func (c Config) Format(f fmt.State, _ rune) { f.Write([]byte(c.String())) }

// LogValue keeps secrets out of slog output.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON encodes the config as String does: no secret, no header
// values, no URL path or query.
func (c Config) MarshalJSON() ([]byte, error) {
	headers := make(map[string]string, len(c.Headers))
	for k := range c.Headers {
		headers[k] = redacted
	}
	return json.Marshal(struct {
		URL         string            `json:"url"`
		SecretEnv   string            `json:"secret_env,omitempty"`
		SecretFile  string            `json:"secret_file,omitempty"`
		Timeout     string            `json:"timeout"`
		CAFile      string            `json:"ca_file,omitempty"`
		Concurrency int               `json:"concurrency"`
		Headers     map[string]string `json:"headers,omitempty"`
	}{redactURL(c.URL), c.SecretEnv, c.SecretFile, c.Timeout.String(), c.CAFile, c.Concurrency, headers})
}

// redactURL keeps scheme and host; user info, path and query may carry
// tokens (many webhook URLs embed one in the path).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host}
	return r.String()
}
