package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailsync/mailsync/sync/outbound"
	"github.com/mailsync/mailsync/sync/sink"
)

// sendConfig writes a config whose admin listener is addr and whose token
// file holds token.
func sendConfig(t *testing.T, addr, token string) string {
	t.Helper()
	dir := t.TempDir()
	tokPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokPath, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`state: %s/state.db
sink: {type: jsonl, jsonl: {path: %s/m.jsonl}}
admin: {listen: "%s", token_file: %s}
accounts:
  - id: sales
    host: 127.0.0.1
    tls: none
    username: sales@acme.example
    password_env: UNUSED
`, dir, dir, addr, tokPath)
	path := filepath.Join(dir, "mailsync.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSendCommandPostsToTheAdminListener(t *testing.T) {
	type seen struct {
		path, auth string
		req        outbound.Request
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.path, s.auth = r.Method+" "+r.URL.Path, r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s.req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		got <- s
		json.NewEncoder(w).Encode(outbound.Result{MessageID: "abc@acme.example", SentFolder: "Sent", UID: 7, Key: "msg_1"})
	}))
	defer srv.Close()
	cfg := sendConfig(t, srv.Listener.Addr().String(), "tok-123")

	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut}
	code := m.Run(context.Background(), []string{"send", "--config", cfg, "--account", "sales",
		"--to", "bob@customer.example", "--to", "carol@customer.example", "--subject", "Test", "--text", "Hello",
		"--record", "deal:D-42", "--record", "contact:C-1", "--idempotency-key", "k-1"})
	if code != 0 {
		t.Fatalf("send exit code %d, stderr %q", code, errOut.String())
	}
	s := <-got
	if s.path != "POST /v1/accounts/sales/send" || s.auth != "Bearer tok-123" {
		t.Errorf("request %s with %q, want POST /v1/accounts/sales/send with the token", s.path, s.auth)
	}
	want := outbound.Request{To: []string{"bob@customer.example", "carol@customer.example"}, Subject: "Test", Text: "Hello",
		Records: []sink.Record{{Kind: "deal", ID: "D-42"}, {Kind: "contact", ID: "C-1"}}, IdempotencyKey: "k-1"}
	gotJSON, _ := json.Marshal(s.req)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("request body = %s\nwant %s", gotJSON, wantJSON)
	}
	for _, w := range []string{"sent <abc@acme.example>", `copy in "Sent", uid 7`, "ledger key msg_1"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output %q lacks %q", out.String(), w)
		}
	}
}

func TestSendCommandReportsAPIErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, `{"error":"smtp 127.0.0.1:465: rcpt to <bob@customer.example>: 550 5.1.1 no such user"}`)
	}))
	defer srv.Close()
	cfg := sendConfig(t, srv.Listener.Addr().String(), "tok")
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut}
	code := m.Run(context.Background(), []string{"send", "-c", cfg, "-a", "sales", "--to", "bob@customer.example", "--text", "x"})
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "HTTP 502: smtp 127.0.0.1:465: rcpt to <bob@customer.example>: 550 5.1.1 no such user") {
		t.Errorf("stderr %q does not relay the API's error", errOut.String())
	}
	if !strings.Contains(errOut.String(), "idempotency key: cli-") {
		t.Errorf("stderr %q does not print the generated idempotency key", errOut.String())
	}
}

func TestSendCommandUsageErrors(t *testing.T) {
	cfg := sendConfig(t, "127.0.0.1:1", "tok")
	noListen := strings.Replace(readFile(t, cfg), `admin: {listen: "127.0.0.1:1", `, "admin: {", 1)
	if err := os.WriteFile(cfg+".nolisten", []byte(noListen), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"send", "-c", cfg, "-a", "sales", "--record", "deal"}, "want kind:id"},
		{[]string{"send", "-c", cfg + ".nolisten", "-a", "sales", "--to", "b@x.example", "--text", "x"}, "admin.listen is not set"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errOut}
		if code := m.Run(context.Background(), tt.args); code != 2 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}

func TestSendURL(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:9090": "http://127.0.0.1:9090/v1/accounts/a%2Fb/send",
		":9090":          "http://127.0.0.1:9090/v1/accounts/a%2Fb/send",
		"0.0.0.0:9090":   "http://127.0.0.1:9090/v1/accounts/a%2Fb/send",
		"[::]:9090":      "http://[::1]:9090/v1/accounts/a%2Fb/send",
	} {
		got, err := sendURL(listen, "a/b")
		if err != nil || got != want {
			t.Errorf("sendURL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
