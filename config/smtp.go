package config

import (
	"fmt"
	"net"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"
)

// SMTP configures submission for mail composed in the CRM (issue 5): the
// send API (POST /v1/accounts/{id}/send) hands a message to this server, then
// files a copy in the account's Sent folder. An account without smtp.host
// cannot send.
type SMTP struct {
	// Host is the submission server; empty means the account cannot send.
	Host string `mapstructure:"host"`
	// Port defaults to 465 for implicit TLS and 587 otherwise (RFC 8314 §3.3,
	// RFC 6409 §3.1).
	Port int `mapstructure:"port"`
	// TLS is implicit (default), starttls, or none (loopback hosts only).
	TLS    string `mapstructure:"tls"`
	CAFile string `mapstructure:"ca_file"`
	// Username defaults to the account's IMAP username.
	Username string `mapstructure:"username"`
	// At most one secret source; none means the account's own IMAP password.
	PasswordEnv        string `mapstructure:"password_env"`
	PasswordFile       string `mapstructure:"password_file"`
	PasswordCredential string `mapstructure:"password_credential"`
	// From is the address mail is sent from when a request names none;
	// empty means the SMTP or IMAP username when it is an email address.
	From string `mapstructure:"from"`
	// AppendToSent files a \Seen copy in the Sent folder after submission.
	// Default true; set false for servers that save sent mail themselves
	// (Gmail, Microsoft 365), or every message would be there twice.
	AppendToSent *bool `mapstructure:"append_to_sent"`
	// SentFolder names the mailbox for the copy; empty means the folder
	// with the \Sent SPECIAL-USE attribute (RFC 6154), else "Sent".
	SentFolder string `mapstructure:"sent_folder"`
}

// Default SMTP ports (RFC 8314 §3.3 for implicit TLS, RFC 6409 for submission).
const (
	DefaultSMTPSPort      = 465
	DefaultSubmissionPort = 587
)

// applyDefaults fills the fields an admin may leave out. It runs from
// validate because Config.applyDefaults predates this section; validate is
// always called, through Validate, on the Config that Parse returns.
func (s *SMTP) applyDefaults() {
	if s.Host == "" {
		return
	}
	if s.TLS == "" {
		s.TLS = "implicit"
	}
	if s.Port == 0 {
		s.Port = DefaultSubmissionPort
		if s.TLS == "implicit" {
			s.Port = DefaultSMTPSPort
		}
	}
}

// isZero reports whether no smtp key was set at all.
func (s *SMTP) isZero() bool {
	return s.Host == "" && s.Port == 0 && s.TLS == "" && s.CAFile == "" && s.Username == "" &&
		s.PasswordEnv == "" && s.PasswordFile == "" && s.PasswordCredential == "" && s.From == "" &&
		s.AppendToSent == nil && s.SentFolder == ""
}

func (s *SMTP) validate(path string) []error {
	s.applyDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, key, fmt.Sprintf(format, args...)))
	}
	if s.Host == "" {
		if !s.isZero() {
			// A port or password without a host is a half-finished section;
			// saying so beats a send API that answers "cannot send".
			bad("host", "is empty but other smtp settings are set (set host, or remove the smtp section)")
		}
		return errs
	}
	if net.ParseIP(strings.Trim(s.Host, "[]")) == nil && strings.ContainsAny(s.Host, " /:[]") {
		bad("host", "must be a host name or IP address, not %q", s.Host)
	}
	if s.Port < 1 || s.Port > 65535 {
		bad("port", "must be 1-65535, not %d", s.Port)
	}
	switch s.TLS {
	case "implicit", "starttls":
	case "none":
		if !IsLoopback(s.Host) {
			bad("tls", "none is refused for %s: passwords and mail would cross the network in clear (allowed only for loopback hosts)", s.Host)
		}
	default:
		bad("tls", "must be implicit, starttls or none, not %q", s.TLS)
	}
	n := 0
	for _, v := range []string{s.PasswordEnv, s.PasswordFile, s.PasswordCredential} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		bad("password_env", "set only one of password_env, password_file, password_credential")
	}
	if s.From != "" {
		if a, err := mail.ParseAddress(s.From); err != nil || !strings.Contains(a.Address, "@") {
			bad("from", "must be an email address, not %q", s.From)
		}
	}
	if s.SentFolder != "" && strings.TrimSpace(s.SentFolder) == "" {
		bad("sent_folder", "is only white space")
	}
	return errs
}

// resolvePaths makes ca_file and password_file relative to dir, the config
// file's directory, as Config.resolvePaths does for the account's own paths
// (which must call it for each account).
func (s *SMTP) resolvePaths(dir string) {
	for _, p := range []*string{&s.CAFile, &s.PasswordFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// CanSend reports whether the account has a submission server.
func (a *Account) CanSend() bool { return a.SMTP.Host != "" }

// SMTPAddr is the submission server's host:port.
func (a *Account) SMTPAddr() string {
	host := strings.TrimSuffix(strings.TrimPrefix(a.SMTP.Host, "["), "]")
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(a.SMTP.Port)
}

// SMTPUsername is the name the account logs in to SMTP with.
func (a *Account) SMTPUsername() string {
	if a.SMTP.Username != "" {
		return a.SMTP.Username
	}
	return a.Username
}

// SMTPPassword reads the SMTP secret: from the smtp section's source if it
// names one, else the account's own. The error names the source, never the
// value.
func (a *Account) SMTPPassword() (string, error) {
	s := &a.SMTP
	if s.PasswordEnv != "" || s.PasswordFile != "" || s.PasswordCredential != "" {
		return readSecret(a.Path()+".smtp", s.PasswordEnv, s.PasswordFile, s.PasswordCredential)
	}
	return a.Password()
}

// AppendToSent reports whether a copy of sent mail is filed in the Sent
// folder (the default).
func (a *Account) AppendToSent() bool { return a.SMTP.AppendToSent == nil || *a.SMTP.AppendToSent }

// FromAddress is the address mail is sent from when a request names none:
// smtp.from, else the SMTP or IMAP username if it is an email address, else
// "" (the request must then name one).
func (a *Account) FromAddress() string {
	if a.SMTP.From != "" {
		return a.SMTP.From
	}
	for _, u := range []string{a.SMTPUsername(), a.Username} {
		if addr, err := mail.ParseAddress(u); err == nil && strings.Contains(addr.Address, "@") {
			return addr.Address
		}
	}
	return ""
}
