package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// SMTPFront is the optional SMTP submission listener for CRMs that cannot
// call the send API but can use a custom outgoing mail server (Odoo,
// SuiteCRM, EspoCRM, Zammad, Twenty): a CRM logs in with AUTH PLAIN as an
// account id and that account's credential, and each message it submits is
// sent as the send API sends it.
type SMTPFront struct {
	// Listen is host:port; empty disables the front.
	Listen string `mapstructure:"listen"`
	// TLS is starttls (default), implicit, or none (loopback only).
	TLS      string `mapstructure:"tls"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// CredentialsFile holds one "account-id:secret" per line.
	CredentialsFile string `mapstructure:"credentials_file"`
	// MaxMessageBytes is advertised as SIZE and enforced (552).
	MaxMessageBytes int64 `mapstructure:"max_message_bytes"`
	// MaxRecipients caps RCPT TO per message (452).
	MaxRecipients int `mapstructure:"max_recipients"`
	// RatePerAccount is how many messages an account may submit per minute
	// (450 beyond it).
	RatePerAccount int `mapstructure:"rate_per_account"`
	// Hostname is the name in the greeting; empty means the host's name.
	Hostname string `mapstructure:"hostname"`
}

// SMTP front defaults and bounds.
const (
	DefaultFrontMaxMessageBytes = 25 << 20
	DefaultFrontMaxRecipients   = 100
	DefaultFrontRate            = 60
	// MaxFrontRecipients is the send path's own limit on recipients.
	MaxFrontRecipients = 500
)

// Enabled reports whether the front is configured.
func (f *SMTPFront) Enabled() bool { return f.Listen != "" }

func (f *SMTPFront) isZero() bool { return *f == SMTPFront{} }

func (f *SMTPFront) applyDefaults() {
	if f.TLS == "" {
		f.TLS = "starttls"
	}
	if f.MaxMessageBytes == 0 {
		f.MaxMessageBytes = DefaultFrontMaxMessageBytes
	}
	if f.MaxRecipients == 0 {
		f.MaxRecipients = DefaultFrontMaxRecipients
	}
	if f.RatePerAccount == 0 {
		f.RatePerAccount = DefaultFrontRate
	}
}

func (f *SMTPFront) validate(path string) []error {
	if f.isZero() {
		return nil
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, key, fmt.Sprintf(format, args...)))
	}
	if f.Listen == "" {
		bad("listen", "is empty but other smtp_front settings are set (set listen, e.g. 127.0.0.1:2587, or remove the section)")
		return errs
	}
	f.applyDefaults()
	host, _, err := net.SplitHostPort(f.Listen)
	if err != nil {
		bad("listen", "not a host:port address: %v", err)
	}
	switch f.TLS {
	case "starttls", "implicit":
		if f.CertFile == "" {
			bad("cert_file", "is required with tls %s", f.TLS)
		}
		if f.KeyFile == "" {
			bad("key_file", "is required with tls %s", f.TLS)
		}
	case "none":
		if err == nil && !IsLoopback(host) {
			bad("tls", "none is refused for %s: credentials and mail would cross the network in clear (allowed only on a loopback address)", f.Listen)
		}
		if f.CertFile != "" || f.KeyFile != "" {
			bad("tls", "is none but cert_file or key_file is set (use starttls or implicit)")
		}
	default:
		bad("tls", "must be starttls, implicit or none, not %q", f.TLS)
	}
	if f.CredentialsFile == "" {
		bad("credentials_file", "is required: it holds each account's SMTP credential (account-id:secret per line)")
	}
	if f.MaxMessageBytes < 1024 || f.MaxMessageBytes > DefaultFrontMaxMessageBytes {
		bad("max_message_bytes", "must be between 1024 and %d, not %d", DefaultFrontMaxMessageBytes, f.MaxMessageBytes)
	}
	if f.MaxRecipients < 1 || f.MaxRecipients > MaxFrontRecipients {
		bad("max_recipients", "must be between 1 and %d, not %d", MaxFrontRecipients, f.MaxRecipients)
	}
	if f.RatePerAccount < 1 {
		bad("rate_per_account", "must be at least 1 (messages per minute), not %d", f.RatePerAccount)
	}
	if strings.ContainsAny(f.Hostname, " \r\n") {
		bad("hostname", "must be a host name, not %q", f.Hostname)
	}
	return errs
}

func (f *SMTPFront) resolvePaths(dir string) {
	for _, p := range []*string{&f.CertFile, &f.KeyFile, &f.CredentialsFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}
