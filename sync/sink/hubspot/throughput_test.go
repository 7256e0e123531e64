package hubspot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/hubspot/hubspottest"
)

// TestThroughputAtDocumentedLimit logs messages a second at the default
// pace against a fake that enforces HubSpot's documented limits for Free
// and Starter apps (100 requests per 10 s, 5 searches a second): per
// batch of 100 one search and one create, plus the directory look-ups of
// 100 new addresses and 100 new domains (search, associations, deals).
// It fails if the pace ever draws a 429.
func TestThroughputAtDocumentedLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("paces for several seconds; skipped in -short mode")
	}
	w := newWorld(t, hubspottest.Options{PerTenSeconds: 100, SearchPerSecond: 5})
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte(w.fake.Token()), 0o600)
	s, err := sink.Open(context.Background(), "hubspot", map[string]any{"base_url": w.fake.URL(), "token_file": tok}, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.(interface {
		sink.Sink
		LookupEmails(context.Context, []string) (map[string][]sink.Record, error)
		LookupDomains(context.Context, []string) (map[string][]sink.Record, error)
	})
	const batches = 12
	start := time.Now()
	for b := range batches {
		emails, domains := make([]string, 100), make([]string, 100)
		ms := make([]*sink.Message, 100)
		for i := range ms {
			emails[i] = fmt.Sprintf("p%d-%d@acme-customer.example", b, i)
			domains[i] = fmt.Sprintf("d%d-%d.example", b, i)
			ms[i] = matched(w, fmt.Sprintf("msg_tp_%d_%d", b, i))
		}
		emails[0] = "jane@acme-customer.example"
		if _, err := c.LookupEmails(ctx(t), emails); err != nil {
			t.Fatal(err)
		}
		if _, err := c.LookupDomains(ctx(t), domains); err != nil {
			t.Fatal(err)
		}
		for _, r := range c.Deliver(ctx(t), ms) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	took := time.Since(start)
	calls := w.fake.Calls()
	for _, call := range calls {
		if call.Status == 429 {
			t.Fatalf("the pace drew a 429: %+v", call)
		}
	}
	t.Logf("%d messages with look-ups in %s: %.0f msgs/s, %d requests (%.1f/s)", batches*100, took.Round(time.Millisecond),
		float64(batches*100)/took.Seconds(), len(calls), float64(len(calls))/took.Seconds())
}
