package webhook_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
	"github.com/mailsync/mailsync/sync/sink/webhook"
)

func newClient(t *testing.T, cfg webhook.Config) *webhook.Client {
	t.Helper()
	if cfg.Secret.IsZero() && cfg.SecretEnv == "" && cfg.SecretFile == "" {
		cfg.Secret = mustSecret(t, specSecret)
	}
	c, err := webhook.New(cfg)
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestContract(t *testing.T) {
	sinktest.RunContract(t, func(t *testing.T) (sink.Sink, sinktest.Inspect) {
		r := sinktest.NewReceiver(t, specSecret)
		return newClient(t, webhook.Config{URL: r.URL()}), r.Inspect
	})
}

func TestDeliverSendsSignedMessage(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	c := newClient(t, webhook.Config{URL: r.URL()})
	m := sinktest.Message("signed-1", 5000)
	got, err := sink.DeliverOne(ctx(t), c, m)
	if err != nil {
		t.Fatalf("Deliver() error: %v", err)
	}
	if got.Activity != "act-1" {
		t.Errorf("receipt = %q, want the body's id act-1", got.Activity)
	}
	arr := r.Messages()
	if len(arr) != 1 {
		t.Fatalf("receiver got %d messages, want 1", len(arr))
	}
	if a := arr[0].Message; a.Key != m.Key || string(a.Body) != string(m.Body) || a.Subject != m.Subject {
		t.Errorf("receiver got %q/%q, want the message as sent", a.Key, a.Subject)
	}
	if r.BadSignatures() != 0 {
		t.Errorf("receiver rejected %d signatures", r.BadSignatures())
	}
}

// TestWrongSecretHoldsAndWaits: a refused signature is the sink's
// configuration, not the message's fault, so it must not dead-letter
// mail: it is transient with a long wait, and says why.
func TestWrongSecretHoldsAndWaits(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	c := newClient(t, webhook.Config{URL: r.URL(), Secret: mustSecret(t, "another-secret")})
	_, err := sink.DeliverOne(ctx(t), c, sinktest.Message("k", 100))
	after, ok := sink.RetryAfter(err)
	if sink.IsPermanent(err) || !ok || after < time.Minute || !errors.Is(err, webhook.ErrUnauthorized) || !strings.Contains(err.Error(), "401") {
		t.Errorf("Deliver() with a wrong secret error = %v, want a transient 401 wrapping ErrUnauthorized with a long wait", err)
	}
	if got := r.BadSignatures(); got != 1 {
		t.Errorf("receiver counted %d bad signatures, want 1", got)
	}
	if len(r.Keys()) != 0 {
		t.Error("receiver accepted a badly signed message")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		step      sinktest.Step
		permanent bool
		after     time.Duration // want a RetryAfterError with about this wait
	}{
		{"500", sinktest.Step{Status: 500}, false, 0},
		{"502", sinktest.Step{Status: 502}, false, 0},
		{"429 seconds", sinktest.Step{Status: 429, RetryAfter: 2 * time.Second}, false, 2 * time.Second},
		{"503 seconds", sinktest.Step{Status: 503, RetryAfter: 7 * time.Second}, false, 7 * time.Second},
		{"429 date", sinktest.Step{Status: 429, RetryAfter: 30 * time.Second, RetryAfterDate: true}, false, 30 * time.Second},
		{"429 capped", sinktest.Step{Status: 429, RetryAfter: 48 * time.Hour}, false, webhook.MaxRetryAfter},
		{"429 without Retry-After", sinktest.Step{Status: 429}, false, 0},
		{"408", sinktest.Step{Status: 408}, false, 0},
		{"409", sinktest.Step{Status: 409}, false, 0},
		{"400", sinktest.Step{Status: 400, Body: `{"error":"bad field"}`}, true, 0},
		{"401", sinktest.Step{Status: 401}, false, 5 * time.Minute},
		{"403", sinktest.Step{Status: 403}, false, 5 * time.Minute},
		{"404", sinktest.Step{Status: 404}, true, 0},
		{"410", sinktest.Step{Status: 410}, true, 0},
		{"413", sinktest.Step{Status: 413}, true, 0},
		{"422", sinktest.Step{Status: 422}, true, 0},
		{"301", sinktest.Step{Status: 301}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sinktest.NewReceiver(t, specSecret)
			r.Script(tt.step)
			c := newClient(t, webhook.Config{URL: r.URL()})
			_, err := sink.DeliverOne(ctx(t), c, sinktest.Message("classify", 100))
			if err == nil {
				t.Fatal("Deliver() succeeded, want an error")
			}
			if got := sink.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			after, ok := sink.RetryAfter(err)
			if tt.after == 0 {
				if ok {
					t.Errorf("RetryAfter(%v) = %v, want none", err, after)
				}
			} else if !ok || after < tt.after-time.Second || after > tt.after {
				// An HTTP-date has whole seconds, so allow one second of clock.
				t.Errorf("RetryAfter(%v) = %v, %v, want about %v", err, after, ok, tt.after)
			}
			if !strings.Contains(err.Error(), tt.name[:3]) {
				t.Errorf("error %q does not name the status %s", err, tt.name[:3])
			}
			if tt.step.Body != "" && !strings.Contains(err.Error(), "bad field") {
				t.Errorf("error %q does not quote the response body", err)
			}
			if n := len(r.Requests()); n != 1 {
				t.Errorf("receiver saw %d requests, want 1 (one attempt, no redirect follow)", n)
			}
		})
	}
}

func TestErrorQuotesAtMost200Bytes(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	r.Script(sinktest.Step{Status: 400, Body: strings.Repeat("x", 1000)})
	c := newClient(t, webhook.Config{URL: r.URL()})
	_, err := sink.DeliverOne(ctx(t), c, sinktest.Message("k", 10))
	if n := strings.Count(err.Error(), "x"); n < 200 || n > 201 {
		t.Errorf("error quotes %d bytes of the body, want 200: %v", n, err)
	}
}

func TestReceiptSources(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"header", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Activity-Id", "ACT-9")
			w.Write([]byte(`{"id":"body-id"}`))
		}, "ACT-9"},
		{"json string id", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"id":"a-1","ok":true}`)) }, "a-1"},
		{"json number id", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"id":12345}`)) }, "12345"},
		{"plain body", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(202); w.Write([]byte("queued")) }, "http:202"},
		{"no body", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, "http:204"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			c := newClient(t, webhook.Config{URL: srv.URL})
			got, err := sink.DeliverOne(ctx(t), c, sinktest.Message("k", 10))
			if err != nil || got.Activity != tt.want {
				t.Errorf("Deliver() = %q, %v, want %q", got.Activity, err, tt.want)
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	t.Cleanup(srv.Close)
	c := newClient(t, webhook.Config{URL: srv.URL, Headers: map[string]string{"x-tenant": "acme"}})
	if _, err := sink.DeliverOne(ctx(t), c, sinktest.Message("hdr-key", 10)); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"Webhook-Id": "hdr-key", "Content-Type": "application/json", "X-Tenant": "acme", "User-Agent": "mailsync"} {
		if got.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, got.Get(k), want)
		}
	}
	if got.Get("Webhook-Timestamp") == "" || !strings.HasPrefix(got.Get("Webhook-Signature"), "v1,") {
		t.Errorf("missing Standard Webhooks headers: %v", got)
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	r.SetDelay(10 * time.Second) // ends early when the client hangs up
	c := newClient(t, webhook.Config{URL: r.URL(), Timeout: 100 * time.Millisecond})
	_, err := sink.DeliverOne(ctx(t), c, sinktest.Message("slow", 10))
	if err == nil || sink.IsPermanent(err) {
		t.Fatalf("Deliver() to a stalled CRM error = %v, want a transient error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if _, ok := sink.RetryAfter(err); ok {
		t.Errorf("timeout error %v carries a RetryAfter", err)
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, webhook.Config{URL: "http://" + addr + "/hook?token=tok-hunter2"})
	_, err = sink.DeliverOne(ctx(t), c, sinktest.Message("k", 10))
	if err == nil || sink.IsPermanent(err) {
		t.Fatalf("Deliver() to a closed port error = %v, want a transient error", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the host %s", err, addr)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "/hook") {
		t.Errorf("error %q shows the URL's path or query", err)
	}
}

func TestSecretNeverInErrors(t *testing.T) {
	const secret = "raw-hunter2-secret"
	// A CRM that echoes everything back, the secret included.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(400)
		w.Write([]byte("bad signature for key " + secret))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, webhook.Config{URL: srv.URL + "/p?sig=hunter2", Secret: mustSecret(t, secret)})
	_, err := sink.DeliverOne(ctx(t), c, sinktest.Message("k", 10))
	if err == nil {
		t.Fatal("Deliver() succeeded, want an error")
	}
	var all []string
	all = append(all, err.Error())
	t.Setenv("WEBHOOK_TEST_SECRET", "whsec_!!hunter2!!")
	if _, err := webhook.New(webhook.Config{URL: srv.URL, SecretEnv: "WEBHOOK_TEST_SECRET"}); err == nil {
		t.Error("New() with a malformed whsec secret succeeded")
	} else {
		all = append(all, err.Error())
	}
	for _, s := range []any{c} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			all = append(all, fmt.Sprintf(verb, s))
		}
	}
	for _, s := range all {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret leaked: %s", s)
		}
	}
}

func TestDeliverBatchConcurrency(t *testing.T) {
	const conc, n = 4, 12
	var inflight, peak atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
		}
		if cur == conc {
			once.Do(func() { close(release) })
		}
		select { // hold requests until conc are in flight at once, or 3s
		case <-release:
		case <-time.After(3 * time.Second):
		}
		w.Write([]byte(`{"id":"` + r.Header.Get("Webhook-Id") + `"}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, webhook.Config{URL: srv.URL, Concurrency: conc})
	ms := sinktest.Messages("conc", n, 100)
	res := c.Deliver(ctx(t), ms)
	for i, r := range res {
		if r.Err != nil || r.Receipt.Activity != ms[i].Key {
			t.Errorf("result %d = (%q, %v), want (%q, nil)", i, r.Receipt.Activity, r.Err, ms[i].Key)
		}
	}
	if got := peak.Load(); got != conc {
		t.Errorf("peak requests in flight = %d, want %d", got, conc)
	}
}

func TestDeliverBatchCancel(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	r.SetDelay(10 * time.Second)
	c := newClient(t, webhook.Config{URL: r.URL(), Concurrency: 2})
	cctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := c.Deliver(cctx, sinktest.Messages("cancel", 6, 100))
	for i, r := range res {
		if !errors.Is(r.Err, context.Canceled) || sink.IsPermanent(r.Err) {
			t.Errorf("result %d error = %v, want a transient context.Canceled", i, r.Err)
		}
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("DeliverBatch took %v after cancel, want it to stop", d)
	}
}

func TestPrivateCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"id":"tls-1"}`)) }))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, webhook.Config{URL: srv.URL, CAFile: caFile})
	if got, err := sink.DeliverOne(ctx(t), c, sinktest.Message("k", 10)); err != nil || got.Activity != "tls-1" {
		t.Errorf("Deliver() with ca_file = %q, %v, want tls-1", got.Activity, err)
	}
	// Without the CA the certificate is not trusted: verification is on.
	c = newClient(t, webhook.Config{URL: srv.URL})
	if _, err := sink.DeliverOne(ctx(t), c, sinktest.Message("k", 10)); err == nil {
		t.Error("Deliver() to an untrusted certificate succeeded")
	}
	if _, err := webhook.New(webhook.Config{URL: srv.URL, CAFile: filepath.Join(t.TempDir(), "none.pem"), Secret: mustSecret(t, "s")}); err == nil || !strings.Contains(err.Error(), "sink.webhook.ca_file") {
		t.Errorf("New() with a missing ca_file error = %v, want it to name sink.webhook.ca_file", err)
	}
}

func TestCloseStopsDeliveries(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	c := newClient(t, webhook.Config{URL: r.URL()})
	c.Close()
	if _, err := sink.DeliverOne(ctx(t), c, sinktest.Message("k", 10)); !errors.Is(err, webhook.ErrClosed) {
		t.Errorf("Deliver() after Close error = %v, want ErrClosed", err)
	}
}

// TestBatchStopsAfterTransientFailure: once the CRM answers 429 inside a
// batch, the requests not yet started are not sent, so Retry-After is
// honoured for the whole batch.
func TestBatchStopsAfterTransientFailure(t *testing.T) {
	r := sinktest.NewReceiver(t, specSecret)
	r.Script(sinktest.Step{Status: 200, Times: 2}, sinktest.Step{Status: 429, RetryAfter: 3 * time.Second})
	c := newClient(t, webhook.Config{URL: r.URL(), Concurrency: 1})
	res := c.Deliver(ctx(t), sinktest.Messages("b", 6, 100))
	for i, want := range []bool{true, true, false, false, false, false} {
		if got := res[i].Err == nil; got != want {
			t.Errorf("result %d delivered = %v, want %v (err %v)", i, got, want, res[i].Err)
		}
	}
	if got := len(r.Requests()); got != 3 {
		t.Errorf("receiver saw %d requests, want 3 (nothing after the 429)", got)
	}
	if d, ok := sink.RetryAfter(res[5].Err); !ok || d < 2*time.Second {
		t.Errorf("unsent messages carry RetryAfter %v, %v; want the CRM's 3s", d, ok)
	}
}
