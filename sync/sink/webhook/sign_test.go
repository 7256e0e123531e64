package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink/webhook"
)

// The Standard Webhooks spec's example (standard-webhooks/spec, "Signature
// scheme"), which every implementation checks itself against.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(t testing.TB, s string) webhook.Secret {
	t.Helper()
	sec, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret() error: %v", err)
	}
	return sec
}

func TestSignSpecVector(t *testing.T) {
	sec := mustSecret(t, specSecret)
	if got := webhook.Sign(sec, specID, specTimestamp, []byte(specBody)); got != specSignature {
		t.Fatalf("Sign() = %s, want %s", got, specSignature)
	}
}

func TestVerify(t *testing.T) {
	sec := mustSecret(t, specSecret)
	other := mustSecret(t, "whsec_"+"b3RoZXIgc2VjcmV0")
	tests := []struct {
		name   string
		id     string
		ts     int64
		body   string
		header string
		want   bool
	}{
		{"spec vector", specID, specTimestamp, specBody, specSignature, true},
		{"rotation list", specID, specTimestamp, specBody, "v1,Zm9v " + specSignature, true},
		{"body changed", specID, specTimestamp, specBody + " ", specSignature, false},
		{"id changed", specID + "x", specTimestamp, specBody, specSignature, false},
		{"timestamp changed", specID, specTimestamp + 1, specBody, specSignature, false},
		{"other key", specID, specTimestamp, specBody, webhook.Sign(other, specID, specTimestamp, []byte(specBody)), false},
		{"no version", specID, specTimestamp, specBody, strings.TrimPrefix(specSignature, "v1,"), false},
		{"empty", specID, specTimestamp, specBody, "", false},
	}
	for _, tt := range tests {
		if got := webhook.Verify(sec, tt.id, tt.ts, []byte(tt.body), tt.header); got != tt.want {
			t.Errorf("%s: Verify() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseSecret(t *testing.T) {
	raw := mustSecret(t, "plain-secret\n")
	if got, want := webhook.Sign(raw, "i", 1, nil), webhook.Sign(mustSecret(t, "plain-secret"), "i", 1, nil); got != want {
		t.Error("a trailing newline changed the raw secret")
	}
	if webhook.Sign(raw, "i", 1, nil) != webhook.Sign(mustSecret(t, "whsec_cGxhaW4tc2VjcmV0"), "i", 1, nil) {
		t.Error("whsec_<base64 of plain-secret> should sign like the raw plain-secret")
	}
	for _, bad := range []string{"", "  \n", "whsec_", "whsec_not*base64!hunter2"} {
		_, err := webhook.ParseSecret(bad)
		if err == nil {
			t.Errorf("ParseSecret(%q) succeeded, want an error", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseSecret error %q contains the secret", err)
		}
	}
}

func TestSecretIsRedacted(t *testing.T) {
	const raw = "hunter2-very-secret"
	sec := mustSecret(t, raw)
	cfg := webhook.Config{
		URL:     "https://user:pw-hunter2@crm.example.com/hook/hunter2?token=hunter2",
		Secret:  sec,
		Headers: map[string]string{"Authorization": "Bearer hunter2"},
	}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&out, verb+"\n", sec)
		fmt.Fprintf(&out, verb+"\n", cfg)
		fmt.Fprintf(&out, verb+"\n", &cfg)
		fmt.Fprintf(&out, verb+"\n", struct{ C webhook.Config }{cfg})
	}
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		slog.New(h).Info("cfg", "config", cfg, "secret", sec)
	}
	b, _ := json.Marshal(cfg)
	out.Write(b)
	if strings.Contains(out.String(), "hunter2") || strings.Contains(out.String(), fmt.Sprintf("%x", raw)) {
		t.Fatalf("secret leaked:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "crm.example.com") {
		t.Errorf("config output lost the host:\n%s", out.String())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"2", 2 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"3600", time.Hour, true},
		{"3601", webhook.MaxRetryAfter, true},
		{"99999999999999999999999999", webhook.MaxRetryAfter, true},
		{"Fri, 14 Mar 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Friday, 14-Mar-25 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Fri Mar 14 12:00:05 2025", 5 * time.Second, true},   // asctime
		{"Fri, 14 Mar 2025 11:00:00 GMT", 0, true},            // past
		{"Sat, 15 Mar 2025 12:00:00 GMT", webhook.MaxRetryAfter, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"+5", 0, false},
	}
	for _, tt := range tests {
		got, ok := webhook.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "2", "120", "3601", "1e3", "-5", "Fri, 14 Mar 2025 12:00:30 GMT", "Friday, 14-Mar-25 12:01:00 GMT", "Fri Mar 14 12:00:05 2025", ""} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := webhook.ParseRetryAfter(v, now)
		if got < 0 || got > webhook.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v, outside [0, %v]", v, got, webhook.MaxRetryAfter)
		}
		if !ok && got != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v with ok=false", v, got)
		}
		if got%time.Second != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, not whole seconds", v, got)
		}
		again, ok2 := webhook.ParseRetryAfter(v, now)
		if again != got || ok2 != ok {
			t.Fatalf("ParseRetryAfter(%q) is not deterministic", v)
		}
	})
}
