package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	stdsync "sync"

	"golang.org/x/oauth2"
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
// minutes) from a refresh token.
type oauthAuth struct {
	conf    *oauth2.Config
	refresh string
	hc      *http.Client

	mu  stdsync.Mutex
	cur *oauth2.Token
}

func newOAuth(o *OAuth2, hc *http.Client) (*oauthAuth, error) {
	sec, err := secret("oauth2.client_secret", o.ClientSecretFile, o.ClientSecretEnv)
	if err != nil {
		return nil, err
	}
	rt, err := secret("oauth2.refresh_token", o.RefreshTokenFile, o.RefreshTokenEnv)
	if err != nil {
		return nil, err
	}
	return &oauthAuth{
		conf: &oauth2.Config{ClientID: o.ClientID, ClientSecret: sec,
			// HubSpot wants the client credentials in the form body.
			Endpoint: oauth2.Endpoint{TokenURL: o.TokenURL, AuthStyle: oauth2.AuthStyleInParams}},
		refresh: rt, hc: hc,
	}, nil
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
			return "", fmt.Errorf("hubspot: refresh the OAuth2 token: %w (run mailsync auth or issue a new refresh token)", ErrReauth)
		}
		return "", fmt.Errorf("hubspot: refresh the OAuth2 token: %v", redactRetrieve(err))
	}
	if t.RefreshToken != "" {
		a.refresh = t.RefreshToken
	}
	a.cur = t
	return t.AccessToken, nil
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
