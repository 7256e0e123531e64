package imapconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TLSError is a failed TLS handshake explained for an operator: which
// certificate problem, for which name.
type TLSError struct {
	Addr string // host:port
	Msg  string // e.g. "certificate for imap.example.com expired on 2026-01-03"
	Err  error  // the crypto/tls or crypto/x509 error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("imap %s: tls: %s", e.Addr, e.Msg)
}

func (e *TLSError) Unwrap() error { return e.Err }

// IsTLSError reports whether err is a TLS handshake or certificate failure,
// which needs an operator (trust a CA, fix the name, renew the certificate)
// rather than a retry.
func IsTLSError(err error) bool {
	var te *TLSError
	if errors.As(err, &te) {
		return true
	}
	var (
		cve *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		hn  x509.HostnameError
	)
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn)
}

// tlsError explains a handshake error, or returns nil when err is not about
// TLS itself (a timeout or a reset connection).
func tlsError(addr, serverName string, port int, err error, now time.Time) *TLSError {
	var (
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		hn  x509.HostnameError
		rh  tls.RecordHeaderError
		ae  tls.AlertError
		cve *tls.CertificateVerificationError
		msg string
	)
	switch {
	case errors.As(err, &ua):
		msg = "certificate signed by unknown authority"
		if ua.Cert != nil {
			msg += fmt.Sprintf(" (issuer %q; if it is trusted, name its CA certificate in the CA file option)", ua.Cert.Issuer.String())
		}
	case errors.As(err, &ci):
		msg = describeInvalid(serverName, ci, now)
	case errors.As(err, &hn):
		msg = fmt.Sprintf("certificate is valid for %s, not %s", certNames(hn.Certificate), hn.Host)
	case errors.As(err, &cve):
		msg = "certificate verification failed: " + cve.Err.Error()
	case errors.As(err, &rh):
		msg = fmt.Sprintf("server did not answer in TLS; is port %d meant for STARTTLS or cleartext?", port)
	case errors.As(err, &ae):
		msg = "server refused the handshake: " + ae.Error()
	default:
		return nil
	}
	return &TLSError{Addr: addr, Msg: msg, Err: err}
}

func describeInvalid(name string, ci x509.CertificateInvalidError, now time.Time) string {
	c := ci.Cert
	switch {
	case ci.Reason == x509.Expired && c != nil && now.After(c.NotAfter):
		return fmt.Sprintf("certificate for %s expired on %s", name, c.NotAfter.UTC().Format(time.DateOnly))
	case ci.Reason == x509.Expired && c != nil:
		return fmt.Sprintf("certificate for %s is not valid before %s", name, c.NotBefore.UTC().Format(time.DateOnly))
	case ci.Reason == x509.NotAuthorizedToSign:
		return fmt.Sprintf("certificate chain for %s has an issuer not allowed to sign certificates", name)
	case ci.Reason == x509.IncompatibleUsage:
		return fmt.Sprintf("certificate for %s is not for server authentication", name)
	}
	return fmt.Sprintf("certificate for %s is invalid: %v", name, ci)
}

// certNames lists the names a certificate is valid for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "no names"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		if c.Subject.CommonName != "" {
			return fmt.Sprintf("no names (only the legacy common name %q)", c.Subject.CommonName)
		}
		return "no names"
	}
	return strings.Join(names, ", ")
}
