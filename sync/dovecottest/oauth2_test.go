package dovecottest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/oauth/oauthtest"
)

// rawAuth runs one AUTHENTICATE exchange over a raw connection and returns
// the server lines after the command: continuation lines are answered with
// reply, so the test sees exactly what Dovecot sends.
func rawAuth(t *testing.T, addr, mech, ir, reply string) []string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	fmt.Fprintf(conn, "a1 AUTHENTICATE %s %s\r\n", mech, base64.StdEncoding.EncodeToString([]byte(ir)))
	var lines []string
	for range 10 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read after AUTHENTICATE: %v (so far %q)", err, lines)
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		switch {
		case strings.HasPrefix(line, "+"):
			fmt.Fprintf(conn, "%s\r\n", reply)
		case strings.HasPrefix(line, "a1 "):
			return lines
		}
	}
	t.Fatalf("no tagged answer: %q", lines)
	return nil
}

func TestOAuth2Mechanisms(t *testing.T) {
	idp := oauthtest.Start(t, oauthtest.Options{})
	s := Start(t, WithOAuth2(idp.IntrospectionURL()))
	good := idp.IssueAccessToken(DefaultUser, time.Hour)
	other := idp.IssueAccessToken("bob", time.Hour)
	xo := func(user, tok string) string { return "user=" + user + "\x01auth=Bearer " + tok + "\x01\x01" }
	ob := func(user, tok string) string { return "n,a=" + user + ",\x01auth=Bearer " + tok + "\x01\x01" }
	tests := []struct {
		name, mech, ir, reply, wantPrefix string
	}{
		{"xoauth2 good", "XOAUTH2", xo(DefaultUser, good), "", "a1 OK"},
		{"oauthbearer good", "OAUTHBEARER", ob(DefaultUser, good), "", "a1 OK"},
		{"xoauth2 unknown token", "XOAUTH2", xo(DefaultUser, "at_bogus"), "", "a1 NO"},
		// go-imap beta.8 sends an empty SASL continuation as "=" (go-imap
		// issue #760), which Dovecot answers with BAD; mailsync's XOAUTH2
		// client acknowledges the error challenge with %x01 instead.
		{"xoauth2 unknown token, '=' reply", "XOAUTH2", xo(DefaultUser, "at_bogus"), "=", "a1 BAD"},
		{"xoauth2 unknown token, %x01 reply", "XOAUTH2", xo(DefaultUser, "at_bogus"), "AQ==", "a1 NO [AUTHENTICATIONFAILED]"},
		{"xoauth2 other user's token", "XOAUTH2", xo(DefaultUser, other), "", "a1 NO"},
		{"oauthbearer unknown token", "OAUTHBEARER", ob(DefaultUser, "at_bogus"), "AQ==", "a1 NO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := rawAuth(t, s.Addr(), tt.mech, tt.ir, tt.reply)
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, tt.wantPrefix) {
				t.Fatalf("answer = %q, want %s", lines, tt.wantPrefix)
			}
		})
	}
	if idp.Introspections() == 0 {
		t.Fatal("Dovecot never called the introspection endpoint")
	}
	// Password logins still work next to OAuth2.
	s.Dial(t, DefaultUser)
}
