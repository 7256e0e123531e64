package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	stdsync "sync"

	"golang.org/x/oauth2"

	"github.com/mailsync/mailsync/sync/sink"
)

// ErrReauth says HubSpot refused mailsync's credentials even after a
// refresh: an operator must issue a new token or log in again. Deliveries
// wait with the cursor held (they are not dead-lettered).
var ErrReauth = errors.New("HubSpot refused the credentials: re-authorization needed")

// auth supplies the bearer token.
type auth interface {
	token(ctx context.Context) (string, error)
	// renew is called after HubSpot refused stale with 401. It reports
	// whether a different token is now available to try once more.
	renew(ctx context.Context, stale string) bool
	// kind is "private-app" or "oauth2" (which token-info endpoint applies).
	kind() string
}

// staticAuth is a private-app access token; it does not expire, so a 401
// means it was rotated or the app deleted.
type staticAuth struct{ tok string }

func (a staticAuth) token(context.Context) (string, error) { return a.tok, nil }
func (staticAuth) renew(context.Context, string) bool      { return false }
func (staticAuth) kind() string                            { return "private-app" }

// oauthAuth refreshes short-lived access tokens (HubSpot's last 30
// minutes) from a refresh token: one from the config's file or variable,
// or the one `mailsync auth login --sink` stored (store != nil), which a
// rotation replaces and a refusal marks.
type oauthAuth struct {
	conf    *oauth2.Config
	refresh string
	hc      *http.Client
	store   sink.TokenStore

	mu     stdsync.Mutex
	cur    *oauth2.Token
	reauth string // why HubSpot refused the refresh token; "" while it works
}

func newOAuth(o *OAuth2, hc *http.Client, store sink.TokenStore) (*oauthAuth, error) {
	sec, err := secret("oauth2.client_secret", o.ClientSecretFile, o.ClientSecretEnv)
	if err != nil {
		return nil, err
	}
	a := &oauthAuth{conf: loginConfig(o, sec), hc: hc}
	if !o.stored() {
		if a.refresh, err = secret("oauth2.refresh_token", o.RefreshTokenFile, o.RefreshTokenEnv); err != nil {
			return nil, err
		}
		return a, nil
	}
	if store == nil {
		return nil, fmt.Errorf("%s.oauth2: without refresh_token_file the refresh token from mailsync auth login --sink is kept encrypted in the state file: set tokens.key_file", configPath)
	}
	t, err := store.Token()
	if err != nil {
		return nil, fmt.Errorf("%s.oauth2: the stored grant: %w", configPath, err)
	}
	if t == nil {
		return nil, fmt.Errorf("%s.oauth2: no refresh token yet: run mailsync auth login --sink (or set refresh_token_file)", configPath)
	}
	a.refresh, a.store = t.RefreshToken, store
	if t.AccessToken != "" {
		a.cur = t
	}
	return a, nil
}

// loginConfig is the app as x/oauth2 sees it, for refreshes and for the
// authorization-code login.
func loginConfig(o *OAuth2, secret string) *oauth2.Config {
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: secret, RedirectURL: o.RedirectURL, Scopes: RequiredScopes,
		// HubSpot wants the client credentials in the form body.
		Endpoint: oauth2.Endpoint{AuthURL: o.AuthorizeURL, TokenURL: o.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
}

// login is the adapter's sink.Adapter.Login.
func login(cfg any) (*sink.LoginConfig, error) {
	c := cfg.(Config)
	if c.OAuth2 == nil {
		return nil, nil // a private-app token
	}
	sec, err := secret("oauth2.client_secret", c.OAuth2.ClientSecretFile, c.OAuth2.ClientSecretEnv)
	if err != nil {
		return nil, err
	}
	return &sink.LoginConfig{OAuth2: *loginConfig(c.OAuth2, sec), Stored: c.OAuth2.stored(),
		Hint: "In the app's Auth settings, add the redirect URL " + c.OAuth2.RedirectURL + " and the scopes " + strings.Join(RequiredScopes, " ") + "."}, nil
}

func (a *oauthAuth) kind() string { return "oauth2" }

func (a *oauthAuth) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur.Valid() {
		return a.cur.AccessToken, nil
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, a.hc)
	t, err := a.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: a.refresh}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			// The refresh token itself was refused: only a new login helps.
			why := fmt.Sprintf("HubSpot refused the refresh token (%s)", re.Response.Status)
			if a.reauth == "" && a.store != nil {
				_ = a.store.NeedsReauth(why) // best effort: status also shows it live
			}
			a.reauth = why
			return "", fmt.Errorf("hubspot: refresh the OAuth2 token: %w (run mailsync auth login --sink or issue a new refresh token)", ErrReauth)
		}
		return "", fmt.Errorf("hubspot: refresh the OAuth2 token: %v", redactRetrieve(err))
	}
	if t.RefreshToken == "" {
		t.RefreshToken = a.refresh
	}
	if a.store != nil {
		// A rotated refresh token must outlive this process; the access
		// token is kept too, so a restart does not refresh again, and a
		// stale re-authorization mark is cleared.
		if err := a.store.SaveToken(t); err != nil {
			return "", fmt.Errorf("hubspot: store the rotated refresh token: %w", err)
		}
	}
	a.refresh, a.cur, a.reauth = t.RefreshToken, t, ""
	return t.AccessToken, nil
}

// health is what sink.Health reports: "" or why a login is needed.
func (a *oauthAuth) health() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reauth == "" {
		return ""
	}
	return "re-authorization needed: " + a.reauth + "; run mailsync auth login --sink"
}

func (a *oauthAuth) renew(_ context.Context, stale string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil && a.cur.AccessToken == stale {
		a.cur = nil // the next token() refreshes
	}
	return true
}

// redactRetrieve drops the response body oauth2 quotes, which may hold a
// token.
func redactRetrieve(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return fmt.Errorf("token endpoint answered %s", re.Response.Status)
	}
	return err
}
