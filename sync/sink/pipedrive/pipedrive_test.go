package pipedrive_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/pipedrive"
	"github.com/mailsync/mailsync/sync/sink/pipedrive/pipedrivetest"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

func open(t *testing.T, fake *pipedrivetest.Server, kv sink.KV, rate float64) (*pipedrive.Client, string) {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(pipedrivetest.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := sink.Open(context.Background(), "pipedrive", map[string]any{
		"base_url": fake.URL, "api_token_file": tok, "requests_per_second": rate, "burst": 10,
	}, sink.Deps{KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*pipedrive.Client), tok
}

func TestContract(t *testing.T) {
	sinktest.RunContract(t, func(t *testing.T) (sink.Sink, sinktest.Inspect) {
		fake := pipedrivetest.Start(t)
		c, _ := open(t, fake, nil, 500)
		return c, func(t *testing.T) map[string]int { return fake.Markers() }
	})
}

func TestDirectory(t *testing.T) {
	fake := pipedrivetest.Start(t)
	org := fake.AddOrg("Contoso")
	ada := fake.AddPerson("Ada Liu", org, "ada@contoso.example")
	open1 := fake.AddDeal("Renewal", "open", ada, 0)
	fake.AddDeal("Old", "won", ada, org)
	orgDeal := fake.AddDeal("Expansion", "open", 0, org)
	c, _ := open(t, fake, nil, 500)
	ctx := t.Context()
	got, err := c.LookupEmails(ctx, []string{"ada@contoso.example", "nobody@contoso.example"})
	if err != nil {
		t.Fatal(err)
	}
	recs := got["ada@contoso.example"]
	if len(recs) != 1 || len(got) != 1 {
		t.Fatalf("LookupEmails = %+v, want one person", got)
	}
	r := recs[0]
	if r.Kind != sink.KindContact || r.ID != strconv.Itoa(ada) || r.Company != strconv.Itoa(org) || r.CompanyName != "Contoso" {
		t.Errorf("record = %+v", r)
	}
	if len(r.Deals) != 2 || r.Deals[0].ID != strconv.Itoa(open1) || r.Deals[1].ID != strconv.Itoa(orgDeal) {
		t.Errorf("deals = %+v, want the open deals of the person and the org", r.Deals)
	}
	doms, err := c.LookupDomains(ctx, []string{"contoso.example", "other.example"})
	if err != nil {
		t.Fatal(err)
	}
	if d := doms["contoso.example"]; len(d) != 1 || d[0].Kind != sink.KindCompany || d[0].ID != strconv.Itoa(org) || len(d[0].Deals) != 1 {
		t.Errorf("LookupDomains = %+v", doms)
	}
	if err := c.Check(ctx); err != nil {
		t.Errorf("Check() = %v", err)
	}
}

// TestLostStateNoDuplicate: a new, empty KV (the state file is gone) finds
// the activities by their marker in the day's list and creates none.
func TestLostStateNoDuplicate(t *testing.T) {
	fake := pipedrivetest.Start(t)
	ms := sinktest.Messages("lost", 30, 2<<10)
	for i, m := range ms {
		m.Date = time.Date(2025, 3, 10+i%3, 9, i, 0, 0, time.UTC)
	}
	c1, _ := open(t, fake, &sink.MemoryKV{}, 500)
	first := c1.Deliver(t.Context(), ms)
	c2, _ := open(t, fake, &sink.MemoryKV{}, 500)
	posts := fake.Calls("POST /activities")
	again := c2.Deliver(t.Context(), ms)
	for i := range ms {
		if first[i].Err != nil || again[i].Err != nil || first[i].Receipt.Activity != again[i].Receipt.Activity {
			t.Errorf("message %d: first %+v, after lost state %+v", i, first[i], again[i])
		}
	}
	if got := fake.Calls("POST /activities"); got != posts {
		t.Errorf("POST /activities after lost state: %d more, want 0", got-posts)
	}
	if got := fake.Calls("GET /activities"); got < 2*3 || got > 2*3 {
		t.Errorf("GET /activities = %d, want one per day per delivery (6)", got)
	}
	for k, n := range fake.Markers() {
		if n != 1 {
			t.Errorf("key %s logged %d times", k, n)
		}
	}
}

// TestRateLimitObeyed: the fake allows 10 requests per second. Paced
// below that, the adapter never reaches it; paced far above it, it stops
// when x-ratelimit-remaining reaches 0 and waits x-ratelimit-reset, so it
// still gets no 429, and loses nothing either way. (429s themselves are
// TestErrors'.)
func TestRateLimitObeyed(t *testing.T) {
	for _, c := range []struct {
		name    string
		rate    float64
		want429 bool
	}{{"below", 4, false}, {"above", 100, false}} {
		t.Run(c.name, func(t *testing.T) {
			fake := pipedrivetest.Start(t)
			fake.SetRateLimit(10, time.Second)
			cl, _ := open(t, fake, nil, c.rate)
			ms := sinktest.Messages("rate-"+c.name, 12, 1<<10)
			for _, r := range cl.Deliver(t.Context(), ms) {
				if r.Err != nil {
					t.Fatalf("Deliver: %v", r.Err)
				}
			}
			if got := fake.Limited() > 0; got != c.want429 {
				t.Errorf("got 429s: %d, want some: %v", fake.Limited(), c.want429)
			}
			if got := len(fake.Markers()); got != len(ms) {
				t.Errorf("%d activities, want %d", got, len(ms))
			}
		})
	}
}

func TestErrors(t *testing.T) {
	fake := pipedrivetest.Start(t)
	c, tok := open(t, fake, nil, 500)
	m := sinktest.Message("err-1", 1<<10)

	fake.FailNext(503)
	if _, err := sink.DeliverOne(t.Context(), c, m); err == nil || sink.IsPermanent(err) {
		t.Errorf("on 503: %v, want a transient error", err)
	}
	fake.FailNext(429, 429, 429, 429, 429, 429)
	_, err := sink.DeliverOne(t.Context(), c, m)
	if d, ok := sink.RetryAfter(err); !ok || d <= 0 {
		t.Errorf("on a 429 storm: %v, want a RetryAfterError", err)
	}
	fake.FailNext(400)
	if _, err := sink.DeliverOne(t.Context(), c, m); !sink.IsPermanent(err) {
		t.Errorf("on 400: %v, want permanent", err)
	}

	// A revoked token holds deliveries; a new token in the file is picked
	// up on the next 401 without a restart.
	fake.SetToken("rotated-token-9876")
	if _, err := sink.DeliverOne(t.Context(), c, m); !errors.Is(err, pipedrive.ErrUnauthorized) || sink.IsPermanent(err) {
		t.Errorf("with a revoked token: %v, want transient ErrUnauthorized", err)
	}
	if err := c.Check(t.Context()); !errors.Is(err, pipedrive.ErrUnauthorized) {
		t.Errorf("Check with a revoked token = %v", err)
	}
	if err := os.WriteFile(tok, []byte("rotated-token-9876"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.DeliverOne(t.Context(), c, m); err != nil {
		t.Errorf("after the token file was fixed: %v", err)
	}
	if got := fake.Markers()[m.Key]; got != 1 {
		t.Errorf("err-1 logged %d times, want 1", got)
	}
}

func TestUnlinked(t *testing.T) {
	fake := pipedrivetest.Start(t)
	c, _ := open(t, fake, nil, 500)
	if keys, err := c.Unlinked(t.Context()); err != nil || len(keys) != 0 {
		t.Fatalf("first Unlinked = %v, %v", keys, err)
	}
	ms := sinktest.Messages("unl", 3, 1<<10)
	res := c.Deliver(t.Context(), ms)
	id := atoi(t, res[1].Receipt.Activity)
	time.Sleep(1100 * time.Millisecond) // Pipedrive's timestamps have seconds
	fake.DeleteActivity(id)
	keys, err := c.Unlinked(t.Context())
	if err != nil || len(keys) != 1 || keys[0] != ms[1].Key {
		t.Fatalf("Unlinked = %v, %v; want [%s]", keys, err, ms[1].Key)
	}
	if err := c.AckUnlinked(t.Context(), keys); err != nil {
		t.Fatal(err)
	}
}
