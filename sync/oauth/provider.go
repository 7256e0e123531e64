package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mailsync/mailsync/config"
)

// DefaultHTTPTimeout bounds one request to an identity provider when no
// HTTP client is given.
const DefaultHTTPTimeout = 30 * time.Second

// Provider talks to one account's identity provider: device login,
// refresh, client credentials. It keeps no token.
type Provider struct {
	account string
	grant   string
	oc      *oauth2.Config
	cc      *clientcredentials.Config
	hc      *http.Client
}

// NewProvider builds the provider of an oauth2 account, reading its client
// secret. hc nil means a client with DefaultHTTPTimeout.
func NewProvider(acct *config.Account, hc *http.Client) (*Provider, error) {
	if acct.Auth != "oauth2" {
		return nil, fmt.Errorf("account %s does not use oauth2 (auth: %s)", acct.ID, acct.Auth)
	}
	o := &acct.OAuth2
	secret, err := o.ClientSecret(acct.Path() + ".oauth2")
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	authURL, tokenURL, deviceURL := o.Endpoints()
	// One request per attempt: x/oauth2's auto-detection would retry a
	// failed request with the other client-authentication style, which
	// doubles every refused refresh at the identity provider. Public
	// clients send client_id in the form (RFC 6749 §3.2.1); Google and
	// Microsoft take the secret there too; other servers must support
	// HTTP Basic (RFC 6749 §2.3.1).
	style := oauth2.AuthStyleInParams
	if o.Provider == config.ProviderGeneric && secret != "" {
		style = oauth2.AuthStyleInHeader
	}
	p := &Provider{account: acct.ID, grant: o.EffectiveGrant(), hc: hc}
	p.oc = &oauth2.Config{
		ClientID: o.ClientID, ClientSecret: secret, Scopes: o.EffectiveScopes(),
		Endpoint: oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL, DeviceAuthURL: deviceURL, AuthStyle: style},
	}
	if p.grant == config.GrantClientCredentials {
		p.cc = &clientcredentials.Config{
			ClientID: o.ClientID, ClientSecret: secret, TokenURL: tokenURL,
			Scopes: o.EffectiveScopes(), AuthStyle: style,
		}
	}
	return p, nil
}

// Grant is a token response: an access token and, for delegated access, a
// refresh token. Its values never print.
type Grant struct {
	tok      *oauth2.Token
	obtained time.Time
}

// Expiry returns when the access token expires (zero: not said).
func (g *Grant) Expiry() time.Time { return g.tok.Expiry }

// HasRefreshToken reports whether the grant carries a refresh token.
func (g *Grant) HasRefreshToken() bool { return g.tok.RefreshToken != "" }

// String hides the tokens.
func (g *Grant) String() string { return "oauth2 grant (tokens redacted)" }

// GoString hides the tokens from %#v.
func (g *Grant) GoString() string { return g.String() }

// refreshExpiry reads the non-standard refresh_token_expires_in that
// Google (time-limited consent) and Microsoft (SPA clients) send.
func (g *Grant) refreshExpiry() time.Time {
	var secs float64
	switch v := g.tok.Extra("refresh_token_expires_in").(type) {
	case float64:
		secs = v
	case string:
		_, _ = fmt.Sscan(v, &secs)
	}
	if secs <= 0 {
		return time.Time{}
	}
	return g.obtained.Add(time.Duration(secs) * time.Second)
}

// DeviceCode is a pending device authorization (RFC 8628 §3.2): show
// VerificationURI and UserCode to the person, then WaitDevice.
type DeviceCode struct {
	VerificationURI         string
	VerificationURIComplete string
	UserCode                string
	Expiry                  time.Time
	resp                    *oauth2.DeviceAuthResponse
}

// String hides the device code, which is a bearer secret until used.
func (d *DeviceCode) String() string {
	return fmt.Sprintf("device authorization (user code %s, at %s)", d.UserCode, d.VerificationURI)
}

func (p *Provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.hc)
}

// StartDevice asks the device authorization endpoint for a user code.
func (p *Provider) StartDevice(ctx context.Context) (*DeviceCode, error) {
	if p.oc.Endpoint.DeviceAuthURL == "" {
		return nil, fmt.Errorf("account %s: no device authorization endpoint (set oauth2.device_url)", p.account)
	}
	da, err := p.oc.DeviceAuth(p.ctx(ctx))
	if err != nil {
		return nil, fmt.Errorf("device authorization: %w", endpointError(err))
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, errors.New("device authorization: the answer lacks device_code, user_code or verification_uri")
	}
	return &DeviceCode{
		VerificationURI: da.VerificationURI, VerificationURIComplete: da.VerificationURIComplete,
		UserCode: da.UserCode, Expiry: da.Expiry, resp: da,
	}, nil
}

// WaitDevice polls the token endpoint at the interval the server asked
// for until the person approves, denies, the code expires or ctx ends.
func (p *Provider) WaitDevice(ctx context.Context, dc *DeviceCode) (*Grant, error) {
	tok, err := p.oc.DeviceAccessToken(p.ctx(ctx), dc.resp)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, errors.New("device login: the code expired before it was approved")
		}
		return nil, fmt.Errorf("device login: %w", endpointError(err))
	}
	return p.checked(tok)
}

// Refresh exchanges a refresh token for a new access token (and, where the
// provider rotates them, a new refresh token; otherwise the old one is
// kept).
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*Grant, error) {
	if refreshToken == "" {
		return nil, errors.New("refresh: empty refresh token")
	}
	tok, err := p.oc.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, endpointError(err)
	}
	return p.checked(tok)
}

// ClientCredentials asks for an app-only access token.
func (p *Provider) ClientCredentials(ctx context.Context) (*Grant, error) {
	if p.cc == nil {
		return nil, fmt.Errorf("account %s does not use the client_credentials grant", p.account)
	}
	tok, err := p.cc.Token(p.ctx(ctx))
	if err != nil {
		return nil, endpointError(err)
	}
	return p.checked(tok)
}

// fetch gets a new access token the way the account's grant says.
func (p *Provider) fetch(ctx context.Context, refreshToken string) (*Grant, error) {
	if p.grant == config.GrantClientCredentials {
		return p.ClientCredentials(ctx)
	}
	return p.Refresh(ctx, refreshToken)
}

func (p *Provider) checked(tok *oauth2.Token) (*Grant, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("token endpoint answered without an access token")
	}
	return &Grant{tok: tok, obtained: time.Now()}, nil
}

// Redact is endpointError for callers outside the package that talk
// to a token endpoint themselves (a CRM's).
func Redact(err error) error { return endpointError(err) }

// endpointError replaces x/oauth2's RetrieveError, whose message carries
// the response body, with an EndpointError that does not.
func endpointError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err
	}
	e := &EndpointError{Code: clean(re.ErrorCode), Description: clean(re.ErrorDescription)}
	if re.Response != nil {
		e.Status = re.Response.StatusCode
	}
	return e
}

// Results for mailsync_oauth_refresh_total.
const (
	resultOK           = "ok"
	resultInvalidGrant = "invalid_grant"
	resultNetwork      = "network"
	resultOther        = "other"
)

// classify sorts a fetch error: invalid_grant (the refresh token is dead),
// client (the client is refused), network (unreachable, timeouts, 5xx,
// 429: may pass) or other.
func classify(err error) (result string, clientRejected bool) {
	if err == nil {
		return resultOK, false
	}
	var ee *EndpointError
	if !errors.As(err, &ee) {
		return resultNetwork, false
	}
	switch {
	case ee.Code == "invalid_grant":
		return resultInvalidGrant, false
	case ee.Code == "invalid_client" || ee.Code == "unauthorized_client":
		return resultOther, true
	case ee.Status >= 500 || ee.Status == http.StatusTooManyRequests:
		return resultNetwork, false
	}
	return resultOther, false
}
