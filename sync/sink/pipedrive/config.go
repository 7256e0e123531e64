package pipedrive

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

const configPath = "sink.pipedrive"

// DefaultBaseURL is Pipedrive's public API v1 host; a company domain
// (https://acme.pipedrive.com/api/v1) works the same.
const DefaultBaseURL = "https://api.pipedrive.com/v1"

// DefaultRate paces requests below Pipedrive's smallest documented burst
// limit for an API token (20 requests per 2 s, Lite plan; higher plans
// allow more, https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting).
const DefaultRate = 8.0

// Config is the sink.pipedrive section.
type Config struct {
	// BaseURL is the API root, ending in /v1.
	BaseURL string `mapstructure:"base_url"`
	// APITokenFile or APITokenEnv holds the user's personal API token.
	APITokenFile string `mapstructure:"api_token_file"`
	APITokenEnv  string `mapstructure:"api_token_env"`
	// RequestsPerSecond paces all calls (token bucket, burst Burst).
	RequestsPerSecond float64 `mapstructure:"requests_per_second"`
	Burst             int     `mapstructure:"burst"`
}

var knownKeys = []string{"base_url", "api_token_file", "api_token_env", "requests_per_second", "burst"}

// ParseSettings decodes and validates the section; errors name the key.
func ParseSettings(section map[string]any) (Config, error) {
	var c Config
	for k := range section {
		if !slices.Contains(knownKeys, k) {
			return c, fmt.Errorf("%s.%s: unknown key", configPath, k)
		}
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{WeaklyTypedInput: true, ErrorUnused: true, Result: &c})
	if err != nil {
		return c, err
	}
	if err := dec.Decode(section); err != nil {
		var de *mapstructure.DecodeError
		if errors.As(err, &de) && de.Name() != "" {
			return c, fmt.Errorf("%s.%s: %w", configPath, de.Name(), de.Unwrap())
		}
		return c, fmt.Errorf("%s: %w", configPath, err)
	}
	return c, c.Validate()
}

// Validate checks what needs no I/O and fills in defaults.
func (c *Config) Validate() error {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s.base_url: not an absolute URL", configPath)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return fmt.Errorf("%s.base_url: must be https (http only to a loopback host)", configPath)
	}
	if u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%s.base_url: must not carry a query or user info (the token goes in api_token_file)", configPath)
	}
	c.BaseURL = strings.TrimSuffix(u.String(), "/")
	switch {
	case c.APITokenFile != "" && c.APITokenEnv != "":
		return fmt.Errorf("%s: set one of api_token_file and api_token_env, not both", configPath)
	case c.APITokenFile == "" && c.APITokenEnv == "":
		return fmt.Errorf("%s.api_token_file: an API token is required (api_token_file or api_token_env)", configPath)
	}
	switch {
	case c.RequestsPerSecond < 0:
		return fmt.Errorf("%s.requests_per_second: must not be negative", configPath)
	case c.RequestsPerSecond == 0:
		c.RequestsPerSecond = DefaultRate
	}
	switch {
	case c.Burst < 0:
		return fmt.Errorf("%s.burst: must not be negative", configPath)
	case c.Burst == 0:
		c.Burst = max(1, int(c.RequestsPerSecond))
	}
	return nil
}

// readToken returns the API token; errors name the source, never the value.
func (c *Config) readToken() (string, error) {
	var raw string
	if c.APITokenEnv != "" {
		v, ok := os.LookupEnv(c.APITokenEnv)
		if !ok {
			return "", fmt.Errorf("%s.api_token_env: environment variable %s is not set", configPath, c.APITokenEnv)
		}
		raw = v
	} else {
		b, err := os.ReadFile(c.APITokenFile)
		if err != nil {
			return "", fmt.Errorf("%s.api_token_file: %w", configPath, err)
		}
		raw = string(b)
	}
	tok := strings.TrimSpace(raw)
	if tok == "" || strings.ContainsAny(tok, " \t\r\n&?#") {
		return "", fmt.Errorf("%s: the API token is empty or malformed", configPath)
	}
	return tok, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
