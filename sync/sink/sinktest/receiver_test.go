package sinktest_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
	"github.com/mailsync/mailsync/sync/sink/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func client(t *testing.T, r *sinktest.Receiver) *webhook.Client {
	t.Helper()
	sec, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := webhook.New(webhook.Config{URL: r.URL(), Secret: sec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestReceiverScript(t *testing.T) {
	r := sinktest.NewReceiver(t, secret)
	r.Script(sinktest.Step{Status: 500, Times: 2}, sinktest.Step{Status: 429, RetryAfter: 3 * time.Second})
	c := client(t, r)
	ctx := context.Background()
	m := sinktest.Message("scripted", 200)
	for i := range 3 {
		if _, err := sink.DeliverOne(ctx, c, m); err == nil {
			t.Fatalf("attempt %d succeeded, want the scripted failure", i+1)
		}
	}
	got, err := sink.DeliverOne(ctx, c, m)
	if err != nil || got.Activity != "act-1" {
		t.Fatalf("attempt 4 = %q, %v, want act-1", got.Activity, err)
	}
	if again, err := sink.DeliverOne(ctx, c, m); err != nil || again.Activity != got.Activity {
		t.Errorf("duplicate = %q, %v, want the same id %q", again.Activity, err, got.Activity)
	}
	var statuses []int
	for _, q := range r.Requests() {
		statuses = append(statuses, q.Status)
		if q.ID != m.Key || q.Time.IsZero() {
			t.Errorf("request %+v, want id %s and a time", q, m.Key)
		}
	}
	if got, want := statuses, []int{500, 500, 429, 200, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	if reqs := r.Requests(); !reqs[0].Scripted || reqs[3].Scripted || !reqs[4].Duplicate {
		t.Errorf("request flags = %+v", reqs)
	}
	if r.Duplicates() != 1 || len(r.Messages()) != 1 || r.Keys()[m.Key] != 1 {
		t.Errorf("duplicates %d, messages %d, keys %v; want 1, 1, {%s:1}", r.Duplicates(), len(r.Messages()), r.Keys(), m.Key)
	}
}

func TestReceiverRejectsBadSignatures(t *testing.T) {
	r := sinktest.NewReceiver(t, secret)
	sec, _ := webhook.ParseSecret(secret)
	body, _ := jsonl.Marshal(sinktest.Message("k", 10))
	now := time.Now().Unix()
	post := func(id string, ts int64, sig string) int {
		req, _ := http.NewRequest(http.MethodPost, r.URL(), bytes.NewReader(body))
		req.Header.Set("Webhook-Id", id)
		req.Header.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("Webhook-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	stale := now - int64(sinktest.Tolerance/time.Second) - 60
	for _, tt := range []struct {
		name string
		id   string
		ts   int64
		sig  string
		want int
	}{
		{"garbage signature", "k", now, "v1,AAAA", 401},
		{"stale timestamp", "k", stale, webhook.Sign(sec, "k", stale, body), 401},
		{"id not the key", "other", now, webhook.Sign(sec, "other", now, body), 400},
		{"valid", "k", now, webhook.Sign(sec, "k", now, body), 200},
	} {
		if got := post(tt.id, tt.ts, tt.sig); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	if got := r.BadSignatures(); got != 2 {
		t.Errorf("BadSignatures() = %d, want 2", got)
	}
	r.WaitFor(t, 1, 5*time.Second)
}

func TestReceiverDelayEndsWithClient(t *testing.T) {
	r := sinktest.NewReceiver(t, secret)
	r.Script(sinktest.Step{Delay: 10 * time.Second})
	c := client(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := sink.DeliverOne(ctx, c, sinktest.Message("slow", 10)); err == nil || sink.IsPermanent(err) {
		t.Fatalf("Deliver() to a delayed receiver = %v, want a transient error", err)
	}
	// The next request is not delayed and succeeds.
	if _, err := sink.DeliverOne(context.Background(), c, sinktest.Message("slow", 10)); err != nil {
		t.Fatalf("Deliver() after the delay step: %v", err)
	}
}

func TestBodySize(t *testing.T) {
	for _, size := range []int{1 << 10, 27 << 10, 200 << 10} {
		b := sinktest.Body(1, size)
		if len(b) < size-200 || len(b) > size+200 {
			t.Errorf("Body(%d) has %d bytes", size, len(b))
		}
		if !bytes.HasSuffix(b, []byte("--b1--\r\n")) {
			t.Errorf("Body(%d) does not end with the closing boundary", size)
		}
	}
}
