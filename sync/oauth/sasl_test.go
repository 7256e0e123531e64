package oauth

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

func TestXOAuth2Message(t *testing.T) {
	tests := []struct {
		name, user, token string
		want              string
		wantErr           error
	}{
		{"plain", "alice@example.com", "ya29.tok", "user=alice@example.com\x01auth=Bearer ya29.tok\x01\x01", nil},
		{"separator in token", "alice", "a\x01auth=Bearer evil", "", ErrBadCredentialChars},
		{"newline in user", "alice\r\nA2 LOGOUT", "t", "", ErrBadCredentialChars},
		{"NUL", "alice", "t\x00", "", ErrBadCredentialChars},
		{"empty token", "alice", "", "", ErrBadCredentialChars},
		{"empty user", "", "t", "", ErrBadCredentialChars},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := XOAuth2Message(tt.user, tt.token)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("XOAuth2Message() error = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Fatalf("XOAuth2Message() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestXOAuth2ClientChallenge(t *testing.T) {
	c := NewXOAuth2Client("alice", "tok").(*xoauth2Client)
	mech, ir, err := c.Start()
	if err != nil || mech != XOAuth2 || !bytes.HasSuffix(ir, []byte("\x01\x01")) {
		t.Fatalf("Start() = %q, %q, %v", mech, ir, err)
	}
	if c.Refused() != nil {
		t.Fatal("Refused() before any challenge")
	}
	resp, err := c.Next([]byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`))
	if err != nil {
		t.Fatalf("Next() error = %v", err)
	}
	if got, want := string(resp), "\x01"; got != want {
		t.Fatalf("Next() = %q, want %q (acknowledge so the server sends its tagged NO)", got, want)
	}
	r := c.Refused()
	if r == nil || r.Status != "401" || r.Scope != "https://mail.google.com/" || r.Mechanism != XOAuth2 {
		t.Fatalf("Refused() = %+v", r)
	}
	if _, err := c.Next([]byte(`{}`)); err == nil {
		t.Fatal("second challenge accepted; want an error that aborts")
	}
	if strings.Contains(c.String(), "tok") {
		t.Fatalf("String() = %q shows the token", c.String())
	}
}

func TestOAuthBearerClient(t *testing.T) {
	c := NewOAuthBearerClient("alice@example.com", "tok", "imap.example.com", 993).(*oauthBearerClient)
	mech, ir, err := c.Start()
	if err != nil || mech != sasl.OAuthBearer {
		t.Fatalf("Start() = %q, %v", mech, err)
	}
	if got, want := string(ir), "n,a=alice@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer tok\x01\x01"; got != want {
		t.Fatalf("Start() ir = %q, want %q", got, want)
	}
	resp, err := c.Next([]byte(`{"status":"invalid_token"}`))
	if err != nil || string(resp) != "\x01" {
		t.Fatalf("Next() = %q, %v; want %%x01 (RFC 7628 §3.2.3)", resp, err)
	}
	if r := c.Refused(); r == nil || r.Status != "invalid_token" {
		t.Fatalf("Refused() = %+v", r)
	}
	for _, user := range []string{"a,b", "a=b", "a\x01", ""} {
		if _, _, err := NewOAuthBearerClient(user, "tok", "", 0).Start(); !errors.Is(err, ErrBadCredentialChars) {
			t.Errorf("Start() with username %q: error = %v, want ErrBadCredentialChars", user, err)
		}
	}
}

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		in, status string
	}{
		{`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`, "400"},
		{`not json`, "unparsed"},
		{``, "unparsed"},
		{`{"status":"a\u0000b\nc"}`, "abc"},
		{`{"status":"` + strings.Repeat("x", 5000) + `"}`, "unparsed"},
	}
	for _, tt := range tests {
		if got := ParseChallenge(XOAuth2, []byte(tt.in)); got.Status != tt.status {
			t.Errorf("ParseChallenge(%.20q).Status = %q, want %q", tt.in, got.Status, tt.status)
		}
	}
}

// FuzzXOAuth2Exchange checks the builder and the challenge handling on any
// input: a message is built only from framing-safe values and splits back
// into exactly them; a challenge always gets %x01 once, then an error.
func FuzzXOAuth2Exchange(f *testing.F) {
	f.Add("alice@example.com", "ya29.a0AfH6SM", []byte(`{"status":"401","schemes":"bearer","scope":"mail"}`))
	f.Add("a\x01b", "t", []byte(`{`))
	f.Add("user", "tok\r\n", []byte{})
	f.Fuzz(func(t *testing.T, user, token string, challenge []byte) {
		msg, err := XOAuth2Message(user, token)
		if err != nil {
			if !badChars(user) && !badChars(token) && user != "" && token != "" {
				t.Fatalf("XOAuth2Message(%q, %q) refused clean values: %v", user, token, err)
			}
		} else {
			parts := strings.Split(string(msg), "\x01")
			if len(parts) != 4 || parts[0] != "user="+user || parts[1] != "auth=Bearer "+token || parts[2] != "" || parts[3] != "" {
				t.Fatalf("XOAuth2Message(%q, %q) = %q does not split back", user, token, msg)
			}
		}
		c := NewXOAuth2Client(user, token).(*xoauth2Client)
		resp, err := c.Next(challenge)
		if err != nil || string(resp) != "\x01" {
			t.Fatalf("Next() = %q, %v", resp, err)
		}
		r := c.Refused()
		for _, s := range []string{r.Status, r.Scope, r.Schemes} {
			if len(s) > 203 || strings.ContainsAny(s, "\x00\r\n") {
				t.Fatalf("challenge field %q not cleaned", s)
			}
		}
		if _, err := c.Next(challenge); err == nil {
			t.Fatal("second challenge accepted")
		}
	})
}

// FuzzParseChallenge checks that no challenge panics or yields fields
// unfit for a log line.
func FuzzParseChallenge(f *testing.F) {
	f.Add([]byte(`{"status":"invalid_token","scope":"x"}`))
	f.Add([]byte(`{"status":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := ParseChallenge(XOAuth2, b)
		if e == nil || e.Status == "" && len(b) == 0 {
			t.Fatalf("ParseChallenge(%q) = %+v", b, e)
		}
		for _, s := range []string{e.Status, e.Scope, e.Schemes, e.Error()} {
			if strings.ContainsAny(s, "\x00\r\n") {
				t.Fatalf("field %q holds control characters", s)
			}
		}
	})
}
