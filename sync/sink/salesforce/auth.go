package salesforce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	stdsync "sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/mailsync/mailsync/sync/sink"
)

// grant gets a new access token from the connected app.
type grant interface {
	fetch(ctx context.Context) (*oauth2.Token, error)
	// how says what an operator does when fetch is refused.
	how() string
}

// refreshGrant is the refresh-token flow (RFC 6749 §6): a token from
// refresh_token_file, or the one `mailsync auth login --sink` stored,
// which a rotation replaces and a refusal marks.
type refreshGrant struct {
	conf    *oauth2.Config
	refresh string
	store   sink.TokenStore // nil: refresh_token_file
	hc      *http.Client

	mu stdsync.Mutex // one refresh at a time: a rotation must not race
}

func (g *refreshGrant) fetch(ctx context.Context) (*oauth2.Token, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, g.hc)
	t, err := g.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: g.refresh}).Token()
	if err != nil {
		return nil, err
	}
	if t.RefreshToken == "" {
		t.RefreshToken = g.refresh // Salesforce rotates only when the app says so
	}
	if g.store != nil {
		if err := g.store.SaveToken(t); err != nil {
			return nil, fmt.Errorf("store the refreshed grant: %w", err)
		}
	}
	g.refresh = t.RefreshToken
	return t, nil
}

func (g *refreshGrant) how() string {
	if g.store != nil {
		return "run mailsync auth login --sink"
	}
	return "issue a new refresh token and write it to " + configPath + ".oauth2.refresh_token_file"
}

// jwtGrant is the JWT bearer flow (RFC 7523): the connected app's
// certificate key signs a short assertion for the integration user, so no
// one logs in and nothing is stored.
type jwtGrant struct {
	conf *jwt.Config
	hc   *http.Client
}

func (g *jwtGrant) fetch(ctx context.Context) (*oauth2.Token, error) {
	return g.conf.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, g.hc)).Token()
}

func (g *jwtGrant) how() string {
	return "check that user " + g.conf.Subject + " is pre-authorized for the connected app and that its certificate matches " + configPath + ".oauth2.private_key_file"
}

// newGrant builds the grant of the oauth2 section; nil without one.
func newGrant(o *OAuth2, hc *http.Client, store sink.TokenStore) (grant, *oauth2.Token, error) {
	if o == nil {
		return nil, nil, nil
	}
	p := configPath + ".oauth2"
	if o.jwt() {
		key, err := os.ReadFile(o.PrivateKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.private_key_file: %w", p, err)
		}
		return &jwtGrant{hc: hc, conf: &jwt.Config{Email: o.ClientID, Subject: o.Username, PrivateKey: key,
			TokenURL: o.TokenURL, Audience: o.Audience,
			Expires: 3 * time.Minute}}, nil, nil // Salesforce refuses assertions valid for longer
	}
	secret, err := readSecretFile("client_secret_file", o.ClientSecretFile)
	if err != nil {
		return nil, nil, err
	}
	g := &refreshGrant{conf: loginConfig(o, secret), hc: hc}
	if !o.stored() {
		if g.refresh, err = readSecretFile("refresh_token_file", o.RefreshTokenFile); err != nil {
			return nil, nil, err
		}
		if g.refresh == "" {
			return nil, nil, fmt.Errorf("%s.refresh_token_file: the file is empty", p)
		}
		return g, nil, nil
	}
	if store == nil {
		return nil, nil, fmt.Errorf("%s: without refresh_token_file the refresh token from mailsync auth login --sink is kept encrypted in the state file: set tokens.key_file", p)
	}
	t, err := store.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: the stored grant: %w", p, err)
	}
	if t == nil {
		return nil, nil, fmt.Errorf("%s: no refresh token yet: run mailsync auth login --sink (or set refresh_token_file or the JWT bearer flow)", p)
	}
	g.refresh, g.store = t.RefreshToken, store
	return g, t, nil
}

func loginConfig(o *OAuth2, secret string) *oauth2.Config {
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: secret, RedirectURL: o.RedirectURL,
		Scopes:   []string{"api", "refresh_token"},
		Endpoint: oauth2.Endpoint{AuthURL: o.AuthorizeURL, TokenURL: o.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
}

// login is the adapter's sink.Adapter.Login: the refresh-token flow's
// sign-in (authorization code with PKCE); nil for the JWT bearer flow and
// for a bare token_file.
func login(cfg any) (*sink.LoginConfig, error) {
	c := cfg.(Config)
	o := c.OAuth2
	if o == nil || o.jwt() {
		return nil, nil
	}
	secret, err := readSecretFile("client_secret_file", o.ClientSecretFile)
	if err != nil {
		return nil, err
	}
	return &sink.LoginConfig{OAuth2: *loginConfig(o, secret), PKCE: true, Stored: o.stored(),
		Hint: "In the connected app, enable OAuth settings with the callback URL " + o.RedirectURL + " and the scopes api and refresh_token."}, nil
}

func (a *api) currentToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

// renew gets a new access token from the connected app, once per 401;
// false when there is no oauth2 section or the grant was refused
// (revoked, expired, not pre-authorized: someone must act).
func (a *api) renew(ctx context.Context) bool {
	if a.grant == nil {
		return false
	}
	tok, err := a.grant.fetch(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		refused := errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500
		if errors.As(err, &re) {
			err = fmt.Errorf("%s %s", re.ErrorCode, re.ErrorDescription) // not the body: it may echo the request
		}
		a.log.Warn("salesforce refused the token request", "error", err)
		if refused {
			a.mu.Lock()
			first := a.reauth == ""
			a.reauth = fmt.Sprintf("the connected app's grant was refused (%v)", err)
			a.mu.Unlock()
			if g, ok := a.grant.(*refreshGrant); ok && first && g.store != nil {
				_ = g.store.NeedsReauth(fmt.Sprint(err)) // best effort: status shows it live too
			}
		}
		return false
	}
	a.mu.Lock()
	a.token, a.reauth = tok.AccessToken, ""
	a.mu.Unlock()
	a.log.Info("salesforce access token obtained from the connected app")
	return true
}

// reauthHint says what to do after a 401 nothing could renew.
func (a *api) reauthHint() string {
	if a.grant != nil {
		return a.grant.how()
	}
	return "log in again and write the new token to " + configPath + ".token_file"
}

// health is what sink.Health reports.
func (a *api) health() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reauth == "" {
		return ""
	}
	return "re-authentication needed: " + a.reauth + "; " + a.reauthHint()
}
