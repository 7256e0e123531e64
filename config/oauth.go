package config

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// OAuth2 providers (OAuth2.Provider).
const (
	ProviderGoogle    = "google"
	ProviderMicrosoft = "microsoft"
	ProviderGeneric   = "generic"
)

// OAuth2 grants (OAuth2.Grant).
const (
	// GrantRefreshToken is delegated access: `mailsync auth login` obtains a
	// refresh token (device authorization grant, or an imported token) and
	// the daemon refreshes access tokens with it.
	GrantRefreshToken = "refresh_token"
	// GrantClientCredentials is app-only access (Microsoft 365 with an
	// application permission): the daemon asks for access tokens with the
	// client secret; there is no refresh token and no login.
	GrantClientCredentials = "client_credentials"
)

// SASL mechanisms (OAuth2.Mechanism).
const (
	MechXOAuth2     = "xoauth2"
	MechOAuthBearer = "oauthbearer"
)

// Default scopes per provider and grant. EffectiveScopes returns copies.
var (
	GoogleScopes           = []string{"https://mail.google.com/"}
	MicrosoftScopes        = []string{"https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}
	MicrosoftAppOnlyScopes = []string{"https://outlook.office365.com/.default"}
)

// Provider endpoints (Google's from its discovery document; Microsoft's are
// per tenant below microsoftLogin).
const (
	googleAuthURL   = "https://accounts.google.com/o/oauth2/auth"
	googleTokenURL  = "https://oauth2.googleapis.com/token"
	googleDeviceURL = "https://oauth2.googleapis.com/device/code"
	microsoftLogin  = "https://login.microsoftonline.com/"
)

// microsoftMultiTenant are the tenant aliases that name no one directory;
// app-only tokens must come from the organisation's own tenant.
var microsoftMultiTenant = []string{"common", "organizations", "consumers"}

// OAuth2 configures an account that logs in with OAuth 2.0 (auth: oauth2).
// Tokens live in the state file, put there by `mailsync auth login`.
type OAuth2 struct {
	// Provider is google, microsoft or generic; it picks default endpoints
	// and scopes.
	Provider string `mapstructure:"provider"`
	// Grant is refresh_token (default) or client_credentials.
	Grant    string `mapstructure:"grant"`
	ClientID string `mapstructure:"client_id"`
	// At most one client secret source; none for a public client. The
	// client_credentials grant needs one.
	ClientSecretEnv        string `mapstructure:"client_secret_env"`
	ClientSecretFile       string `mapstructure:"client_secret_file"`
	ClientSecretCredential string `mapstructure:"client_secret_credential"`
	// Scopes replaces the provider's default scopes (see EffectiveScopes).
	Scopes []string `mapstructure:"scopes"`
	// Tenant is the Microsoft directory: default "common" for the
	// refresh_token grant; client_credentials needs the tenant id or domain.
	Tenant string `mapstructure:"tenant"`
	// TokenURL, AuthURL and DeviceURL override the provider's endpoints;
	// generic needs token_url, and device_url for `auth login`.
	TokenURL  string `mapstructure:"token_url"`
	AuthURL   string `mapstructure:"auth_url"`
	DeviceURL string `mapstructure:"device_url"`
	// Mechanism is xoauth2 or oauthbearer; empty picks OAUTHBEARER when the
	// server advertises it (AUTH=OAUTHBEARER), else XOAUTH2.
	Mechanism string `mapstructure:"mechanism"`
}

// EffectiveGrant returns Grant or its default.
func (o *OAuth2) EffectiveGrant() string {
	if o.Grant == "" {
		return GrantRefreshToken
	}
	return o.Grant
}

// EffectiveTenant returns the Microsoft tenant or its default.
func (o *OAuth2) EffectiveTenant() string {
	if o.Tenant == "" {
		return "common"
	}
	return o.Tenant
}

// EffectiveScopes returns Scopes or the provider's default.
func (o *OAuth2) EffectiveScopes() []string {
	if len(o.Scopes) > 0 {
		return slices.Clone(o.Scopes)
	}
	switch o.Provider {
	case ProviderGoogle:
		return slices.Clone(GoogleScopes)
	case ProviderMicrosoft:
		if o.EffectiveGrant() == GrantClientCredentials {
			return slices.Clone(MicrosoftAppOnlyScopes)
		}
		return slices.Clone(MicrosoftScopes)
	}
	return nil
}

// Endpoints returns the authorization, token and device authorization URLs:
// the configured ones, else the provider's.
func (o *OAuth2) Endpoints() (authURL, tokenURL, deviceURL string) {
	switch o.Provider {
	case ProviderGoogle:
		authURL, tokenURL, deviceURL = googleAuthURL, googleTokenURL, googleDeviceURL
	case ProviderMicrosoft:
		base := microsoftLogin + url.PathEscape(o.EffectiveTenant()) + "/oauth2/v2.0/"
		authURL, tokenURL, deviceURL = base+"authorize", base+"token", base+"devicecode"
	}
	if o.AuthURL != "" {
		authURL = o.AuthURL
	}
	if o.TokenURL != "" {
		tokenURL = o.TokenURL
	}
	if o.DeviceURL != "" {
		deviceURL = o.DeviceURL
	}
	return authURL, tokenURL, deviceURL
}

// HasClientSecret reports whether a client secret source is configured.
func (o *OAuth2) HasClientSecret() bool {
	return o.ClientSecretEnv != "" || o.ClientSecretFile != "" || o.ClientSecretCredential != ""
}

// ClientSecret reads the client secret from its source; "" without one.
// path is the key prefix for errors, e.g. "accounts[sales].oauth2". The
// error names the source, never the value.
func (o *OAuth2) ClientSecret(path string) (string, error) {
	if !o.HasClientSecret() {
		return "", nil
	}
	return readSource(path, "client_secret", o.ClientSecretEnv, o.ClientSecretFile, o.ClientSecretCredential)
}

func (o *OAuth2) validate(path string) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, key, fmt.Sprintf(format, args...)))
	}
	switch o.Provider {
	case ProviderGoogle, ProviderMicrosoft, ProviderGeneric:
	case "":
		bad("provider", "is empty (google, microsoft or generic)")
	default:
		bad("provider", "must be google, microsoft or generic, not %q", o.Provider)
	}
	grant := o.EffectiveGrant()
	switch grant {
	case GrantRefreshToken, GrantClientCredentials:
	default:
		bad("grant", "must be refresh_token or client_credentials, not %q", o.Grant)
	}
	if strings.TrimSpace(o.ClientID) == "" {
		bad("client_id", "is empty")
	}
	n := 0
	for _, s := range []string{o.ClientSecretEnv, o.ClientSecretFile, o.ClientSecretCredential} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		bad("client_secret_env", "set only one of client_secret_env, client_secret_file, client_secret_credential")
	}
	if grant == GrantClientCredentials {
		if n == 0 {
			bad("client_secret_env", "the client_credentials grant needs a client secret: set one of client_secret_env, client_secret_file, client_secret_credential")
		}
		switch o.Provider {
		case ProviderGoogle:
			bad("grant", "client_credentials is not offered by Google for IMAP; use refresh_token")
		case ProviderMicrosoft:
			if slices.Contains(microsoftMultiTenant, strings.ToLower(o.EffectiveTenant())) {
				bad("tenant", "the client_credentials grant needs the directory (tenant) id or domain, not %q", o.EffectiveTenant())
			}
		}
	}
	if o.Tenant != "" && o.Provider != ProviderMicrosoft {
		bad("tenant", "is only used with provider microsoft")
	}
	for i, s := range o.Scopes {
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\r\n") {
			bad(fmt.Sprintf("scopes[%d]", i), "must be one non-empty scope without spaces, not %q", s)
		}
	}
	for _, u := range []struct{ key, v string }{{"token_url", o.TokenURL}, {"auth_url", o.AuthURL}, {"device_url", o.DeviceURL}} {
		if u.v == "" {
			continue
		}
		if err := checkEndpoint(u.v); err != nil {
			bad(u.key, "%v", err)
		}
	}
	if o.Provider == ProviderGeneric {
		if o.TokenURL == "" {
			bad("token_url", "is empty (provider generic needs token_url)")
		}
		if grant == GrantRefreshToken && o.DeviceURL == "" {
			bad("device_url", "is empty (provider generic needs device_url for `mailsync auth login`)")
		}
	}
	switch o.Mechanism {
	case "", MechXOAuth2, MechOAuthBearer:
	default:
		bad("mechanism", "must be xoauth2 or oauthbearer, not %q", o.Mechanism)
	}
	return errs
}

// checkEndpoint accepts https URLs, and http only to a loopback host (a
// local identity provider or a test): tokens must not cross a network in
// clear.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("not an absolute URL: %q", raw)
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopback(u.Hostname()):
	case u.Scheme == "http":
		return fmt.Errorf("must be https (http is allowed only for loopback hosts), not %q", raw)
	default:
		return fmt.Errorf("must be an https URL, not %q", raw)
	}
	if u.User != nil {
		return fmt.Errorf("must not carry credentials in the URL")
	}
	return nil
}

// Tokens says how OAuth2 tokens are protected at rest in the state file.
type Tokens struct {
	// KeyFile holds the AES-256 key: 32 raw bytes or their base64.
	KeyFile string `mapstructure:"key_file"`
	// KeyCredential names a systemd credential holding the key (read from
	// $CREDENTIALS_DIRECTORY).
	KeyCredential string `mapstructure:"key_credential"`
	// AllowPlaintext permits storing tokens unencrypted when no key is set.
	AllowPlaintext bool `mapstructure:"allow_plaintext"`
}

// TokenKeySize is the length of the tokens key in bytes (AES-256).
const TokenKeySize = 32

// HasKey reports whether a key source is configured.
func (t *Tokens) HasKey() bool { return t.KeyFile != "" || t.KeyCredential != "" }

// Key reads the AES-256 key from its source: nil, nil when none is
// configured. File contents may be exactly 32 bytes, or base64 (standard or
// URL alphabet, padded or not, surrounding whitespace ignored) of 32 bytes.
// Errors name the key and never the contents.
func (t *Tokens) Key() ([]byte, error) {
	if !t.HasKey() {
		return nil, nil
	}
	key, file := "tokens.key_file", t.KeyFile
	if file == "" {
		key = "tokens.key_credential"
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return nil, fmt.Errorf("%s: $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)", key)
		}
		file = filepath.Join(dir, t.KeyCredential)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	k, err := DecodeTokenKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return k, nil
}

// DecodeTokenKey turns key file contents into the 32-byte key.
func DecodeTokenKey(b []byte) ([]byte, error) {
	if len(b) == TokenKeySize {
		return slices.Clone(b), nil
	}
	s := strings.TrimSpace(string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == TokenKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("the key must be %d raw bytes or their base64 (file holds %d bytes); make one with: head -c 32 /dev/urandom | base64", TokenKeySize, len(b))
}

// validate checks the tokens section against the accounts that need it:
// without a key, OAuth2 accounts are refused unless allow_plaintext is set.
func (t *Tokens) validate(path string, accounts []Account) []error {
	var errs []error
	if t.KeyFile != "" && t.KeyCredential != "" {
		errs = append(errs, fmt.Errorf("%s.key_file: set only one of key_file, key_credential", path))
	}
	if t.HasKey() || t.AllowPlaintext {
		return errs
	}
	var ids []string
	for i := range accounts {
		if accounts[i].Auth == "oauth2" {
			ids = append(ids, accounts[i].Path())
		}
	}
	if len(ids) > 0 {
		errs = append(errs, fmt.Errorf("%s: OAuth2 tokens need an encryption key at rest (%s use oauth2): set %s.key_file or %s.key_credential, or %s.allow_plaintext: true",
			path, strings.Join(ids, ", "), path, path, path))
	}
	return errs
}

// resolveOAuthPaths makes the token key and client secret files relative to
// the config file's directory.
func (c *Config) resolveOAuthPaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.Tokens.KeyFile)
	for i := range c.Accounts {
		abs(&c.Accounts[i].OAuth2.ClientSecretFile)
	}
}

// readSource reads a secret from exactly one of an environment variable, a
// file or a systemd credential; keys in errors are <path>.<what>_env etc.
func readSource(path, what, env, file, cred string) (string, error) {
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("%s.%s_env: environment variable %s is not set", path, what, env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s.%s_file: %w", path, what, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	default:
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", fmt.Errorf("%s.%s_credential: $CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)", path, what)
		}
		b, err := os.ReadFile(filepath.Join(dir, cred))
		if err != nil {
			return "", fmt.Errorf("%s.%s_credential: %w", path, what, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}
