package imapconn

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// Authenticator logs a connection in. Dial calls it once, inside a command
// deadline, on a client that has received the greeting and whose
// capabilities are known (c.Caps() does not block).
//
// Authenticate returns the server's *imap.Error unchanged when the server
// refuses (Dial classifies it, see IsAuthFailure) and any other error when
// it could not try, such as a secret store being unavailable. Errors must
// not contain the secret. After any error Dial closes the connection:
// a failed SASL exchange can leave it desynchronised, so it is never
// reused.
type Authenticator interface {
	Authenticate(ctx context.Context, c *imapclient.Client, username string) error
}

// Password returns an Authenticator that sends LOGIN, or AUTHENTICATE PLAIN
// when the server advertises LOGINDISABLED. secret is called at each login,
// so the password is kept only where secret keeps it, not in Options.
func Password(secret func() (string, error)) Authenticator {
	return passwordAuth{secret: secret}
}

type passwordAuth struct {
	secret func() (string, error)
}

// String keeps the secret function out of printed Options.
func (passwordAuth) String() string { return "password" }

// Authenticate implements Authenticator.
func (p passwordAuth) Authenticate(_ context.Context, c *imapclient.Client, username string) error {
	password, err := p.secret()
	if err != nil {
		return fmt.Errorf("get password: %w", err)
	}
	caps := c.Caps()
	if caps.Has(imap.CapLoginDisabled) {
		if !caps.Has(imap.AuthCap(sasl.Plain)) {
			return errors.New("server disables LOGIN and offers no AUTHENTICATE PLAIN")
		}
		return c.Authenticate(sasl.NewPlainClient("", username, password))
	}
	return c.Login(username, password).Wait()
}

// authError marks the server's refusal of credentials.
type authError struct {
	username string
	err      error
}

func (e *authError) Error() string {
	return fmt.Sprintf("login as %q rejected: %v", e.username, e.err)
}

func (e *authError) Unwrap() error { return e.err }

// CredentialError is implemented by errors from an Authenticator that mean
// the credentials cannot work until a person acts, though no server said
// so: an OAuth2 refresh token the identity provider revoked, no token
// stored yet. CredentialRefused reports whether that is so.
type CredentialError interface {
	error
	CredentialRefused() bool
}

// IsAuthFailure reports whether err says the server refused the
// credentials, which retrying will not fix: a NO to LOGIN or AUTHENTICATE
// during Dial (other than the transient codes UNAVAILABLE, SERVERBUG, LIMIT
// and INUSE of RFC 5530), any response code AUTHENTICATIONFAILED or
// AUTHORIZATIONFAILED, or a CredentialError that says it is refused.
func IsAuthFailure(err error) bool {
	var ae *authError
	if errors.As(err, &ae) {
		return true
	}
	var ce CredentialError
	if errors.As(err, &ce) && ce.CredentialRefused() {
		return true
	}
	var ie *imap.Error
	return errors.As(err, &ie) && isCredentialCode(ie.Code)
}

func isCredentialCode(code imap.ResponseCode) bool {
	return code == imap.ResponseCodeAuthenticationFailed || code == imap.ResponseCodeAuthorizationFailed
}

// rejected reports whether an Authenticate error is the server refusing.
func rejected(err error) bool {
	var ie *imap.Error
	if !errors.As(err, &ie) {
		return false
	}
	if isCredentialCode(ie.Code) {
		return true
	}
	if ie.Type != imap.StatusResponseTypeNo {
		return false
	}
	switch ie.Code {
	case imap.ResponseCodeUnavailable, imap.ResponseCodeServerBug, imap.ResponseCodeLimit, imap.ResponseCodeInUse:
		return false
	}
	return true
}
