package hubspot

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

const configPath = "sink.hubspot"

// Defaults. HubSpot allows 100 requests per rolling 10 s to an app on Free
// and Starter accounts (190 on Professional and Enterprise) and about 5 per
// second to the search endpoints; mailsync stays below both.
const (
	DefaultBaseURL         = "https://api.hubapi.com"
	DefaultRequestsPer10s  = 90
	DefaultSearchPerSecond = 4
	DefaultKeyProperty     = "mailsync_key"
	DefaultTimeout         = 30 * time.Second
	DefaultSearchLag       = time.Minute
)

// Config is the sink.hubspot section. It names where secrets are, never
// the secrets.
type Config struct {
	BaseURL   string  `mapstructure:"base_url"`
	TokenFile string  `mapstructure:"token_file"`
	TokenEnv  string  `mapstructure:"token_env"`
	OAuth2    *OAuth2 `mapstructure:"oauth2"`
	// KeyProperty is the custom email property holding mailsync's
	// idempotency key (README: create it once per portal).
	KeyProperty string `mapstructure:"key_property"`
	// Owners maps an account id to the HubSpot owner (user) id its mail
	// is logged for: the email's hubspot_owner_id, so it shows in that
	// user's activity. The copy that is delivered first decides.
	Owners map[string]string `mapstructure:"owners"`
	// RequestsPer10s paces all calls; SearchPerSecond the search calls.
	RequestsPer10s  int           `mapstructure:"requests_per_10s"`
	SearchPerSecond float64       `mapstructure:"search_per_second"`
	Timeout         time.Duration `mapstructure:"timeout"`
	// SearchLag is how long HubSpot's search index may trail a create.
	// After a restart within that time of the last create, a message the
	// search does not find waits out the rest before it is created, so a
	// batch created just before a crash is not logged twice.
	SearchLag time.Duration `mapstructure:"search_lag"`
}

// OAuth2 configures a public app's login. The refresh token comes from
// refresh_token_file or refresh_token_env, or, when neither is set, from
// `mailsync auth login --sink`, which keeps it encrypted in the state file.
type OAuth2 struct {
	ClientID         string `mapstructure:"client_id"`
	ClientSecretFile string `mapstructure:"client_secret_file"`
	ClientSecretEnv  string `mapstructure:"client_secret_env"`
	RefreshTokenFile string `mapstructure:"refresh_token_file"`
	RefreshTokenEnv  string `mapstructure:"refresh_token_env"`
	// TokenURL defaults to base_url + /oauth/v1/token.
	TokenURL string `mapstructure:"token_url"`
	// AuthorizeURL is where `mailsync auth login --sink` sends the
	// browser; HubSpot's sign-in page by default.
	AuthorizeURL string `mapstructure:"authorize_url"`
	// RedirectURL must be registered in the app's Auth settings; it is
	// the loopback address `mailsync auth login --sink` listens on.
	RedirectURL string `mapstructure:"redirect_url"`
}

// Defaults of the OAuth2 login.
const (
	DefaultAuthorizeURL = "https://app.hubspot.com/oauth/authorize"
	DefaultRedirectURL  = "http://localhost:8976/callback"
)

// stored reports whether the refresh token comes from the state file.
func (o *OAuth2) stored() bool { return o.RefreshTokenFile == "" && o.RefreshTokenEnv == "" }

var propertyName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ParseSettings decodes and validates the section; errors name the key.
func ParseSettings(section map[string]any) (Config, error) {
	var cfg Config
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.StringToTimeDurationHookFunc(), ErrorUnused: true, Result: &cfg,
		// owners: {sales: 123} reads the number as the id string it is.
		WeaklyTypedInput: true,
	})
	if err != nil {
		return cfg, err
	}
	if err := dec.Decode(section); err != nil {
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
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if err := checkURL("base_url", c.BaseURL); err != nil {
		return err
	}
	sources := 0
	for _, s := range []string{c.TokenFile, c.TokenEnv} {
		if s != "" {
			sources++
		}
	}
	if c.OAuth2 != nil {
		sources++
	}
	switch {
	case sources == 0:
		return fmt.Errorf("%s.token_file: a private-app token (token_file or token_env) or oauth2 is required", configPath)
	case sources > 1:
		return fmt.Errorf("%s: set one of token_file, token_env and oauth2", configPath)
	}
	if o := c.OAuth2; o != nil {
		p := configPath + ".oauth2"
		switch {
		case o.ClientID == "":
			return fmt.Errorf("%s.client_id: is required", p)
		case (o.ClientSecretFile == "") == (o.ClientSecretEnv == ""):
			return fmt.Errorf("%s.client_secret_file: set one of client_secret_file and client_secret_env", p)
		case o.RefreshTokenFile != "" && o.RefreshTokenEnv != "":
			return fmt.Errorf("%s.refresh_token_file: set at most one of refresh_token_file and refresh_token_env (neither: mailsync auth login --sink)", p)
		}
		if o.TokenURL == "" {
			o.TokenURL = c.BaseURL + "/oauth/v1/token"
		}
		if o.AuthorizeURL == "" {
			o.AuthorizeURL = DefaultAuthorizeURL
		}
		if o.RedirectURL == "" {
			o.RedirectURL = DefaultRedirectURL
		}
		if err := checkURL("oauth2.token_url", o.TokenURL); err != nil {
			return err
		}
		if err := checkURL("oauth2.authorize_url", o.AuthorizeURL); err != nil {
			return err
		}
		if u, err := url.Parse(o.RedirectURL); err != nil || u.Scheme != "http" || u.Port() == "" || !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%s.redirect_url: must be http://localhost:PORT/PATH (mailsync auth login listens there)", p)
		}
	}
	for acct, id := range c.Owners {
		if !isHubSpotID(id) {
			return fmt.Errorf("%s.owners.%s: %q is not a HubSpot owner id (digits; Settings → Users & Teams, or GET /crm/v3/owners)", configPath, acct, id)
		}
	}
	if c.KeyProperty == "" {
		c.KeyProperty = DefaultKeyProperty
	}
	if !propertyName.MatchString(c.KeyProperty) {
		return fmt.Errorf("%s.key_property: %q is not a HubSpot property name (lower case, digits, _)", configPath, c.KeyProperty)
	}
	switch {
	case c.RequestsPer10s < 0:
		return fmt.Errorf("%s.requests_per_10s: must not be negative", configPath)
	case c.RequestsPer10s == 0:
		c.RequestsPer10s = DefaultRequestsPer10s
	}
	switch {
	case c.SearchPerSecond < 0:
		return fmt.Errorf("%s.search_per_second: must not be negative", configPath)
	case c.SearchPerSecond == 0:
		c.SearchPerSecond = DefaultSearchPerSecond
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("%s.timeout: must not be negative", configPath)
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.SearchLag < 0:
		return fmt.Errorf("%s.search_lag: must not be negative", configPath)
	case c.SearchLag == 0:
		c.SearchLag = DefaultSearchLag
	}
	return nil
}

// checkURL allows https, and http only to a loopback host (a test fake):
// the token and the mail travel in these requests.
func checkURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s.%s: not an absolute URL", configPath, key)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s.%s: http is only allowed to a loopback host; use https", configPath, key)
	}
	return fmt.Errorf("%s.%s: scheme must be https, not %q", configPath, key, u.Scheme)
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

// secret reads a secret from a file or an environment variable; errors
// name the key and the source, never the value.
func secret(key, file, env string) (string, error) {
	var raw string
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s.%s_file: %w", configPath, key, err)
		}
		raw = string(b)
		key += "_file"
	default:
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s.%s_env: environment variable %s is not set", configPath, key, env)
		}
		raw = v
		key += "_env"
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fmt.Errorf("%s.%s: is empty", configPath, key)
	}
	return raw, nil
}
