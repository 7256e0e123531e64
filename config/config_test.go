package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

const good = `
state: /var/lib/mailsync/state.db
sink: {type: jsonl, jsonl: {path: /var/lib/mailsync/messages.jsonl}}
accounts:
  - id: sales
    host: imap.example.com
    username: sales@example.com
    password_env: SALES_IMAP_PASSWORD
    folders: [inbox, sent, "Sent Items"]
`

func TestParseGood(t *testing.T) {
	cfg, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	a, ok := cfg.Account("sales")
	if !ok {
		t.Fatal("account sales missing")
	}
	if got, want := a.Port, 993; got != want {
		t.Errorf("default port = %d, want %d", got, want)
	}
	if got, want := a.TLS, "implicit"; got != want {
		t.Errorf("default tls = %q, want %q", got, want)
	}
	if got, want := a.Start, "now"; got != want {
		t.Errorf("default start = %q, want %q", got, want)
	}
	if got, want := cfg.Sync.CommandTimeout, DefaultCommandTimeout; got != want {
		t.Errorf("command_timeout = %v, want %v", got, want)
	}
	if got, want := cfg.SinkSettings()["path"], "/var/lib/mailsync/messages.jsonl"; got != want {
		t.Errorf("sink settings path = %v, want %v", got, want)
	}
	if !IsFolderRole(a.Folders[0]) || IsFolderRole(a.Folders[2]) {
		t.Errorf("folder roles misread: %v", a.Folders)
	}
}

func TestParseErrorsNamePathAndReason(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown top key", good + "colour: blue\n", []string{"colour: unknown key"}},
		{"unknown account key", strings.Replace(good, "    username:", "    usernme: x\n    username:", 1),
			[]string{"accounts[sales].usernme: unknown key"}},
		{"bad port type", strings.Replace(good, "    username:", "    port: abc\n    username:", 1),
			[]string{"accounts[sales].port:"}},
		{"port range", strings.Replace(good, "    username:", "    port: 70000\n    username:", 1),
			[]string{"accounts[sales].port: must be 1-65535"}},
		{"tls none remote", strings.Replace(good, "    username:", "    tls: none\n    username:", 1),
			[]string{"accounts[sales].tls: none is refused for imap.example.com"}},
		{"tls unknown", strings.Replace(good, "    username:", "    tls: maybe\n    username:", 1),
			[]string{`accounts[sales].tls: must be implicit, starttls or none, not "maybe"`}},
		{"empty folder", strings.Replace(good, `"Sent Items"`, `""`, 1),
			[]string{"accounts[sales].folders[2]: folder name is empty"}},
		{"duplicate folder", strings.Replace(good, `"Sent Items"`, `sent`, 1),
			[]string{`accounts[sales].folders[2]: folder "sent" listed twice`}},
		{"bad start", strings.Replace(good, "    username:", "    start: yesterday\n    username:", 1),
			[]string{`accounts[sales].start: must be now, all or a date`}},
		{"two secrets", strings.Replace(good, "    username:", "    password_file: /x\n    username:", 1),
			[]string{"accounts[sales].password_env: set only one"}},
		{"no secret", strings.Replace(good, "    password_env: SALES_IMAP_PASSWORD\n", "", 1),
			[]string{"accounts[sales].password_env: no password source"}},
		{"duplicate id", good + `  - {id: sales, host: h, username: u, password_env: X}` + "\n",
			[]string{"accounts[sales].id: duplicate account id"}},
		{"bad duration", good + "sync: {command_timeout: soon}\n", []string{"sync.command_timeout:"}},
		{"negative duration", good + "sync: {retry_min: -1s}\n", []string{"sync.retry_min: must be a positive duration"}},
		{"idle too long", good + "sync: {idle_restart: 45m}\n", []string{"sync.idle_restart: must be under 29m"}},
		{"no accounts", "state: /x\n", []string{"accounts: no accounts configured"}},
		{"no state", strings.Replace(good, "state: /var/lib/mailsync/state.db\n", "", 1), []string{"state: state file path is empty"}},
		{"sink scalar", good + "", nil},
		{"bad yaml", "accounts: [\n", []string{"line 1:"}},
		{"log level", good + "log: {level: loud}\n", []string{`log.level: must be debug, info, warn or error, not "loud"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.yaml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse() error = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse() error = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse() error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestPasswordNeverInError(t *testing.T) {
	t.Setenv("SALES_IMAP_PASSWORD", "hunter2-secret")
	cfg, err := Parse(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.Account("sales")
	pw, err := a.Password()
	if err != nil || pw != "hunter2-secret" {
		t.Fatalf("Password() = %q, %v", pw, err)
	}
	a.PasswordEnv = "MAILSYNC_TEST_UNSET_VAR"
	_, err = a.Password()
	if err == nil || !strings.Contains(err.Error(), "accounts[sales].password_env: environment variable MAILSYNC_TEST_UNSET_VAR is not set") {
		t.Fatalf("Password() error = %v", err)
	}
}

func TestParseStart(t *testing.T) {
	s, err := ParseStart("2026-01-31")
	if err != nil || !s.Since.Equal(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseStart(date) = %+v, %v", s, err)
	}
}

// TestLoadResolvesSinkFiles: files a sink section names (keys ending in
// _file, at any depth, and jsonl's path) are relative to the config file,
// like the accounts' and the state file.
func TestLoadResolvesSinkFiles(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/mailsync.yaml"
	yaml := strings.Replace(good, "sink: {type: jsonl, jsonl: {path: /var/lib/mailsync/messages.jsonl}}",
		"sink:\n  type: hubspot\n  hubspot: {token_file: hs.token, base_url: https://api.hubapi.com, oauth2: {client_secret_file: secrets/app, client_id: x}}\n  jsonl: {path: out.jsonl}\n  webhook: {url: https://crm.example.com, secret_file: /abs/secret}", 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	hs := cfg.SinkSettings()
	o, _ := hs["oauth2"].(map[string]any)
	for _, c := range []struct {
		got  any
		want string
	}{
		{hs["token_file"], dir + "/hs.token"},
		{o["client_secret_file"], dir + "/secrets/app"},
		{cfg.Sink.Settings["jsonl"].(map[string]any)["path"], dir + "/out.jsonl"},
		{cfg.Sink.Settings["webhook"].(map[string]any)["secret_file"], "/abs/secret"},
		{hs["base_url"], "https://api.hubapi.com"},
	} {
		got, want := c.got, c.want
		if got != want {
			t.Errorf("resolved %v, want %s", got, want)
		}
	}
}
