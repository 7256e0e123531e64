package oauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/mailsync/mailsync/sync/imapconn"
)

// Causes carried by *TokenError; match them with errors.Is.
var (
	// ErrReauthNeeded: the refresh token was revoked or has expired; only
	// `mailsync auth login` helps.
	ErrReauthNeeded = errors.New("OAuth2 refresh token revoked or expired")
	// ErrNoToken: no token was ever stored for the account.
	ErrNoToken = errors.New("no OAuth2 token stored")
	// ErrClientRejected: the token endpoint refused the client itself
	// (invalid_client, unauthorized_client): a configuration problem.
	ErrClientRejected = errors.New("OAuth2 client rejected by the token endpoint")
	// ErrUnreadable: the stored token cannot be decrypted with the
	// configured key.
	ErrUnreadable = errors.New("stored OAuth2 token cannot be read")
	// ErrNoKey: tokens would be stored unencrypted without
	// tokens.allow_plaintext.
	ErrNoKey = errors.New("no key to encrypt OAuth2 tokens (set tokens.key_file or tokens.key_credential, or tokens.allow_plaintext: true)")
)

// TokenError is an account's token problem that retrying cannot fix: a
// person must log in again or fix the configuration. imapconn.IsAuthFailure
// reports true for it, so the worker parks the account in its slow
// "auth failed" retry instead of hammering the server.
type TokenError struct {
	Account string
	// Err is one of ErrReauthNeeded, ErrNoToken, ErrClientRejected,
	// ErrUnreadable.
	Err error
	// Detail says more, e.g. the token endpoint's error code. Never a
	// secret.
	Detail string
}

var _ imapconn.CredentialError = (*TokenError)(nil)

// Error is a plain-words sentence with the command that fixes it.
func (e *TokenError) Error() string {
	login := "run: mailsync auth login --account " + e.Account
	var s string
	switch e.Err {
	case ErrReauthNeeded:
		s = "OAuth2 refresh token revoked or expired; " + login
	case ErrNoToken:
		s = fmt.Sprintf("no OAuth2 token stored for account %s; %s", e.Account, login)
	case ErrClientRejected:
		s = fmt.Sprintf("OAuth2 client rejected by the token endpoint; check accounts[%s].oauth2 client_id and client secret", e.Account)
	default:
		s = fmt.Sprintf("account %s: %v", e.Account, e.Err)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// CredentialRefused implements imapconn.CredentialError.
func (e *TokenError) CredentialRefused() bool { return true }

// RefreshError is a failed refresh that will be retried: the identity
// provider was unreachable or answered an error that may pass. It is not
// an auth failure; the worker backs off and re-dials, and the manager
// lets at most one request through per backoff step.
type RefreshError struct {
	Account string
	// Attempt counts consecutive failures; MaxAttempts bounds the
	// invalid_grant answers accepted before the account needs a login.
	Attempt, MaxAttempts int
	// RetryAt is when the next request may go to the token endpoint.
	RetryAt time.Time
	Err     error
}

// Error names the account, the failure and the retry time.
func (e *RefreshError) Error() string {
	return fmt.Sprintf("refresh OAuth2 token for account %s (attempt %d): %v; next try at %s",
		e.Account, e.Attempt, e.Err, e.RetryAt.Format(time.TimeOnly))
}

// Unwrap returns the cause.
func (e *RefreshError) Unwrap() error { return e.Err }

// EndpointError is an error answer from a token or device endpoint
// (RFC 6749 §5.2). The response body is not kept: it could echo a secret.
type EndpointError struct {
	Status      int
	Code        string
	Description string
}

// Error names the error code and HTTP status.
func (e *EndpointError) Error() string {
	s := "token endpoint answered HTTP " + fmt.Sprint(e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// staleTokenError says the server refused an access token taken from the
// cache (revoked early, or the clock is off). The token is dropped and the
// next dial fetches a new one, so it is transient: it deliberately does not
// wrap the server's *imap.Error, which imapconn would class as an auth
// failure.
type staleTokenError struct {
	mech, server string
}

func (e *staleTokenError) Error() string {
	return fmt.Sprintf("%s: server refused the cached OAuth2 access token (%s); a new one is fetched for the next attempt", e.mech, e.server)
}

// refusedError says the server refused a token just obtained from the
// identity provider: wrong scopes, IMAP disabled for the mailbox, a
// username that is not the token's. Retrying soon cannot help.
type refusedError struct {
	mech      string
	challenge *ChallengeError
	err       error
}

var _ imapconn.CredentialError = (*refusedError)(nil)

func (e *refusedError) Error() string {
	if e.challenge != nil {
		return fmt.Sprintf("%v: %v", e.challenge, e.err)
	}
	return fmt.Sprintf("%s: %v", e.mech, e.err)
}

func (e *refusedError) Unwrap() error { return e.err }

// CredentialRefused implements imapconn.CredentialError.
func (e *refusedError) CredentialRefused() bool { return true }
