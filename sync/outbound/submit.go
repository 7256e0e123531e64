package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsync/mailsync/config"
)

// dataTimeout bounds the wait for the reply to the final "." of DATA:
// RFC 5321 §4.5.3.2.6 asks clients to wait 10 minutes, because the server
// may be scanning or relaying the message before it answers.
const dataTimeout = 10 * time.Minute

// submit hands out.wire to the account's SMTP server. On failure,
// maybeSent says whether the server may have accepted the message anyway:
// only when the data was complete and its reply never came. Every other
// failure happened before the server could accept anything.
func (s *Sender) submit(ctx context.Context, acct *config.Account, out *outgoing) (reply string, maybeSent bool, err error) {
	addr := acct.SMTPAddr()
	timeout := s.cmdTimeout()
	fail := func(stage string, err error) *SMTPError {
		e := &SMTPError{Server: addr, Stage: stage, Err: err}
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			e.Code, e.Reply = se.Code, se.Message
			if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
				e.Reply = fmt.Sprintf("%d.%d.%d %s", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
			}
		} else if isCertError(err) {
			e.Stage = "tls"
		}
		return e
	}

	tlsCfg, err := smtpTLSConfig(acct)
	if err != nil {
		return "", false, fail("tls", err)
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", false, fail("connect", err)
	}
	defer raw.Close()
	// go-smtp takes no context: closing the connection is what ends a
	// call in flight when ctx ends. The watchdog does the same for the
	// greeting and STARTTLS, which run before CommandTimeout can be set.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	watchdog := time.AfterFunc(timeout, func() { raw.Close() })

	var c *smtp.Client
	switch acct.SMTP.TLS {
	case "implicit":
		tc := tls.Client(raw, tlsCfg)
		hctx, cancel := context.WithTimeout(ctx, timeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			watchdog.Stop()
			return "", false, fail("tls", err)
		}
		c = smtp.NewClient(tc)
	case "starttls":
		c, err = smtp.NewClientStartTLS(raw, tlsCfg)
		if err != nil {
			watchdog.Stop()
			return "", false, fail("starttls", err)
		}
	default: // none: config allows it for loopback hosts only
		c = smtp.NewClient(raw)
	}
	c.CommandTimeout, c.SubmissionTimeout = timeout, dataTimeout
	if h := heloName(); h != "" {
		_ = c.Hello(h) // fails only if EHLO was already sent (STARTTLS did), which is fine
	}
	if err := s.smtpAuth(c, acct); err != nil {
		watchdog.Stop()
		return "", false, fail("auth", err)
	}
	watchdog.Stop()

	if n, ok := c.MaxMessageSize(); ok && n > 0 && len(out.wire) > n {
		return "", false, &SMTPError{Server: addr, Stage: "size", Code: 552,
			Reply: fmt.Sprintf("message is %d bytes; the server accepts at most %d (SIZE)", len(out.wire), n)}
	}
	opts := &smtp.MailOptions{Size: int64(len(out.wire))}
	if !isASCII(out.from) || !allASCII(out.rcpts) {
		opts.UTF8 = true
	}
	if err := c.Mail(out.from, opts); err != nil {
		return "", false, fail("mail from <"+out.from+">", err)
	}
	for _, r := range out.rcpts {
		// One refused recipient fails the whole send before DATA, so
		// nobody gets a message the CRM was told did not go out.
		if err := c.Rcpt(r, nil); err != nil {
			return "", false, fail("rcpt to <"+r+">", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return "", false, fail("data", err)
	}
	if _, err := w.Write(out.wire); err != nil {
		return "", false, fail("data", err)
	}
	// From here the server may have the whole message: a missing reply
	// leaves the outcome unknown.
	resp, err := w.CloseWithResponse()
	if err != nil {
		var se *smtp.SMTPError
		return "", !errors.As(err, &se), fail("data", err)
	}
	_ = c.Quit() // accepted is accepted, whatever QUIT says
	return resp.StatusText, false, nil
}

// smtpAuth logs in with the Deps.SMTPAuth hook or PLAIN (LOGIN when PLAIN
// is not offered). A server that offers no AUTH is accepted only in
// cleartext on loopback, where a local relay needs none.
func (s *Sender) smtpAuth(c *smtp.Client, acct *config.Account) error {
	ok, mechs := c.Extension("AUTH")
	if !ok {
		if err := c.Noop(); err != nil { // surfaces a failed EHLO or handshake
			return err
		}
		if acct.SMTP.TLS == "none" {
			return nil
		}
		return errors.New("the server offers no AUTH")
	}
	var sc sasl.Client
	if s.authHook != nil {
		var err error
		if sc, err = s.authHook(acct); err != nil {
			return err
		}
	} else {
		pw, err := acct.SMTPPassword()
		if err != nil {
			return err
		}
		switch {
		case c.SupportsAuth(sasl.Plain):
			sc = sasl.NewPlainClient("", acct.SMTPUsername(), pw)
		case c.SupportsAuth(sasl.Login):
			sc = sasl.NewLoginClient(acct.SMTPUsername(), pw)
		default:
			return fmt.Errorf("the server offers AUTH %s, none of PLAIN, LOGIN", mechs)
		}
	}
	return c.Auth(sc)
}

// smtpTLSConfig verifies the server against the system roots plus
// smtp.ca_file; verification is never off.
func smtpTLSConfig(acct *config.Account) (*tls.Config, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(acct.SMTP.Host, "["), "]")
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if acct.SMTP.CAFile == "" {
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(acct.SMTP.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%s.smtp.ca_file: %w", acct.Path(), err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s.smtp.ca_file: %s holds no PEM certificate", acct.Path(), acct.SMTP.CAFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

func isCertError(err error) bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// heloName is this host's name for EHLO when it looks like a domain
// (RFC 5321 §4.1.1.1 asks for the FQDN); go-smtp's "localhost" otherwise.
func heloName() string {
	h, err := os.Hostname()
	if err != nil || !strings.Contains(h, ".") {
		return ""
	}
	return h
}

func isASCII(s string) bool {
	return !bytes.ContainsFunc([]byte(s), func(r rune) bool { return r >= 0x80 })
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}
