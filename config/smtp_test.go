package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withSMTP returns the good config with an smtp section (indented YAML
// lines, without the "smtp:" key) added to account sales.
func withSMTP(lines string) string {
	return strings.Replace(good, "    folders:", "    smtp:\n"+lines+"    folders:", 1)
}

func TestSMTPDefaults(t *testing.T) {
	tests := []struct {
		name, smtp string
		port       int
		tls        string
	}{
		{"implicit", "      host: smtp.example.com\n", 465, "implicit"},
		{"starttls", "      host: smtp.example.com\n      tls: starttls\n", 587, "starttls"},
		{"none on loopback", "      host: 127.0.0.1\n      tls: none\n", 587, "none"},
		{"explicit port", "      host: smtp.example.com\n      port: 2525\n", 2525, "implicit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(strings.NewReader(withSMTP(tt.smtp)))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			a, _ := cfg.Account("sales")
			if got, want := a.SMTP.Port, tt.port; got != want {
				t.Errorf("smtp.port = %d, want %d", got, want)
			}
			if got, want := a.SMTP.TLS, tt.tls; got != want {
				t.Errorf("smtp.tls = %q, want %q", got, want)
			}
			if !a.CanSend() || !a.AppendToSent() {
				t.Errorf("CanSend() = %v, AppendToSent() = %v, want both true", a.CanSend(), a.AppendToSent())
			}
			if got, want := a.SMTPUsername(), "sales@example.com"; got != want {
				t.Errorf("SMTPUsername() = %q, want %q (the IMAP username)", got, want)
			}
			if got, want := a.FromAddress(), "sales@example.com"; got != want {
				t.Errorf("FromAddress() = %q, want %q", got, want)
			}
		})
	}
}

func TestSMTPAbsentMeansCannotSend(t *testing.T) {
	cfg, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	a, _ := cfg.Account("sales")
	if a.CanSend() {
		t.Fatal("CanSend() = true for an account without smtp.host")
	}
	if a.SMTP.Port != 0 {
		t.Errorf("smtp.port = %d for an account that cannot send, want 0 (no defaults)", a.SMTP.Port)
	}
}

func TestSMTPErrorsNamePath(t *testing.T) {
	tests := []struct {
		name, smtp, want string
	}{
		{"port without host", "      port: 587\n", "accounts[sales].smtp.host: is empty but other smtp settings are set"},
		{"tls none remote", "      host: smtp.example.com\n      tls: none\n", "accounts[sales].smtp.tls: none is refused for smtp.example.com"},
		{"tls unknown", "      host: smtp.example.com\n      tls: ssl\n", `accounts[sales].smtp.tls: must be implicit, starttls or none, not "ssl"`},
		{"port range", "      host: smtp.example.com\n      port: 70000\n", "accounts[sales].smtp.port: must be 1-65535"},
		{"two secrets", "      host: smtp.example.com\n      password_env: A\n      password_file: /b\n", "accounts[sales].smtp.password_env: set only one"},
		{"bad from", "      host: smtp.example.com\n      from: not-an-address\n", `accounts[sales].smtp.from: must be an email address`},
		{"bad host", "      host: smtp.example.com:465\n", "accounts[sales].smtp.host: must be a host name"},
		{"unknown key", "      hots: smtp.example.com\n", "accounts[sales].smtp.hots: unknown key"},
		{"append_to_sent type", "      host: smtp.example.com\n      append_to_sent: maybe\n", "accounts[sales].smtp.append_to_sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(withSMTP(tt.smtp)))
			if err == nil {
				t.Fatalf("Parse() succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse() error = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSMTPOverridesAndAppendToSentFalse(t *testing.T) {
	cfg, err := Parse(strings.NewReader(withSMTP("      host: smtp.gmail.example\n      username: relay\n      from: Sales <sales@example.com>\n" +
		"      append_to_sent: false\n      sent_folder: \"[Gmail]/Sent Mail\"\n      password_env: MAILSYNC_TEST_SMTP_PW\n")))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	a, _ := cfg.Account("sales")
	if a.AppendToSent() {
		t.Error("AppendToSent() = true with append_to_sent: false")
	}
	if got, want := a.SMTPUsername(), "relay"; got != want {
		t.Errorf("SMTPUsername() = %q, want %q", got, want)
	}
	if got, want := a.FromAddress(), "Sales <sales@example.com>"; got != want {
		t.Errorf("FromAddress() = %q, want %q", got, want)
	}
	if got, want := a.SMTP.SentFolder, "[Gmail]/Sent Mail"; got != want {
		t.Errorf("sent_folder = %q, want %q", got, want)
	}
	if got, want := a.SMTPAddr(), "smtp.gmail.example:465"; got != want {
		t.Errorf("SMTPAddr() = %q, want %q", got, want)
	}
	t.Setenv("MAILSYNC_TEST_SMTP_PW", "smtp-secret")
	t.Setenv("SALES_IMAP_PASSWORD", "imap-secret")
	if pw, err := a.SMTPPassword(); err != nil || pw != "smtp-secret" {
		t.Errorf("SMTPPassword() = %q, %v, want the smtp section's secret", pw, err)
	}
}

func TestSMTPPasswordFallsBackToAccount(t *testing.T) {
	cfg, err := Parse(strings.NewReader(withSMTP("      host: smtp.example.com\n")))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	a, _ := cfg.Account("sales")
	t.Setenv("SALES_IMAP_PASSWORD", "imap-secret")
	if pw, err := a.SMTPPassword(); err != nil || pw != "imap-secret" {
		t.Errorf("SMTPPassword() = %q, %v, want the account's secret", pw, err)
	}
}

func TestSMTPPasswordErrorNamesSourceNotValue(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Parse(strings.NewReader(withSMTP("      host: smtp.example.com\n      password_file: " + filepath.Join(dir, "missing") + "\n")))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	a, _ := cfg.Account("sales")
	_, err = a.SMTPPassword()
	if err == nil || !strings.Contains(err.Error(), "accounts[sales].smtp.password_file") {
		t.Fatalf("SMTPPassword() error = %v, want it to name accounts[sales].smtp.password_file", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "missing"), []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := a.SMTPPassword(); err != nil || pw != "hunter2" {
		t.Fatalf("SMTPPassword() = %q, %v, want the file's first line", pw, err)
	}
}

func TestSMTPFromAddressNeedsEmailUsername(t *testing.T) {
	a := Account{ID: "x", Username: "alice", SMTP: SMTP{Host: "smtp.example.com"}}
	if got := a.FromAddress(); got != "" {
		t.Errorf("FromAddress() = %q for username alice, want empty", got)
	}
	a.SMTP.Username = "alice@example.com"
	if got, want := a.FromAddress(), "alice@example.com"; got != want {
		t.Errorf("FromAddress() = %q, want %q", got, want)
	}
}

func TestResolveSMTPPaths(t *testing.T) {
	cfg, err := Parse(strings.NewReader(withSMTP("      host: smtp.example.com\n      ca_file: ca.pem\n      password_file: /abs/pw\n")))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	a, _ := cfg.Account("sales")
	a.SMTP.resolvePaths("/etc/mailsync")
	if got, want := a.SMTP.CAFile, "/etc/mailsync/ca.pem"; got != want {
		t.Errorf("ca_file = %q, want %q", got, want)
	}
	if got, want := a.SMTP.PasswordFile, "/abs/pw"; got != want {
		t.Errorf("password_file = %q, want %q (absolute paths stay)", got, want)
	}
}

func TestSMTPAddrIPv6(t *testing.T) {
	a := Account{SMTP: SMTP{Host: "::1", Port: 587}}
	if got, want := a.SMTPAddr(), "[::1]:587"; got != want {
		t.Errorf("SMTPAddr() = %q, want %q", got, want)
	}
}
