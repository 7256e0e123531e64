package sink

import "golang.org/x/oauth2"

// TokenStore keeps a CRM adapter's OAuth2 grant in the state file,
// encrypted (tokens.key_file): the refresh token `mailsync auth login
// --sink` obtained, the ones a refresh rotated in, and whether the CRM
// refused the grant. Deps.Tokens is nil when the daemon has no key to
// encrypt with.
type TokenStore interface {
	// Token returns the stored grant; nil, nil when there is none.
	Token() (*oauth2.Token, error)
	// SaveToken replaces the grant (a refresh that rotated the refresh
	// token) and clears a re-authorization mark.
	SaveToken(t *oauth2.Token) error
	// NeedsReauth records that the CRM refused the grant, with why, so
	// `mailsync auth status` says so after a restart too.
	NeedsReauth(reason string) error
}

// Health is implemented by adapters that can say, for `mailsync status`,
// that they cannot deliver until an operator acts (a refused OAuth2
// grant). It returns "" while deliveries can go through.
type Health interface {
	Health() string
}

// LoginConfig is what `mailsync auth login --sink` needs to sign a CRM in
// with the authorization-code grant: the app's endpoints, client and
// scopes. The redirect URL is the CLI's own loopback listener.
type LoginConfig struct {
	OAuth2 oauth2.Config
	// PKCE adds an S256 code challenge (RFC 7636); for CRMs that accept it.
	PKCE bool
	// Stored says the adapter reads its grant from Deps.Tokens (no
	// refresh token file is configured), so the daemon must provide one.
	Stored bool
	// Hint tells the operator what to register in the CRM's app settings.
	Hint string
}

// Login returns the sign-in settings of the configured adapter, nil when
// it has no OAuth2 login (a static token, or the JWT bearer grant). Errors
// name the key.
func Login(name string, section map[string]any) (*LoginConfig, error) {
	a, err := lookup(name)
	if err != nil {
		return nil, err
	}
	if a.Login == nil {
		return nil, nil
	}
	cfg, err := a.Parse(section)
	if err != nil {
		return nil, err
	}
	return a.Login(cfg)
}
