package config

import (
	"strings"
	"testing"
)

func withFront(lines string) string { return good + "smtp_front:\n" + lines }

func TestSMTPFrontDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader(withFront("  listen: 0.0.0.0:2587\n  cert_file: /c.pem\n  key_file: /k.pem\n  credentials_file: /creds\n")))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.SMTPFront
	if !f.Enabled() || f.TLS != "starttls" || f.MaxMessageBytes != DefaultFrontMaxMessageBytes || f.MaxRecipients != DefaultFrontMaxRecipients || f.RatePerAccount != DefaultFrontRate {
		t.Fatalf("defaults = %+v", f)
	}
	cfg, err = Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMTPFront.Enabled() {
		t.Fatalf("front enabled without a smtp_front section")
	}
}

func TestSMTPFrontErrorsNameKey(t *testing.T) {
	const creds = "  credentials_file: /creds\n"
	tests := []struct{ name, front, want string }{
		{"no listen", "  tls: none\n", "smtp_front.listen: is empty"},
		{"bad listen", "  listen: nope\n  tls: none\n" + creds, "smtp_front.listen: not a host:port"},
		{"none remote", "  listen: 0.0.0.0:2587\n  tls: none\n" + creds, "smtp_front.tls: none is refused"},
		{"none with cert", "  listen: 127.0.0.1:2587\n  tls: none\n  cert_file: /c\n" + creds, "smtp_front.tls: is none but cert_file"},
		{"starttls without cert", "  listen: 127.0.0.1:2587\n" + creds, "smtp_front.cert_file: is required with tls starttls"},
		{"implicit without key", "  listen: 127.0.0.1:2465\n  tls: implicit\n  cert_file: /c\n" + creds, "smtp_front.key_file: is required with tls implicit"},
		{"bad tls", "  listen: 127.0.0.1:2587\n  tls: ssl\n" + creds, `smtp_front.tls: must be starttls, implicit or none, not "ssl"`},
		{"no credentials", "  listen: 127.0.0.1:2587\n  tls: none\n", "smtp_front.credentials_file: is required"},
		{"size", "  listen: 127.0.0.1:2587\n  tls: none\n  max_message_bytes: 100\n" + creds, "smtp_front.max_message_bytes: must be between 1024"},
		{"recipients", "  listen: 127.0.0.1:2587\n  tls: none\n  max_recipients: 501\n" + creds, "smtp_front.max_recipients: must be between 1 and 500"},
		{"rate", "  listen: 127.0.0.1:2587\n  tls: none\n  rate_per_account: -1\n" + creds, "smtp_front.rate_per_account: must be at least 1"},
		{"unknown key", "  listen: 127.0.0.1:2587\n  tls: none\n  pasword: x\n" + creds, "smtp_front.pasword"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(withFront(tt.front)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSMTPFrontPathsRelativeToConfig(t *testing.T) {
	cfg := &Config{SMTPFront: SMTPFront{CertFile: "c.pem", KeyFile: "/abs/k.pem", CredentialsFile: "creds"}}
	cfg.SMTPFront.resolvePaths("/etc/mailsync")
	if f := cfg.SMTPFront; f.CertFile != "/etc/mailsync/c.pem" || f.KeyFile != "/abs/k.pem" || f.CredentialsFile != "/etc/mailsync/creds" {
		t.Fatalf("resolved = %+v", f)
	}
}
