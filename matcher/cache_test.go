package matcher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCacheTTLAndNegative(t *testing.T) {
	dir := newFakeDir()
	clk := &clock{now: time.Unix(1e9, 0)}
	c := matcher.NewCache(dir, matcher.CacheOptions{TTL: time.Minute, NegativeTTL: 10 * time.Second, Now: clk.Now})
	ctx := context.Background()
	lookup := func() map[string][]sink.Record {
		t.Helper()
		res, err := c.LookupEmails(ctx, []string{"alice@acme.com", "nobody@x.example"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := lookup()
	if len(res["alice@acme.com"]) != 1 || len(res) != 1 {
		t.Fatalf("first lookup = %v", res)
	}
	lookup()
	if e, _ := dir.calls(); e != 1 {
		t.Fatalf("calls after a warm lookup = %d, want 1", e)
	}
	clk.Add(11 * time.Second) // negative entry expired, positive not
	lookup()
	if got, want := dir.asked[len(dir.asked)-1], "nobody@x.example"; got != want || len(dir.asked) != 3 {
		t.Fatalf("after negative TTL asked %v, want only %q again", dir.asked, want)
	}
	clk.Add(time.Minute) // everything expired
	if res = lookup(); len(res["alice@acme.com"]) != 1 {
		t.Fatalf("after TTL: %v", res)
	}
	if e, _ := dir.calls(); e != 3 {
		t.Errorf("calls = %d, want 3", e)
	}
	st := c.Stats()
	if st.Hits != 3 || st.Misses != 5 || st.Calls != 3 {
		t.Errorf("Stats = %+v, want 3 hits, 5 misses, 3 calls", st)
	}
}

func TestCacheNegativeDisabled(t *testing.T) {
	dir := newFakeDir()
	c := matcher.NewCache(dir, matcher.CacheOptions{NegativeTTL: -1})
	for i := 0; i < 3; i++ {
		if _, err := c.LookupEmails(context.Background(), []string{"nobody@x.example"}); err != nil {
			t.Fatal(err)
		}
	}
	if e, _ := dir.calls(); e != 3 {
		t.Errorf("calls = %d, want 3 without negative caching", e)
	}
}

func TestCacheBatchesMisses(t *testing.T) {
	dir := newFakeDir()
	c := matcher.NewCache(dir, matcher.CacheOptions{})
	ctx := context.Background()
	if _, err := c.LookupEmails(ctx, []string{"alice@acme.com"}); err != nil {
		t.Fatal(err)
	}
	res, err := c.LookupEmails(ctx, []string{"alice@acme.com", "bob@acme.com", "kate@tyrell.com", "bob@acme.com", "x@y.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Errorf("result = %v, want 3 addresses", res)
	}
	if e, _ := dir.calls(); e != 2 {
		t.Errorf("calls = %d, want 2", e)
	}
	if got := dir.asked[1:]; len(got) != 3 {
		t.Errorf("second call asked %v, want the 3 distinct misses only", got)
	}
	// Domains are cached apart from emails.
	if _, err := c.LookupDomains(ctx, []string{"acme.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupDomains(ctx, []string{"acme.com"}); err != nil {
		t.Fatal(err)
	}
	if _, d := dir.calls(); d != 1 {
		t.Errorf("domain calls = %d, want 1", d)
	}
}

func TestCacheErrorNotCached(t *testing.T) {
	dir := newFakeDir()
	dir.err = errFlaky
	c := matcher.NewCache(dir, matcher.CacheOptions{})
	if _, err := c.LookupEmails(context.Background(), []string{"alice@acme.com"}); !errors.Is(err, errFlaky) {
		t.Fatalf("err = %v, want %v", err, errFlaky)
	}
	dir.err = nil
	res, err := c.LookupEmails(context.Background(), []string{"alice@acme.com"})
	if err != nil || len(res) != 1 {
		t.Errorf("after recovery: %v, %v", res, err)
	}
}

func TestCacheEviction(t *testing.T) {
	dir := newFakeDir()
	c := matcher.NewCache(dir, matcher.CacheOptions{MaxEntries: 2})
	ctx := context.Background()
	for _, k := range []string{"a@x.example", "b@x.example", "c@x.example"} {
		if _, err := c.LookupEmails(ctx, []string{k}); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Stats().Entries; n != 2 {
		t.Errorf("Entries = %d, want 2", n)
	}
	if _, err := c.LookupEmails(ctx, []string{"a@x.example"}); err != nil { // evicted: asked again
		t.Fatal(err)
	}
	if e, _ := dir.calls(); e != 4 {
		t.Errorf("calls = %d, want 4 (least recently used evicted)", e)
	}
	c.Purge()
	if n := c.Stats().Entries; n != 0 {
		t.Errorf("Entries after Purge = %d", n)
	}
}

func TestCacheConcurrent(t *testing.T) {
	dir := newFakeDir()
	c := matcher.NewCache(dir, matcher.CacheOptions{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := fmt.Sprintf("u%d@x.example", i%20)
				if _, err := c.LookupEmails(context.Background(), []string{k, "alice@acme.com"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := c.Stats()
	if st.Hits+st.Misses+st.Merged != 8*200*2 {
		t.Errorf("hits+misses+merged = %d, want %d", st.Hits+st.Misses+st.Merged, 8*200*2)
	}
}

// TestCacheCallCount proves the cache bounds directory traffic: 10,000
// messages over 50 distinct addresses (10 domains), matched one at a time,
// make about one call per distinct address.
func TestCacheCallCount(t *testing.T) {
	dir := newFakeDir()
	for i := 0; i < 25; i++ { // half of the addresses are known contacts
		a := fmt.Sprintf("person%d@company%d.example", i, i%10)
		dir.emails[a] = []sink.Record{{Kind: sink.KindContact, ID: fmt.Sprintf("c-%d", i), Email: a}}
	}
	cache := matcher.NewCache(dir, matcher.CacheOptions{})
	m := newMatcher(t, baseConfig(), cache, nil)
	msgs := make([]*matcher.Message, 50)
	for i := range msgs {
		msgs[i] = inbound(t, fmt.Sprintf("person%d@company%d.example", i, i%10))
	}
	for i := 0; i < 10000; i++ {
		match(t, m, matcher.Input{Msg: msgs[(i*7)%50]})
	}
	e, d := dir.calls()
	st := cache.Stats()
	t.Logf("directory calls: %d emails, %d domains; cache %+v", e, d, st)
	if e > 50 || e+d > 60 {
		t.Errorf("directory calls = %d emails + %d domains, want <= 50 emails and <= 60 in all", e, d)
	}
	if st.Hits < 9900 {
		t.Errorf("cache hits = %d, want >= 9900", st.Hits)
	}
}

// blockingDir answers every look-up after release is closed, counting calls.
type blockingDir struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (d *blockingDir) LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error) {
	d.mu.Lock()
	d.calls++
	first := d.calls == 1
	d.mu.Unlock()
	if first {
		close(d.entered)
	}
	select {
	case <-d.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := map[string][]sink.Record{}
	for _, e := range emails {
		out[e] = []sink.Record{{Kind: sink.KindContact, ID: "c-" + e}}
	}
	return out, nil
}

func (d *blockingDir) LookupDomains(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}

// Concurrent look-ups of a key already being fetched wait for that one
// call instead of asking the directory again.
func TestCacheMergesLookupsInFlight(t *testing.T) {
	dir := &blockingDir{entered: make(chan struct{}), release: make(chan struct{})}
	c := matcher.NewCache(dir, matcher.CacheOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const callers = 5
	got := make(chan string, callers)
	var wg sync.WaitGroup
	lookup := func() {
		defer wg.Done()
		recs, err := c.LookupEmails(ctx, []string{"a@x.com"})
		if err != nil {
			t.Error(err)
			return
		}
		got <- recs["a@x.com"][0].ID
	}
	wg.Add(1)
	go lookup()
	<-dir.entered
	for range callers - 1 {
		wg.Add(1)
		go lookup()
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Merged < callers-1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(dir.release)
	wg.Wait()
	close(got)
	n := 0
	for id := range got {
		n++
		if id != "c-a@x.com" {
			t.Errorf("a caller got %q", id)
		}
	}
	if n != callers {
		t.Errorf("%d callers got an answer, want %d", n, callers)
	}
	if dir.calls != 1 {
		t.Errorf("directory called %d times, want 1", dir.calls)
	}
	if st := c.Stats(); st.Merged != callers-1 {
		t.Errorf("merged = %d, want %d", st.Merged, callers-1)
	}
}
