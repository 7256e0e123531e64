package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const oauthBase = `
state: /var/lib/mailsync/state.db
tokens: {key_file: /etc/mailsync/token.key}
accounts:
  - id: sales
    host: imap.gmail.com
    username: sales@example.com
    auth: oauth2
    oauth2:
      provider: google
      client_id: 123.apps.googleusercontent.com
      client_secret_env: GOOGLE_SECRET
`

// withOAuth replaces the oauth2 section's body lines after client_id.
func withOAuth(extra string) string {
	return strings.Replace(oauthBase, "      client_secret_env: GOOGLE_SECRET\n", extra, 1)
}

func TestOAuth2ParseGood(t *testing.T) {
	cfg, err := Parse(strings.NewReader(oauthBase))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	a, _ := cfg.Account("sales")
	o := &a.OAuth2
	if got, want := o.EffectiveGrant(), GrantRefreshToken; got != want {
		t.Errorf("EffectiveGrant() = %q, want %q", got, want)
	}
	if got, want := o.EffectiveScopes(), GoogleScopes; !slices.Equal(got, want) {
		t.Errorf("EffectiveScopes() = %v, want %v", got, want)
	}
	_, tok, dev := o.Endpoints()
	if got, want := tok, googleTokenURL; got != want {
		t.Errorf("token url = %q, want %q", got, want)
	}
	if got, want := dev, googleDeviceURL; got != want {
		t.Errorf("device url = %q, want %q", got, want)
	}
}

func TestOAuth2Defaults(t *testing.T) {
	tests := []struct {
		name                string
		o                   OAuth2
		scopes              []string
		tokenURL, deviceURL string
	}{
		{"microsoft delegated", OAuth2{Provider: ProviderMicrosoft}, MicrosoftScopes,
			"https://login.microsoftonline.com/common/oauth2/v2.0/token", "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"},
		{"microsoft app-only", OAuth2{Provider: ProviderMicrosoft, Grant: GrantClientCredentials, Tenant: "contoso.onmicrosoft.com"}, MicrosoftAppOnlyScopes,
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"},
		{"override", OAuth2{Provider: ProviderGoogle, TokenURL: "http://127.0.0.1:9/t", Scopes: []string{"x"}}, []string{"x"},
			"http://127.0.0.1:9/t", googleDeviceURL},
		{"generic", OAuth2{Provider: ProviderGeneric, TokenURL: "https://idp/t", DeviceURL: "https://idp/d"}, nil,
			"https://idp/t", "https://idp/d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.EffectiveScopes(); !slices.Equal(got, tt.scopes) {
				t.Errorf("EffectiveScopes() = %v, want %v", got, tt.scopes)
			}
			_, tok, dev := tt.o.Endpoints()
			if tok != tt.tokenURL || dev != tt.deviceURL {
				t.Errorf("Endpoints() = %q, %q; want %q, %q", tok, dev, tt.tokenURL, tt.deviceURL)
			}
		})
	}
	// Callers may change what they get without changing the defaults.
	s := (&OAuth2{Provider: ProviderGoogle}).EffectiveScopes()
	s[0] = "changed"
	if GoogleScopes[0] == "changed" {
		t.Fatal("EffectiveScopes returned the package's slice")
	}
}

func TestOAuth2ValidationErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string // substrings that must all appear; nil = valid
	}{
		{"good", oauthBase, nil},
		{"public client", withOAuth(""), nil},
		{"empty client id", strings.Replace(oauthBase, "123.apps.googleusercontent.com", `""`, 1),
			[]string{"accounts[sales].oauth2.client_id: is empty"}},
		{"no provider", strings.Replace(oauthBase, "      provider: google\n", "", 1),
			[]string{"accounts[sales].oauth2.provider: is empty"}},
		{"bad provider", strings.Replace(oauthBase, "provider: google", "provider: yahoo", 1),
			[]string{`accounts[sales].oauth2.provider: must be google, microsoft or generic, not "yahoo"`}},
		{"two secrets", withOAuth("      client_secret_env: A\n      client_secret_file: /x\n"),
			[]string{"accounts[sales].oauth2.client_secret_env: set only one"}},
		{"bad grant", withOAuth("      grant: password\n"),
			[]string{`accounts[sales].oauth2.grant: must be refresh_token or client_credentials, not "password"`}},
		{"google app-only", withOAuth("      grant: client_credentials\n      client_secret_env: X\n"),
			[]string{"accounts[sales].oauth2.grant: client_credentials is not offered by Google"}},
		{"app-only without secret", strings.Replace(withOAuth("      grant: client_credentials\n      tenant: contoso.com\n"), "provider: google", "provider: microsoft", 1),
			[]string{"accounts[sales].oauth2.client_secret_env: the client_credentials grant needs a client secret"}},
		{"app-only common tenant", strings.Replace(withOAuth("      grant: client_credentials\n      client_secret_env: X\n"), "provider: google", "provider: microsoft", 1),
			[]string{`accounts[sales].oauth2.tenant: the client_credentials grant needs the directory (tenant) id or domain, not "common"`}},
		{"app-only good", strings.Replace(withOAuth("      grant: client_credentials\n      client_secret_env: X\n      tenant: contoso.com\n"), "provider: google", "provider: microsoft", 1), nil},
		{"tenant on google", withOAuth("      tenant: x\n"),
			[]string{"accounts[sales].oauth2.tenant: is only used with provider microsoft"}},
		{"generic without urls", strings.Replace(oauthBase, "provider: google", "provider: generic", 1),
			[]string{"accounts[sales].oauth2.token_url: is empty", "accounts[sales].oauth2.device_url: is empty"}},
		{"generic app-only needs no device url", strings.Replace(withOAuth("      grant: client_credentials\n      client_secret_env: X\n      token_url: https://idp.example/token\n"), "provider: google", "provider: generic", 1), nil},
		{"http remote", withOAuth("      token_url: http://idp.example/token\n"),
			[]string{"accounts[sales].oauth2.token_url: must be https (http is allowed only for loopback hosts)"}},
		{"http loopback", withOAuth("      token_url: http://127.0.0.1:8080/token\n"), nil},
		{"relative url", withOAuth("      device_url: /device\n"),
			[]string{"accounts[sales].oauth2.device_url: not an absolute URL"}},
		{"url with credentials", withOAuth("      auth_url: https://u:p@idp.example/a\n"),
			[]string{"accounts[sales].oauth2.auth_url: must not carry credentials"}},
		{"bad mechanism", withOAuth("      mechanism: plain\n"),
			[]string{`accounts[sales].oauth2.mechanism: must be xoauth2 or oauthbearer, not "plain"`}},
		{"scope with space", withOAuth("      scopes: [\"a b\"]\n"),
			[]string{`accounts[sales].oauth2.scopes[0]: must be one non-empty scope`}},
		{"unknown oauth2 key", withOAuth("      secret: x\n"),
			[]string{"accounts[sales].oauth2.secret: unknown key"}},
		{"no key", strings.Replace(oauthBase, "tokens: {key_file: /etc/mailsync/token.key}\n", "", 1),
			[]string{"tokens: OAuth2 tokens need an encryption key at rest (accounts[sales] use oauth2)"}},
		{"plaintext allowed", strings.Replace(oauthBase, "{key_file: /etc/mailsync/token.key}", "{allow_plaintext: true}", 1), nil},
		{"two keys", strings.Replace(oauthBase, "{key_file: /etc/mailsync/token.key}", "{key_file: /k, key_credential: k}", 1),
			[]string{"tokens.key_file: set only one of key_file, key_credential"}},
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
					t.Errorf("Parse() error = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestPasswordAccountsNeedNoKey(t *testing.T) {
	if _, err := Parse(strings.NewReader(good)); err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
}

func TestTokenKey(t *testing.T) {
	dir := t.TempDir()
	raw := []byte("0123456789abcdef0123456789abcdef")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		content []byte
		wantErr string
	}{
		{"raw", raw, ""},
		{"base64 with newline", []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), ""},
		{"base64url unpadded", []byte(base64.RawURLEncoding.EncodeToString(raw)), ""},
		{"too short", []byte("short"), "tokens.key_file: the key must be 32 raw bytes or their base64 (file holds 5 bytes)"},
		{"base64 of 16 bytes", []byte(base64.StdEncoding.EncodeToString(raw[:16])), "must be 32 raw bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := Tokens{KeyFile: write(tt.name, tt.content)}
			k, err := tk.Key()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Key() error = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), string(tt.content)) && len(tt.content) > 0 {
					t.Fatalf("Key() error shows the file contents: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Key() error = %v", err)
			}
			if string(k) != string(raw) {
				t.Fatalf("Key() = %x, want %x", k, raw)
			}
		})
	}
	t.Run("credential", func(t *testing.T) {
		write("cred", raw)
		t.Setenv("CREDENTIALS_DIRECTORY", dir)
		k, err := (&Tokens{KeyCredential: "cred"}).Key()
		if err != nil || string(k) != string(raw) {
			t.Fatalf("Key() = %x, %v", k, err)
		}
	})
	t.Run("none", func(t *testing.T) {
		k, err := (&Tokens{}).Key()
		if k != nil || err != nil {
			t.Fatalf("Key() = %x, %v; want nil, nil", k, err)
		}
	})
}

func TestClientSecretSources(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MS_OAUTH_SECRET", "from-env")
	tests := []struct {
		name    string
		o       OAuth2
		want    string
		wantErr string
	}{
		{"none", OAuth2{}, "", ""},
		{"env", OAuth2{ClientSecretEnv: "MS_OAUTH_SECRET"}, "from-env", ""},
		{"file", OAuth2{ClientSecretFile: p}, "s3cret", ""},
		{"env unset", OAuth2{ClientSecretEnv: "MS_OAUTH_UNSET"}, "", "accounts[x].oauth2.client_secret_env: environment variable MS_OAUTH_UNSET is not set"},
		{"file missing", OAuth2{ClientSecretFile: filepath.Join(dir, "nope")}, "", "accounts[x].oauth2.client_secret_file:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.o.ClientSecret("accounts[x].oauth2")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ClientSecret() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ClientSecret() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestOAuthPathsRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mailsync.yaml")
	y := strings.Replace(withOAuth("      client_secret_file: google.secret\n"), "/etc/mailsync/token.key", "token.key", 1)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Tokens.KeyFile, filepath.Join(dir, "token.key"); got != want {
		t.Errorf("key_file = %q, want %q", got, want)
	}
	if got, want := cfg.Accounts[0].OAuth2.ClientSecretFile, filepath.Join(dir, "google.secret"); got != want {
		t.Errorf("client_secret_file = %q, want %q", got, want)
	}
}
