package webhook_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
	"github.com/mailsync/mailsync/sync/sink/webhook"
)

func TestParseSettings(t *testing.T) {
	ok := func(extra map[string]any) map[string]any {
		m := map[string]any{"url": "https://crm.example.com/hook", "secret_env": "WH_SECRET"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		settings map[string]any
		wantErr  string
		check    func(t *testing.T, c webhook.Config)
	}{
		{"defaults", ok(nil), "", func(t *testing.T, c webhook.Config) {
			if c.Timeout != webhook.DefaultTimeout || c.Concurrency != webhook.DefaultConcurrency {
				t.Errorf("defaults = %v, %d", c.Timeout, c.Concurrency)
			}
		}},
		{"all keys", ok(map[string]any{"timeout": "3s", "concurrency": 2, "ca_file": "/ca.pem", "headers": map[string]any{"X-Tenant": "acme"}}), "", func(t *testing.T, c webhook.Config) {
			if c.Timeout != 3*time.Second || c.Concurrency != 2 || c.CAFile != "/ca.pem" || c.Headers["X-Tenant"] != "acme" {
				t.Errorf("decoded %+v", c)
			}
		}},
		{"loopback http", map[string]any{"url": "http://127.0.0.1:8080/h", "secret_file": "/s"}, "", nil},
		{"localhost http", map[string]any{"url": "http://localhost/h", "secret_file": "/s"}, "", nil},
		{"ipv6 loopback http", map[string]any{"url": "http://[::1]:9/h", "secret_file": "/s"}, "", nil},
		{"unknown key", ok(map[string]any{"retries": 3}), "sink.webhook.retries: unknown key", nil},
		{"http to a remote host", ok(map[string]any{"url": "http://crm.example.com/hook"}), "sink.webhook.url: http is only allowed to a loopback host", nil},
		{"http to a private address", ok(map[string]any{"url": "http://10.0.0.5/hook"}), "sink.webhook.url: http is only allowed", nil},
		{"ftp", ok(map[string]any{"url": "ftp://crm.example.com/"}), "sink.webhook.url: scheme", nil},
		{"no url", map[string]any{"secret_env": "X"}, "sink.webhook.url: is required", nil},
		{"no host", ok(map[string]any{"url": "https:///path"}), "sink.webhook.url: has no host", nil},
		{"no secret", map[string]any{"url": "https://crm.example.com/"}, "sink.webhook.secret_env:", nil},
		{"two secrets", ok(map[string]any{"secret_file": "/s"}), "sink.webhook: set one of", nil},
		{"bad timeout", ok(map[string]any{"timeout": "soon"}), "sink.webhook.timeout:", nil},
		{"negative timeout", ok(map[string]any{"timeout": "-1s"}), "sink.webhook.timeout:", nil},
		{"bad concurrency", ok(map[string]any{"concurrency": "many"}), "sink.webhook.concurrency:", nil},
		{"reserved header", ok(map[string]any{"headers": map[string]any{"webhook-signature": "x"}}), "sink.webhook.headers.webhook-signature:", nil},
		{"header with newline", ok(map[string]any{"headers": map[string]any{"X-A": "a\r\nB: c"}}), "sink.webhook.headers.X-A:", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := webhook.ParseSettings(tt.settings)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSettings() error = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSettings() error: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestSecretSources(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(specSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("MAILSYNC_TEST_WH", specSecret)
	t.Setenv("MAILSYNC_TEST_EMPTY", "")

	for _, cfg := range []webhook.Config{
		{URL: r.URL(), SecretFile: file},
		{URL: r.URL(), SecretEnv: "MAILSYNC_TEST_WH"},
	} {
		c := newClient(t, cfg)
		if _, err := sink.DeliverOne(ctx(t), c, sinktest.Message("src-"+cfg.SecretEnv, 10)); err != nil {
			t.Errorf("Deliver() with secret from %+v: %v", cfg, err)
		}
	}
	for _, tt := range []struct {
		cfg  webhook.Config
		want string
	}{
		{webhook.Config{URL: r.URL(), SecretFile: filepath.Join(dir, "missing")}, "sink.webhook.secret_file:"},
		{webhook.Config{URL: r.URL(), SecretFile: empty}, "sink.webhook.secret_file: secret is empty"},
		{webhook.Config{URL: r.URL(), SecretEnv: "MAILSYNC_TEST_UNSET_VAR"}, "sink.webhook.secret_env: environment variable MAILSYNC_TEST_UNSET_VAR is not set"},
		{webhook.Config{URL: r.URL(), SecretEnv: "MAILSYNC_TEST_EMPTY"}, "sink.webhook.secret_env: secret is empty"},
	} {
		if _, err := webhook.New(tt.cfg); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%v) error = %v, want prefix %q", tt.cfg, err, tt.want)
		}
	}
}

func TestRegistered(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	t.Setenv("MAILSYNC_TEST_WH", specSecret)
	s, err := sink.Open(context.Background(), "webhook", map[string]any{"url": r.URL(), "secret_env": "MAILSYNC_TEST_WH", "timeout": "5s"}, sink.Deps{})
	if err != nil {
		t.Fatalf("sink.Open(webhook) error: %v", err)
	}
	defer s.Close()
	if _, err := sink.DeliverOne(ctx(t), s, sinktest.Message("reg", 10)); err != nil {
		t.Fatalf("Deliver() error: %v", err)
	}
	r.WaitFor(t, 1, 5*time.Second)
	if _, err := sink.Open(context.Background(), "webhook", map[string]any{"url": "http://crm.example.com/", "secret_env": "MAILSYNC_TEST_WH"}, sink.Deps{}); err == nil {
		t.Error("sink.Open(webhook) accepted http to a remote host")
	}
}
