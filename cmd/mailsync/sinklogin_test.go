package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink/hubspot/hubspottest"
	"github.com/mailsync/mailsync/sync/sink/salesforce/salesforcetest"
)

// loginSinkThroughBinary runs `mailsync auth login --sink` and plays the
// browser: it opens the URL the command prints, which signs in and
// redirects to the command's loopback listener. It returns the output.
func loginSinkThroughBinary(t *testing.T, bin, cfg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "auth", "login", "--sink", "--config", cfg)
	var out bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var browser chan error // set once the URL is opened
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if u := strings.TrimSpace(line); strings.HasPrefix(u, "http://") && browser == nil {
			browser = make(chan error, 1)
			go func() {
				resp, err := http.Get(u) // follows the redirect to the listener
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("the redirect answered %s", resp.Status)
					}
				}
				browser <- err
			}()
		}
	}
	if browser == nil {
		t.Fatalf("auth login --sink printed no URL:\n%s", out.String())
	}
	if err := <-browser; err != nil {
		t.Errorf("the browser: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("auth login --sink: %v\n%s", err, out.String())
	}
	return out.String()
}

func liveStatus(t *testing.T, bin, cfg string) control.Status {
	t.Helper()
	b, err := exec.Command(bin, "status", "--config", cfg, "--json").Output()
	var st control.Status
	if err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("status: %v\n%s", err, b)
	}
	return st
}

// TestHubSpotLoginThroughBinary: an OAuth app signed in with `mailsync
// auth login --sink` (the browser sign-in against the HubSpot fake, the
// code exchange held to its spec): check refuses before the login and
// passes after; the grant is stored encrypted; the daemon delivers with
// it; a rotated refresh token survives a restart; a revoked one shows as
// "re-authorization needed" in status and in auth status.
func TestHubSpotLoginThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs Dovecot; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", [][]byte{hubspotMessage(0), hubspotMessage(4), hubspotMessage(8)})
	fake := hubspottest.New(t, hubspottest.Options{OAuth: true})
	acme := fake.AddCompany("Acme Customer GmbH", "acme-customer.example")
	fake.AddContact("jane@acme-customer.example", "Jane", "Doe", acme)
	signIn := fake.StartSignIn(t)

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "client.secret"), []byte(hubspottest.ClientSecret), 0o600)
	os.WriteFile(filepath.Join(dir, "imap.password"), []byte(dovecottest.DefaultPassword), 0o600)
	os.WriteFile(filepath.Join(dir, "token.key"), []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600)
	cfg := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state: state.db
tokens: {key_file: token.key}
sink:
  type: hubspot
  hubspot:
    base_url: %q
    search_lag: 1s
    oauth2: {client_id: %s, client_secret_file: %q, authorize_url: %q, redirect_url: "http://127.0.0.1:%d/callback"}
log: {level: info}
sync: {retry_min: 200ms, retry_max: 1s, batch_size: 20, shutdown_grace: 5s, poll_interval: 1s}
matcher: {own_domains: [acme.example]}
accounts:
  - {id: alice, host: 127.0.0.1, port: %d, tls: none, username: %s, password_file: imap.password, start: all, folders: [inbox], matcher: {capture: matched}}
`, fake.URL(), hubspottest.ClientID, filepath.Join(dir, "client.secret"), signIn, freePort(t), srv.Port(), dovecottest.DefaultUser)), 0o600)

	out, err := exec.Command(bin, "check", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "run mailsync auth login --sink") {
		t.Errorf("check before the login: %v, want a failure that says to log in:\n%s", err, out)
	}
	if out := loginSinkThroughBinary(t, bin, cfg); !strings.Contains(out, "Signed in") {
		t.Fatalf("login output:\n%s", out)
	}
	state, _ := os.ReadFile(filepath.Join(dir, "state.db"))
	if bytes.Contains(state, []byte(fake.RefreshToken())) {
		t.Error("the state file holds the refresh token in clear")
	}
	if out, err := exec.Command(bin, "check", "--config", cfg).CombinedOutput(); err != nil {
		t.Errorf("check after the login: %v\n%s", err, out)
	}
	if out, _ := exec.Command(bin, "auth", "status", "--config", cfg).CombinedOutput(); !strings.Contains(string(out), "sink:hubspot") || !strings.Contains(string(out), " ok ") {
		t.Errorf("auth status after the login:\n%s", out)
	}

	logged := func() int { return len(fake.KeyCounts()) }
	defer dumpLogsIfFailed(t, dir, "run1.log", "run2.log")
	r := startHubSpot(t, bin, cfg, filepath.Join(dir, "run1.log"))
	waitFor(t, "the first deliveries", 30*time.Second, func() bool { return logged() == 3 })
	fake.RotateRefresh()
	fake.ExpireToken()
	srv.Append(t, dovecottest.DefaultUser, "INBOX", hubspotMessage(12))
	waitFor(t, "delivery after the rotation", 30*time.Second, func() bool { return logged() == 4 })
	r.stop(t)

	// The old refresh token no longer works: only the stored rotation does.
	fake.ExpireToken()
	r = startHubSpot(t, bin, cfg, filepath.Join(dir, "run2.log"))
	srv.Append(t, dovecottest.DefaultUser, "INBOX", hubspotMessage(16))
	waitFor(t, "delivery after the restart", 30*time.Second, func() bool { return logged() == 5 })
	if st := liveStatus(t, bin, cfg); st.SinkHealth != "" {
		t.Errorf("status shows %q while the grant works", st.SinkHealth)
	}
	fake.RevokeRefresh()
	fake.ExpireToken()
	srv.Append(t, dovecottest.DefaultUser, "INBOX", hubspotMessage(20))
	waitFor(t, "status to say re-authorization is needed", 30*time.Second, func() bool {
		return strings.Contains(liveStatus(t, bin, cfg).SinkHealth, "re-authorization needed")
	})
	if text, _ := exec.Command(bin, "status", "--config", cfg).CombinedOutput(); !strings.Contains(string(text), "mailsync auth login --sink") {
		t.Errorf("status does not say what to do:\n%s", text)
	}
	r.stop(t)
	if got := logged(); got != 5 {
		t.Errorf("%d emails logged, want 5 (none after the revocation)", got)
	}
	out, _ = exec.Command(bin, "auth", "status", "--config", cfg).CombinedOutput()
	if !strings.Contains(string(out), "reauth needed") {
		t.Errorf("auth status after the revocation:\n%s", out)
	}
	for _, f := range []string{"run1.log", "run2.log"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(b, []byte(fake.RefreshToken())) || bytes.Contains(b, []byte(hubspottest.ClientSecret)) {
			t.Errorf("%s shows a secret", f)
		}
	}
}

// TestSalesforceLoginThroughBinary: a connected app signed in with
// `mailsync auth login --sink` (web server flow with PKCE against the
// Salesforce login fake) delivers through the daemon; a revoked grant
// shows in status; then the same org through the JWT bearer flow, which
// needs no login at all.
func TestSalesforceLoginThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs Dovecot; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	fake := salesforcetest.Start(t)
	login := salesforcetest.StartLogin(t, fake)
	acct := fake.Add("Account", map[string]any{"Name": "Contoso", "Website": "contoso.example"})
	fake.Add("Contact", map[string]any{"Name": "Ada Liu", "Email": "ada@contoso.example", "AccountId": acct})
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", [][]byte{crmMail(0, "ada@contoso.example"), crmMail(1, "ada@contoso.example")})

	dir := t.TempDir()
	secret, keyFile := filepath.Join(dir, "consumer.secret"), filepath.Join(dir, "app.key")
	os.WriteFile(secret, []byte(salesforcetest.ConsumerSecret), 0o600)
	os.WriteFile(filepath.Join(dir, "token.key"), []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	login.TrustCertificate(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "integration@contoso.example")

	web := fmt.Sprintf("{client_id: %s, client_secret_file: %q, token_url: %q, redirect_url: \"http://127.0.0.1:%d/callback\"}",
		salesforcetest.ConsumerKey, secret, login.TokenURL(), freePort(t))
	jwtFlow := fmt.Sprintf("{client_id: %s, token_url: %q, audience: %q, username: integration@contoso.example, private_key_file: %q}",
		salesforcetest.ConsumerKey, login.TokenURL(), login.URL, keyFile)
	sinkWith := func(oauth2 string) string {
		return fmt.Sprintf("{type: salesforce, salesforce: {instance_url: %q, requests_per_second: 40, oauth2: %s}}", fake.URL, oauth2)
	}
	cfg := crmConfig(t, dir, srv, sinkWith(web))
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("tokens: {key_file: token.key}\n"), b...), 0o600)
	defer dumpLogsIfFailed(t, dir, "run1.log", "run2.log")

	if out := loginSinkThroughBinary(t, bin, cfg); !strings.Contains(out, "Signed in") {
		t.Fatalf("login output:\n%s", out)
	}
	logged := func() int { return len(fake.Identifiers()) }
	cmd := runDaemon(t, bin, cfg, filepath.Join(dir, "run1.log"))
	waitFor(t, "delivery with the signed-in grant", 30*time.Second, func() bool { return logged() == 2 })
	login.Revoke()
	fake.SetToken("00Dfake!expired")
	srv.Append(t, dovecottest.DefaultUser, "INBOX", crmMail(2, "ada@contoso.example"))
	waitFor(t, "status to say re-authentication is needed", 30*time.Second, func() bool {
		return strings.Contains(liveStatus(t, bin, cfg).SinkHealth, "re-authentication needed")
	})
	stopDaemon(t, cmd, filepath.Join(dir, "run1.log"))
	if out, _ := exec.Command(bin, "auth", "status", "--config", cfg).CombinedOutput(); !strings.Contains(string(out), "reauth needed") {
		t.Errorf("auth status after the revocation:\n%s", out)
	}

	// The JWT bearer flow: nothing to sign in, nothing stored.
	login.Unrevoke()
	b, _ = os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), web, jwtFlow, 1)), 0o600)
	if out, err := exec.Command(bin, "check", "--config", cfg).CombinedOutput(); err != nil {
		t.Errorf("check with the JWT bearer flow: %v\n%s", err, out)
	}
	cmd = runDaemon(t, bin, cfg, filepath.Join(dir, "run2.log"))
	waitFor(t, "delivery with the JWT bearer flow", 30*time.Second, func() bool { return logged() == 3 })
	stopDaemon(t, cmd, filepath.Join(dir, "run2.log"))
	if n := login.Grants("urn:ietf:params:oauth:grant-type:jwt-bearer"); n < 1 {
		t.Errorf("%d JWT grants", n)
	}
	for k, n := range fake.Identifiers() {
		if n != 1 {
			t.Errorf("%s logged %d times", k, n)
		}
	}
}
