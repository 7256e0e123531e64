package oauth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/imapconn"
)

// Authenticator returns the login method of acct: OAuth2 for auth: oauth2,
// else password login from the account's secret source. It has the shape
// of worker.Deps.Authenticator and is cheap: the worker calls it per dial.
func (m *Manager) Authenticator(acct *config.Account) (imapconn.Authenticator, error) {
	if acct.Auth != "oauth2" {
		return imapconn.Password(acct.Password), nil
	}
	a := m.accounts[acct.ID]
	if a == nil {
		return nil, fmt.Errorf("account %s: oauth2 was not configured when the token manager started", acct.ID)
	}
	return &authenticator{m: m, a: a}, nil
}

// authenticator logs in with the account's current access token.
type authenticator struct {
	m *Manager
	a *tokenAccount
}

// String keeps printed Options free of the manager's internals.
func (x *authenticator) String() string { return "oauth2" }

// Authenticate implements imapconn.Authenticator.
//
// Failures: the manager's *TokenError and *RefreshError unchanged; when
// the server refuses a token that came from the cache, a transient error
// (the token is dropped, and the next dial refreshes); when it refuses a
// token fresh from the identity provider, an error that
// imapconn.IsAuthFailure reports as such.
func (x *authenticator) Authenticate(ctx context.Context, c *imapclient.Client, username string) error {
	tok, fresh, err := x.m.token(ctx, x.a)
	if err != nil {
		return err
	}
	mech := x.mechanism(c.Caps())
	var cl refusingClient
	if mech == sasl.OAuthBearer {
		cl = NewOAuthBearerClient(username, tok, x.a.acct.Host, x.a.acct.Port).(refusingClient)
	} else {
		cl = NewXOAuth2Client(username, tok).(refusingClient)
	}
	err = c.Authenticate(cl)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrBadCredentialChars) {
		// Nothing was sent; the username cannot work until it is fixed.
		return &refusedError{mech: mech, err: err}
	}
	refused := cl.Refused()
	var ie *imap.Error
	if refused == nil && !errors.As(err, &ie) {
		// The exchange did not finish: the connection, not the token.
		return fmt.Errorf("authenticate %s: %w", mech, err)
	}
	x.m.invalidate(x.a, tok)
	if !fresh {
		return &staleTokenError{mech: mech, server: serverText(refused, ie)}
	}
	return &refusedError{mech: mech, challenge: refused, err: err}
}

// mechanism picks the configured mechanism, else OAUTHBEARER when the
// server advertises it (the standard, RFC 7628), else XOAUTH2.
func (x *authenticator) mechanism(caps imap.CapSet) string {
	switch x.a.acct.OAuth2.Mechanism {
	case config.MechOAuthBearer:
		return sasl.OAuthBearer
	case config.MechXOAuth2:
		return XOAuth2
	}
	if caps.Has(imap.AuthCap(sasl.OAuthBearer)) {
		return sasl.OAuthBearer
	}
	return XOAuth2
}

func serverText(ch *ChallengeError, ie *imap.Error) string {
	var parts []string
	if ch != nil {
		parts = append(parts, "status "+ch.Status)
	}
	if ie != nil {
		parts = append(parts, clean(ie.Error()))
	}
	return strings.Join(parts, "; ")
}
