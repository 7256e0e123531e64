package worker_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
	_ "github.com/mailsync/mailsync/sync/sink/webhook"
)

// TestWebhookOutage: the CRM answers 500 for a while, then 429 with
// Retry-After, then 200. Nothing is lost, Retry-After is honoured, and the
// cursor never passes a UID the CRM has not acknowledged.
func TestWebhookOutage(t *testing.T) {
	srv := dovecottest.Start(t)
	const n = 30
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", generate(21, n, "alice"))

	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	recv := sinktest.NewReceiver(t, secret)
	recv.Script(
		sinktest.Step{Status: http.StatusInternalServerError, Times: 12},
		sinktest.Step{Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second, Times: 1},
	)
	secretFile := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, srv, rigOptions{
		accounts: map[string]string{"alice": dovecottest.DefaultUser}, folders: []string{"inbox"},
		sinkYAML: fmt.Sprintf("sink: {type: webhook, webhook: {url: %q, secret_file: %q, concurrency: 1}}\n", recv.URL(), secretFile),
		extra:    "sync: {retry_min: 100ms, retry_max: 400ms, batch_size: 10, shutdown_grace: 5s}\n",
	})
	r.start()

	// While the CRM is failing, sample the cursor: it must never pass the
	// first UID the receiver has not accepted.
	deadline := time.Now().Add(60 * time.Second)
	for len(recv.Keys()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages arrived", len(recv.Keys()), n)
		}
		// The cursor first, then what was accepted (which only grows):
		// read the other way round, an acceptance and its commit between
		// the two reads would look like a cursor ahead of the CRM.
		cur := r.cursor("alice", "INBOX").LastUID
		accepted := len(recv.Messages())
		// Messages arrive in UID order with concurrency 1, so `accepted`
		// is also the highest acknowledged UID the cursor may reach.
		if int(cur) > accepted {
			t.Fatalf("cursor at %d but only %d messages acknowledged", cur, accepted)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, 10*time.Second, "cursor at the end", func() bool { return r.cursor("alice", "INBOX").LastUID == n })
	r.stop()

	for k, c := range recv.Keys() {
		if c != 1 {
			t.Errorf("key %s accepted %d times", k, c)
		}
	}
	if bad := recv.BadSignatures(); bad != 0 {
		t.Errorf("%d requests had bad signatures", bad)
	}
	// Retry-After: the request after the 429 came at least 2s later.
	reqs := recv.Requests()
	var saw429 bool
	for i, q := range reqs {
		if q.Status == http.StatusTooManyRequests {
			saw429 = true
			if i+1 >= len(reqs) {
				t.Fatal("no request after the 429")
			}
			if gap := reqs[i+1].Time.Sub(q.Time); gap < 2*time.Second {
				t.Errorf("next request %s after the 429, want >= 2s (Retry-After)", gap)
			}
		}
	}
	if !saw429 {
		t.Fatal("script did not reach the 429 step")
	}
	var failed int
	for _, q := range reqs {
		if q.Status >= 500 {
			failed++
		}
	}
	if failed != 12 {
		t.Errorf("receiver answered %d 5xx, want 12", failed)
	}
}
