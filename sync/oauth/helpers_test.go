package oauth

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/oauth/oauthtest"
)

// testKey is the tokens key the tests write to token.key.
var testKey = []byte("0123456789abcdef0123456789ABCDEF")

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu stdsync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  stdsync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) count(substr string) int { return strings.Count(b.String(), substr) }

// acctSpec is one account of a test config.
type acctSpec struct {
	id, user string
	// extra is appended to the oauth2 section, e.g. "mechanism: xoauth2".
	extra string
	// password makes it a password account (for "others keep working").
	password bool
	// noLogin leaves the account without a stored token.
	noLogin bool
}

// testConfig writes the token key and returns a parsed config whose
// oauth2 accounts use idp, connecting to 127.0.0.1:port.
func testConfig(t testing.TB, dir string, idp *oauthtest.IdP, port int, accts ...acctSpec) *config.Config {
	t.Helper()
	keyFile := filepath.Join(dir, "token.key")
	if err := os.WriteFile(keyFile, testKey, 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state: %s\ntokens: {key_file: %s}\n", filepath.Join(dir, "state.db"), keyFile)
	fmt.Fprintf(&b, "sink: {type: jsonl, jsonl: {path: %s}}\n", filepath.Join(dir, "messages.jsonl"))
	b.WriteString("matcher:\n  own_domains: [acme.example]\n  keep: {internal: true, bulk: true, auto_replies: true, bounces: true}\n")
	b.WriteString("sync: {retry_min: 50ms, retry_max: 500ms, auth_retry: 300ms, command_timeout: 20s, shutdown_grace: 5s}\n")
	b.WriteString("accounts:\n")
	for _, a := range accts {
		fmt.Fprintf(&b, "  - id: %s\n    host: 127.0.0.1\n    port: %d\n    tls: none\n    username: %s\n    start: all\n    folders: [inbox]\n    matcher: {capture: all}\n", a.id, port, a.user)
		if a.password {
			pw := filepath.Join(dir, a.id+".password")
			if err := os.WriteFile(pw, []byte(a.user+"-pass\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "    password_file: %s\n", pw)
			continue
		}
		fmt.Fprintf(&b, "    auth: oauth2\n    oauth2:\n      provider: generic\n      client_id: %s\n      token_url: %s\n      device_url: %s\n",
			idp.ClientID(), idp.TokenURL(), idp.DeviceURL())
		if a.extra != "" {
			fmt.Fprintf(&b, "      %s\n", a.extra)
		}
	}
	cfg, err := config.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	return cfg
}

// openStore opens the config's state file and closes it, after a
// consistency check, when the test ends.
func openStore(t testing.TB, cfg *config.Config) *store.Store {
	t.Helper()
	st, err := store.Open(cfg.State, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("state file check: %v", err)
		}
		_ = st.Close()
	})
	return st
}

// loginAs stores a fresh refresh-token grant for account id, as
// `mailsync auth login` does, and returns the refresh token.
func loginAs(t testing.TB, cfg *config.Config, st *store.Store, idp *oauthtest.IdP, id, user string) {
	t.Helper()
	acct, _ := cfg.Account(id)
	prov, err := NewProvider(acct, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := prov.Refresh(t.Context(), idp.IssueRefreshToken(user))
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	v, err := OpenVault(st, &cfg.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Login(acct, g); err != nil {
		t.Fatal(err)
	}
}

// assertNoSecrets fails if any issued secret occurs in any of the texts.
func assertNoSecrets(t testing.TB, idp *oauthtest.IdP, texts map[string][]byte) {
	t.Helper()
	secrets := idp.Secrets()
	if len(secrets) == 0 {
		t.Fatal("the IdP issued no secrets; the check would prove nothing")
	}
	for name, text := range texts {
		for _, s := range secrets {
			if bytes.Contains(text, []byte(s)) {
				t.Errorf("%s contains an issued token (%.6s...)", name, s)
			}
		}
	}
}

func newTestLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func readFileErr(path string) ([]byte, error) { return os.ReadFile(path) }
