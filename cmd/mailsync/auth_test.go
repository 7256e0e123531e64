package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/oauth"
	"github.com/mailsync/mailsync/sync/oauth/oauthtest"
)

// writeAuthConfig writes a config with two oauth2 accounts on idp: sales
// (refresh_token grant) and app (client credentials), and a token key.
func writeAuthConfig(t *testing.T, idp *oauthtest.IdP) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.key"), []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`state: state.db
tokens: {key_file: token.key}
sink: {type: jsonl, jsonl: {path: messages.jsonl}}
accounts:
  - id: sales
    host: 127.0.0.1
    username: alice@acme.example
    auth: oauth2
    oauth2: {provider: generic, client_id: %[1]s, token_url: %[2]s/token, device_url: %[2]s/device}
  - id: app
    host: 127.0.0.1
    username: shared@acme.example
    auth: oauth2
    oauth2: {provider: generic, grant: client_credentials, client_id: %[1]s, client_secret_file: app.secret, token_url: %[2]s/token}
`, idp.ClientID(), idp.URL())
	path = filepath.Join(dir, "mailsync.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.secret"), []byte("unused\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dir
}

// runAuth runs the CLI in-process with ctx bounded to a minute.
func runAuth(t *testing.T, out *syncBuffer, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return (&Main{Stdout: out, Stderr: out}).Run(ctx, args)
}

func authStatusJSON(t *testing.T, cfgPath string) map[string]oauth.TokenStatus {
	t.Helper()
	out := &syncBuffer{}
	if code := runAuth(t, out, "auth", "status", "--json", "--config", cfgPath); code != 0 {
		t.Fatalf("auth status exit %d: %s", code, out)
	}
	var list []oauth.TokenStatus
	if err := json.Unmarshal([]byte(out.String()), &list); err != nil {
		t.Fatalf("auth status --json: %v\n%s", err, out)
	}
	m := map[string]oauth.TokenStatus{}
	for _, s := range list {
		m[s.Account] = s
	}
	return m
}

func TestAuthLoginDeviceThenStatus(t *testing.T) {
	idp := oauthtest.Start(t, oauthtest.Options{})
	cfgPath, dir := writeAuthConfig(t, idp)
	if got := authStatusJSON(t, cfgPath)["sales"].State; got != oauth.StateMissing {
		t.Fatalf("before login: state = %q, want %q", got, oauth.StateMissing)
	}
	idp.ApproveAs("alice@acme.example")
	out := &syncBuffer{}
	if code := runAuth(t, out, "auth", "login", "--account", "sales", "--config", cfgPath); code != 0 {
		t.Fatalf("auth login exit %d:\n%s", code, out)
	}
	for _, want := range []string{idp.URL() + "/activate", "enter the code", "Signed in: the token for account sales is stored"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("login output lacks %q:\n%s", want, out)
		}
	}
	s := authStatusJSON(t, cfgPath)
	if got := s["sales"]; got.State != oauth.StateOK || got.AccessExpiry.Before(time.Now()) || got.RefreshIssued.IsZero() || got.LastRefresh.IsZero() {
		t.Fatalf("after login: status = %+v", got)
	}
	if got := s["app"]; got.State != oauth.StateOK || got.Grant != "client_credentials" {
		t.Fatalf("app status = %+v", got)
	}
	text := &syncBuffer{}
	if code := runAuth(t, text, "auth", "status", "--config", cfgPath); code != 0 || !strings.Contains(text.String(), "sales    ok") {
		t.Fatalf("auth status exit %d:\n%s", code, text)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range idp.Secrets() {
		for name, b := range map[string][]byte{"login output": []byte(out.String()), "status": []byte(text.String()), "state file": raw} {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("%s contains an issued token", name)
			}
		}
	}
}

func TestAuthLoginWaitsForTheDaemon(t *testing.T) {
	idp := oauthtest.Start(t, oauthtest.Options{})
	cfgPath, dir := writeAuthConfig(t, idp)
	// Stand in for a running daemon: hold the state file.
	held, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if code := runAuth(t, &syncBuffer{}, "auth", "status", "--config", cfgPath); code == 0 {
		t.Fatal("auth status succeeded while the state file was held")
	}
	rt := filepath.Join(dir, "refresh.token")
	if err := os.WriteFile(rt, []byte(idp.IssueRefreshToken("alice@acme.example")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runAuth(t, out, "auth", "login", "--account", "sales", "--config", cfgPath, "--refresh-token-file", rt, "--wait", "30s")
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "is in use by mailsync") {
		if time.Now().After(deadline) {
			t.Fatalf("login did not say it waits for the state file:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "Note: mailsync is running") {
		t.Fatalf("login did not warn before signing in:\n%s", out)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("auth login exit %d:\n%s", code, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("login did not finish after the state file was released")
	}
	if got := authStatusJSON(t, cfgPath)["sales"].State; got != oauth.StateOK {
		t.Fatalf("state = %q, want ok", got)
	}
}

func TestAuthLoginGivesUpWhenTheDaemonStays(t *testing.T) {
	idp := oauthtest.Start(t, oauthtest.Options{})
	cfgPath, dir := writeAuthConfig(t, idp)
	held, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	rt := filepath.Join(dir, "refresh.token")
	if err := os.WriteFile(rt, []byte(idp.IssueRefreshToken("alice@acme.example")), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	if code := runAuth(t, out, "auth", "login", "--account", "sales", "--config", cfgPath, "--refresh-token-file", rt, "--wait", "1s"); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out.String(), "the token was NOT saved") {
		t.Fatalf("output does not say the token was not saved:\n%s", out)
	}
}

func TestAuthLoginErrors(t *testing.T) {
	idp := oauthtest.Start(t, oauthtest.Options{})
	cfgPath, dir := writeAuthConfig(t, idp)
	revoked := filepath.Join(dir, "revoked.token")
	tok := idp.IssueRefreshToken("alice@acme.example")
	idp.RevokeRefreshTokens("alice@acme.example")
	if err := os.WriteFile(revoked, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown account", []string{"--account", "nope"}, 2, `no account "nope"`},
		{"app-only", []string{"--account", "app"}, 2, "needs no login"},
		{"revoked import", []string{"--account", "sales", "--refresh-token-file", revoked}, 1, "the refresh token does not work: token endpoint answered HTTP 400 invalid_grant"},
		{"no account flag", nil, 2, `give --account ID (a mailbox) or --sink (the CRM)`}, // usage: exit 2
		{"both", []string{"--account", "sales", "--sink"}, 2, "give --account or --sink, not both"},
		{"sink without sign-in", []string{"--sink"}, 2, "sink jsonl has no OAuth2 sign-in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{}
			args := append([]string{"auth", "login", "--config", cfgPath}, tt.args...)
			if code := runAuth(t, out, args...); code != tt.code || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit %d and %q", code, out, tt.code, tt.want)
			}
			if strings.Contains(out.String(), tok) {
				t.Fatal("output shows the refresh token")
			}
		})
	}
}
