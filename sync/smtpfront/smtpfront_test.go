package smtpfront

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/outbound"
)

func TestCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# CRM logins\n\nsales:s3cret:with colon\nsupport: spaced \n")
	c, err := LoadCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		account, secret string
		want            bool
	}{
		{"sales", "s3cret:with colon", true},
		{"sales", "s3cret", false},
		{"support", " spaced ", true},
		{"support", "spaced", false},
		{"nobody", "", false},
	} {
		if got, err := c.Check(tt.account, tt.secret); got != tt.want || err != nil {
			t.Errorf("Check(%q, %q) = %v, %v, want %v", tt.account, tt.secret, got, err, tt.want)
		}
	}
	// A rotated file is read again; a broken edit keeps the last good one
	// and says why, without the secret.
	time.Sleep(10 * time.Millisecond)
	write("sales:new\n")
	if ok, _ := c.Check("sales", "new"); !ok {
		t.Errorf("the rotated secret is not accepted")
	}
	time.Sleep(10 * time.Millisecond)
	write("sales:new\nbroken line\n")
	ok, err := c.Check("sales", "new")
	if !ok || err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("after a broken edit Check = %v, %v; want the last good file and an error naming line 2", ok, err)
	}
}

func TestParseCredentialsErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "names no account",
		"# only a comment\n": "names no account",
		"sales\n":            "line 1: want account-id:secret",
		"sales:\n":           "line 1: account sales has an empty secret",
		"a:x\na:y\n":         "line 2: account a is listed twice",
	} {
		_, err := parseCredentials([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseCredentials(%q) = %v, want %q", in, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), ":x") || strings.Contains(err.Error(), "y\n")) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	l := newLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.allow("sales"); !ok {
			t.Fatalf("message %d refused within the rate", i+1)
		}
	}
	ok, wait := l.allow("sales")
	if ok || wait != 20*time.Second {
		t.Fatalf("4th = %v, wait %v; want refused, 20s", ok, wait)
	}
	if ok, _ := l.allow("support"); !ok {
		t.Fatalf("another account is limited by sales' rate")
	}
	now = now.Add(20 * time.Second)
	if ok, _ := l.allow("sales"); !ok {
		t.Fatalf("refused after a token refilled")
	}
}

func TestReplyCodes(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		code int
	}{
		{"sent, copy failed", &outbound.SentCopyError{MessageID: "m", Err: errors.New("imap down")}, 250},
		{"bad recipient", &outbound.FieldError{Field: "to[0]", Reason: "not an address"}, 550},
		{"bad message", &outbound.FieldError{Field: "raw", Reason: "no From"}, 554},
		{"too large", outbound.ErrTooLarge, 552},
		{"cannot send", outbound.ErrCannotSend, 554},
		{"outcome unknown", &outbound.OutcomeUnknownError{MessageID: "m"}, 554},
		{"in progress", outbound.ErrInProgress, 451},
		{"closing", outbound.ErrClosed, 421},
		{"upstream 4xx", &outbound.SMTPError{Server: "s", Stage: "rcpt", Code: 452, Reply: "later"}, 451},
		{"upstream down", &outbound.SMTPError{Server: "s", Stage: "connect", Err: errors.New("refused")}, 451},
		{"upstream 5xx", &outbound.SMTPError{Server: "s", Stage: "rcpt", Code: 550, Reply: "no such user"}, 554},
		{"imap", &outbound.IMAPError{Err: errors.New("down")}, 451},
		{"other", errors.New("disk full"), 451},
	} {
		if got := reply(tt.err).Code; got != tt.code {
			t.Errorf("%s: reply code %d, want %d", tt.name, got, tt.code)
		}
	}
	if r := reply(errors.New("disk full")); strings.Contains(r.Message, "disk") {
		t.Errorf("an internal error's text reaches the client: %q", r.Message)
	}
}
