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
	// OAuth2, if set, is the connected app the adapter gets access tokens
	// from: with a refresh token (refresh_token_file, or the one
	// `mailsync auth login --sink` stored) or, server to server, with the
	// JWT bearer flow (username + private_key_file). token_file is then
	// optional: a first token to start with.
	OAuth2 *OAuth2 `mapstructure:"oauth2"`
}

// OAuth2 is the connected app.
type OAuth2 struct {
	TokenURL         string `mapstructure:"token_url"`
	AuthorizeURL     string `mapstructure:"authorize_url"`
	RedirectURL      string `mapstructure:"redirect_url"`
	ClientID         string `mapstructure:"client_id"`
	ClientSecretFile string `mapstructure:"client_secret_file"`
	RefreshTokenFile string `mapstructure:"refresh_token_file"`
	// Username and PrivateKeyFile select the JWT bearer flow: the
	// connected app's certificate signs an assertion for this user.
	Username       string `mapstructure:"username"`
	PrivateKeyFile string `mapstructure:"private_key_file"`
	// Audience of the JWT; the token URL's https://host by default
	// (https://login.salesforce.com, or https://test.salesforce.com).
	Audience string `mapstructure:"audience"`
}

// jwt reports whether the app uses the JWT bearer flow.
func (o *OAuth2) jwt() bool { return o.Username != "" || o.PrivateKeyFile != "" }

// stored reports whether the refresh token comes from the state file.
func (o *OAuth2) stored() bool { return !o.jwt() && o.RefreshTokenFile == "" }

// DefaultTokenURL is Salesforce's production login endpoint (sandboxes
// use https://test.salesforce.com/services/oauth2/token).
const DefaultTokenURL = "https://login.salesforce.com/services/oauth2/token"

// DefaultRedirectURL is where `mailsync auth login --sink` listens; it
// must be the connected app's callback URL.
const DefaultRedirectURL = "http://localhost:8976/callback"

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
	if c.TokenFile == "" && c.OAuth2 == nil {
		return fmt.Errorf("%s.token_file: is required (a file holding an access token), or oauth2", configPath)
	}
	if o := c.OAuth2; o != nil {
		if err := o.validate(); err != nil {
			return err
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

func (o *OAuth2) validate() error {
	p := configPath + ".oauth2"
	if o.TokenURL == "" {
		o.TokenURL = DefaultTokenURL
	}
	u, err := url.Parse(o.TokenURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return fmt.Errorf("%s.token_url: must be an https URL", p)
	}
	if o.AuthorizeURL == "" {
		o.AuthorizeURL = strings.TrimSuffix(o.TokenURL, "/token") + "/authorize"
	}
	if o.Audience == "" {
		o.Audience = "https://" + u.Host
	}
	switch {
	case o.ClientID == "":
		return fmt.Errorf("%s.client_id: is required (the connected app's consumer key)", p)
	case o.jwt() && (o.Username == "" || o.PrivateKeyFile == ""):
		return fmt.Errorf("%s.private_key_file: the JWT bearer flow needs both username and private_key_file", p)
	case o.jwt() && o.RefreshTokenFile != "":
		return fmt.Errorf("%s.refresh_token_file: not used with the JWT bearer flow (username, private_key_file)", p)
	}
	if o.RedirectURL == "" {
		o.RedirectURL = DefaultRedirectURL
	}
	if r, err := url.Parse(o.RedirectURL); err != nil || r.Scheme != "http" || r.Port() == "" || !isLoopback(r.Hostname()) {
		return fmt.Errorf("%s.redirect_url: must be http://localhost:PORT/PATH (mailsync auth login listens there)", p)
	}
	return nil
}

func (c *Config) readToken() (string, error) {
	if c.TokenFile == "" {
		return "", nil // oauth2 gets the first token
	}
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
