package salesforce

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

const configPath = "sink.salesforce"

// DefaultAPIVersion is the REST API version the adapter is written and
// tested against.
const DefaultAPIVersion = "59.0"

// DefaultRate paces calls: Salesforce's limit is a daily budget (at least
// 100,000 calls per 24 h for Enterprise Edition), so 5 calls a second, with
// 200 messages a call, stays far inside it.
const DefaultRate = 5.0

// Config is the sink.salesforce section.
type Config struct {
	InstanceURL       string  `mapstructure:"instance_url"`
	APIVersion        string  `mapstructure:"api_version"`
	TokenFile         string  `mapstructure:"token_file"`
	RequestsPerSecond float64 `mapstructure:"requests_per_second"`
	// OAuth2, if set, lets the adapter refresh an expired access token
	// once (refresh-token grant of a connected app) before it reports
	// that re-authentication is needed.
	OAuth2 *OAuth2 `mapstructure:"oauth2"`
}

// OAuth2 is the connected app a refresh token belongs to.
type OAuth2 struct {
	TokenURL         string `mapstructure:"token_url"`
	ClientID         string `mapstructure:"client_id"`
	ClientSecretFile string `mapstructure:"client_secret_file"`
	RefreshTokenFile string `mapstructure:"refresh_token_file"`
}

// DefaultTokenURL is Salesforce's production login endpoint (sandboxes
// use https://test.salesforce.com/services/oauth2/token).
const DefaultTokenURL = "https://login.salesforce.com/services/oauth2/token"

var knownKeys = []string{"instance_url", "api_version", "token_file", "requests_per_second", "oauth2"}

var versionRE = regexp.MustCompile(`^[0-9]{2}\.0$`)

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
	if c.InstanceURL == "" {
		return fmt.Errorf("%s.instance_url: is required (https://yourcompany.my.salesforce.com)", configPath)
	}
	u, err := url.Parse(c.InstanceURL)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%s.instance_url: not an absolute URL without query", configPath)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return fmt.Errorf("%s.instance_url: must be https (http only to a loopback host)", configPath)
	}
	c.InstanceURL = strings.TrimSuffix(u.String(), "/")
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if !versionRE.MatchString(c.APIVersion) {
		return fmt.Errorf("%s.api_version: %q is not a version like 59.0", configPath, c.APIVersion)
	}
	if c.TokenFile == "" {
		return fmt.Errorf("%s.token_file: is required (a file holding an access token)", configPath)
	}
	if o := c.OAuth2; o != nil {
		if o.TokenURL == "" {
			o.TokenURL = DefaultTokenURL
		}
		if u, err := url.Parse(o.TokenURL); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return fmt.Errorf("%s.oauth2.token_url: must be an https URL", configPath)
		}
		if o.ClientID == "" {
			return fmt.Errorf("%s.oauth2.client_id: is required", configPath)
		}
		if o.RefreshTokenFile == "" {
			return fmt.Errorf("%s.oauth2.refresh_token_file: is required", configPath)
		}
	}
	switch {
	case c.RequestsPerSecond < 0:
		return fmt.Errorf("%s.requests_per_second: must not be negative", configPath)
	case c.RequestsPerSecond == 0:
		c.RequestsPerSecond = DefaultRate
	}
	return nil
}

func (c *Config) readToken() (string, error) {
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("%s.token_file: %w", configPath, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s.token_file: the token is empty or malformed", configPath)
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

func readSecretFile(key, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s.oauth2.%s: %w", configPath, key, err)
	}
	return strings.TrimSpace(string(b)), nil
}
