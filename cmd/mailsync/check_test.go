package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"testing"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink/webhook"
)

// checkPassword is distinctive so the secrets test can search for it.
const checkPassword = "Zq9-very-secret-Pw!x7"

// checkAcct describes the one account a check test config has.
type checkAcct struct {
	port     int
	tls      string
	caFile   string
	password string // written to the password_file
	folders  string // YAML list
}

func writeCheckConfig(t *testing.T, a checkAcct, sinkYAML string) string {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "imap.password")
	if err := os.WriteFile(pw, []byte(a.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if sinkYAML == "" {
		sinkYAML = fmt.Sprintf("{type: jsonl, jsonl: {path: %s/out/messages.jsonl}}", dir)
	}
	ca := ""
	if a.caFile != "" {
		ca = "\n    ca_file: " + a.caFile
	}
	cfg := fmt.Sprintf(`state: %s/state.db
sink: %s
accounts:
  - id: alice
    host: 127.0.0.1
    port: %d
    tls: %s%s
    username: alice
    password_file: %s
    folders: %s
`, dir, sinkYAML, a.port, a.tls, ca, pw, a.folders)
	path := filepath.Join(dir, "mailsync.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// webhookReceiver accepts signed deliveries and records the verified ones.
type webhookReceiver struct {
	secret webhook.Secret
	mu     stdsync.Mutex
	got    []map[string]any
	bad    int
}

func (rcv *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts, _ := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if !webhook.Verify(rcv.secret, r.Header.Get("webhook-id"), ts, body, r.Header.Get("webhook-signature")) {
		rcv.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m map[string]any
	json.Unmarshal(body, &m)
	rcv.got = append(rcv.got, m)
	w.Header().Set("X-Activity-Id", "act-1")
}

func TestCheckAgainstDovecot(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithTLS(), dovecottest.WithUsers(map[string]string{"alice": checkPassword}))
	good := checkAcct{port: srv.TLSPort(), tls: "implicit", caFile: srv.CAFile, password: checkPassword, folders: "[inbox, sent, Archive]"}

	const webhookSecret = "whsec_c2VjcmV0LXdlYmhvb2sta2V5LTEyMzQ1Njc4OTA="
	secret, err := webhook.ParseSecret(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	rcv := &webhookReceiver{secret: secret}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	secretFile := filepath.Join(t.TempDir(), "webhook.secret")
	os.WriteFile(secretFile, []byte(webhookSecret), 0o600)
	webhookSink := fmt.Sprintf("{type: webhook, webhook: {url: %q, secret_file: %s}}", hook.URL+"/hooks/crm?token=t0ps3cret", secretFile)

	tests := []struct {
		name     string
		acct     checkAcct
		sink     string
		args     []string
		wantCode int
		want     []string // lines, exactly
		wantNot  []string
	}{
		{
			name: "all good", acct: good, wantCode: 0,
			want: []string{
				fmt.Sprintf("PASS  alice: connect: 127.0.0.1:%d (implicit TLS)", srv.TLSPort()),
				"PASS  alice: tls: certificate verified",
				"PASS  alice: login: logged in as alice",
				"PASS  alice: capabilities: IDLE CONDSTORE QRESYNC MOVE SPECIAL-USE UIDPLUS",
				"PASS  alice: folder inbox is 'INBOX': found, 0 messages",
				"PASS  alice: folder sent is 'Sent': found, 0 messages",
				"PASS  alice: folder 'Archive': found, 0 messages",
			},
			wantNot: []string{"FAIL"},
		},
		{
			name: "wrong password", acct: checkAcct{port: good.port, tls: "implicit", caFile: srv.CAFile, password: "not-" + checkPassword, folders: "[inbox]"},
			wantCode: 1,
			want: []string{
				"PASS  alice: tls: certificate verified",
				"FAIL  alice: login refused: AUTHENTICATIONFAILED Authentication failed. (username alice)",
			},
		},
		{
			name: "untrusted certificate", acct: checkAcct{port: good.port, tls: "implicit", password: checkPassword, folders: "[inbox]"},
			wantCode: 1,
			want:     []string{fmt.Sprintf("PASS  alice: connect: 127.0.0.1:%d (implicit TLS)", srv.TLSPort())},
			// The issuer's name follows; the line starts with the cause.
			wantNot: []string{"login:"},
		},
		{
			name: "missing folder", acct: checkAcct{port: good.port, tls: "implicit", caFile: srv.CAFile, password: checkPassword, folders: "[inbox, 'Sent Items']"},
			wantCode: 1,
			want: []string{
				"PASS  alice: folder inbox is 'INBOX': found, 0 messages",
				"FAIL  alice: folder 'Sent Items' not found; the server's sent folder is 'Sent'; the server's archive folder is 'Archive'",
			},
		},
		{
			name: "webhook sink test", acct: good, sink: webhookSink, args: []string{"--sink-test"}, wantCode: 0,
			want: []string{
				"PASS  sink webhook: signing secret read",
				"PASS  sink webhook: " + hook.URL + " reachable (http, loopback only)",
			},
			wantNot: []string{"t0ps3cret", "/hooks/crm"},
		},
		{
			name: "webhook down", acct: good, sink: `{type: webhook, webhook: {url: "http://127.0.0.1:1/x", secret_file: ` + secretFile + `}}`, wantCode: 1,
			want: []string{"FAIL  sink webhook: http://127.0.0.1:1: server refused the connection (server down or wrong port?) (dial tcp 127.0.0.1:1: connect: connection refused)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeCheckConfig(t, tt.acct, tt.sink)
			out, errOut, code := runCLI(t, context.Background(), append([]string{"check", "-c", cfg}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			for _, w := range tt.want {
				if !containsLine(out, w) {
					t.Errorf("output lacks line %q", w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out+errOut, w) {
					t.Errorf("output contains %q", w)
				}
			}
			if !strings.Contains(out, "PASS  config: "+cfg+" is valid (1 account,") {
				t.Errorf("no config line")
			}
			if tt.wantCode != 0 && !strings.Contains(errOut, "checks failed") {
				t.Errorf("stderr %q does not count the failures", errOut)
			}
			// The secrets never show, whatever happened.
			for _, secret := range []string{checkPassword, webhookSecret, "c2VjcmV0LXdlYmhvb2sta2V5"} {
				if strings.Contains(out+errOut, secret) {
					t.Errorf("a secret appears in the output")
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}

	// The specific TLS cause, checked apart because the issuer's name
	// (generated per run) ends the line.
	cfg := writeCheckConfig(t, checkAcct{port: good.port, tls: "implicit", password: checkPassword, folders: "[inbox]"}, "")
	out, _, _ := runCLI(t, context.Background(), "check", "-c", cfg)
	if !strings.Contains(out, "FAIL  alice: tls: certificate signed by unknown authority (issuer ") {
		t.Errorf("untrusted certificate: output lacks the unknown-authority line:\n%s", out)
	}

	// An OAuth2 account's tokens live in the daemon's state file: check
	// verifies the connection and TLS, says the login was not checked,
	// and does not fail for it.
	oauthCfg := filepath.Join(t.TempDir(), "oauth.yaml")
	os.WriteFile(oauthCfg, []byte(fmt.Sprintf(`state: %s/state.db
sink: {type: jsonl, jsonl: {path: %s/out.jsonl}}
tokens: {allow_plaintext: true}
accounts:
  - id: bob
    host: 127.0.0.1
    port: %d
    tls: implicit
    ca_file: %s
    username: bob
    auth: oauth2
    oauth2: {provider: generic, client_id: cid, token_url: "http://127.0.0.1:1/token", device_url: "http://127.0.0.1:1/device"}
`, filepath.Dir(oauthCfg), filepath.Dir(oauthCfg), srv.TLSPort(), srv.CAFile)), 0o600)
	out, errOut, code := runCLI(t, context.Background(), "check", "-c", oauthCfg)
	for _, w := range []string{"PASS  bob: tls: certificate verified", "WARN  bob: login: not checked for auth oauth2"} {
		if !strings.Contains(out, w) {
			t.Errorf("oauth2 account: output lacks %q:\n%s", w, out)
		}
	}
	if code != 0 || strings.Contains(out, "FAIL") {
		t.Errorf("oauth2 account: exit %d, stderr %q\n%s", code, errOut, out)
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != 1 || rcv.bad != 0 {
		t.Fatalf("webhook receiver got %d verified deliveries and %d bad ones, want exactly 1 (only with --sink-test)", len(rcv.got), rcv.bad)
	}
	if rcv.got[0]["event"] != "test" || !strings.HasPrefix(fmt.Sprint(rcv.got[0]["key"]), "mailsync-check-") {
		t.Errorf("test delivery = %v, want event test with a mailsync-check- key", rcv.got[0])
	}
}

func TestCheckConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("accounts:\n  - {id: a, host: h, port: 99999, username: u, password_env: X}\n"), 0o600)
	out, errOut, code := runCLI(t, context.Background(), "check", "-c", bad)
	if code != 2 || !strings.Contains(out, "FAIL  config: ") || !strings.Contains(out, "port") || !strings.Contains(errOut, "2 of 2 checks failed") || strings.Count(out, "FAIL  config: ") != 2 {
		t.Errorf("invalid config: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}

	// A missing secret is its own line, naming the source.
	cfg := writeCheckConfig(t, checkAcct{port: 1, tls: "none", password: "x", folders: "[inbox]"}, "")
	os.Remove(filepath.Join(filepath.Dir(cfg), "imap.password"))
	out, _, code = runCLI(t, context.Background(), "check", "-c", cfg)
	if code != 2 || !strings.Contains(out, "FAIL  alice: accounts[alice].password_file: open ") {
		t.Errorf("missing password file: exit %d\n%s", code, out)
	}
	// The jsonl sink directory does not exist yet but can be created.
	if !strings.Contains(out, "does not exist yet and can be created") {
		t.Errorf("jsonl sink line missing:\n%s", out)
	}

	_, errOut, code = runCLI(t, context.Background(), "check", "-c", cfg, "--account", "nobody")
	if code != 2 || !strings.Contains(errOut, "--account nobody: no such account") {
		t.Errorf("unknown --account: exit %d, stderr %q", code, errOut)
	}
}
