package salesforce_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/salesforce/salesforcetest"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

// BenchmarkDeliverAtDefaultRate measures new messages logged per second
// with the limiter at its default (5 requests/s), batches of 250 over
// three days of mail, against the validated fake.
func BenchmarkDeliverAtDefaultRate(b *testing.B) {
	fake := salesforcetest.Start(b)
	tok := filepath.Join(b.TempDir(), "token")
	os.WriteFile(tok, []byte(salesforcetest.Token), 0o600)
	s, err := sink.Open(context.Background(), "salesforce", map[string]any{"instance_url": fake.URL, "token_file": tok}, sink.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 1000
	ms := sinktest.Messages("bench", n, 4<<10)
	for i, m := range ms {
		m.Date = time.Date(2025, 3, 10+i/400, 9, 0, i, 0, time.UTC)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i += 250 {
		for _, r := range s.Deliver(context.Background(), ms[i:i+250]) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
}
