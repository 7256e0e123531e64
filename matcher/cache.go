package matcher

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// Cache defaults.
const (
	DefaultCacheTTL         = 5 * time.Minute
	DefaultCacheNegativeTTL = time.Minute
	DefaultCacheMaxEntries  = 50000
)

// CacheOptions configure NewCache. Zero fields take the defaults.
type CacheOptions struct {
	// TTL is how long found records are kept.
	TTL time.Duration
	// NegativeTTL is how long "not found" is kept; negative disables
	// negative caching.
	NegativeTTL time.Duration
	// MaxEntries bounds emails and domains each; the least recently used
	// entry goes first.
	MaxEntries int
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

// CacheStats are a Cache's counters since it was made.
type CacheStats struct {
	Hits    int64 `json:"hits"`   // keys answered from the cache
	Misses  int64 `json:"misses"` // keys passed to the directory
	Calls   int64 `json:"calls"`  // directory calls made
	Merged  int64 `json:"merged"` // keys answered by another call's look-up in flight
	Entries int   `json:"entries"`
}

// Cache is a Directory in front of another: it keeps answers, found or not,
// for a while and asks the directory once per call for all the keys it is
// missing. It is safe for concurrent use; callers missing the same key at
// once share one look-up.
type Cache struct {
	dir  Directory
	opts CacheOptions

	mu      sync.Mutex
	emails  lru
	domains lru

	hits, misses, calls, merged atomic.Int64
}

var _ Directory = (*Cache)(nil)

// NewCache returns a cache in front of dir.
func NewCache(dir Directory, opts CacheOptions) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = DefaultCacheTTL
	}
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = DefaultCacheNegativeTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultCacheMaxEntries
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{dir: dir, opts: opts, emails: newLRU(opts.MaxEntries), domains: newLRU(opts.MaxEntries)}
}

// LookupEmails implements Directory. Its error is the directory's, and
// nothing is cached for the keys of a failed call.
func (c *Cache) LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error) {
	return c.lookup(ctx, &c.emails, emails, c.dir.LookupEmails)
}

// LookupDomains implements Directory, as LookupEmails.
func (c *Cache) LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error) {
	return c.lookup(ctx, &c.domains, domains, c.dir.LookupDomains)
}

// Stats returns the counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	n := c.emails.l.Len() + c.domains.l.Len()
	c.mu.Unlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Calls: c.calls.Load(), Merged: c.merged.Load(), Entries: n}
}

// Purge drops every entry, e.g. after the CRM data was reloaded.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emails.m, c.emails.l = map[string]*list.Element{}, list.New()
	c.domains.m, c.domains.l = map[string]*list.Element{}, list.New()
}

func (c *Cache) lookup(ctx context.Context, l *lru, keys []string,
	fetch func(context.Context, []string) (map[string][]sink.Record, error)) (map[string][]sink.Record, error) {
	out := make(map[string][]sink.Record, len(keys))
	var mine []string        // keys this call asks the directory for
	var theirs []string      // keys another call is asking for right now
	var seen map[string]bool // made on the first miss: the warm path allocates nothing
	now := c.opts.Now()
	c.mu.Lock()
	for _, k := range keys {
		recs, ok := l.get(k, now)
		switch {
		case ok && recs != nil:
			out[k] = recs
		case ok:
			// cached "not found"
		default:
			if seen == nil {
				seen = map[string]bool{}
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			if l.inflight[k] != nil {
				theirs = append(theirs, k)
				c.merged.Add(1)
			} else {
				l.inflight[k] = &flight{done: make(chan struct{})}
				mine = append(mine, k)
			}
			continue
		}
		c.hits.Add(1)
	}
	flights := make(map[string]*flight, len(theirs))
	for _, k := range theirs {
		flights[k] = l.inflight[k]
	}
	c.mu.Unlock()
	var err error
	if len(mine) > 0 {
		err = c.fetch(ctx, l, mine, fetch, out)
	}
	// Keys another call was already fetching: wait for its answer rather
	// than asking the directory the same thing twice.
	for k, f := range flights {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil && err == nil {
			err = f.err
		}
		if len(f.recs) > 0 {
			out[k] = f.recs
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fetch asks the directory for keys, which this call registered as in
// flight, caches the answers and hands them to the calls waiting for them.
func (c *Cache) fetch(ctx context.Context, l *lru, keys []string,
	fetch func(context.Context, []string) (map[string][]sink.Record, error), out map[string][]sink.Record) error {
	c.misses.Add(int64(len(keys)))
	c.calls.Add(1)
	got, err := fetch(ctx, keys)
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		f := l.inflight[k]
		delete(l.inflight, k)
		f.recs, f.err = got[k], err
		close(f.done)
		if err != nil {
			continue // nothing is cached for the keys of a failed call
		}
		recs := got[k]
		if len(recs) > 0 {
			out[k] = recs
			l.put(k, recs, now.Add(c.opts.TTL))
		} else if c.opts.NegativeTTL > 0 {
			l.put(k, nil, now.Add(c.opts.NegativeTTL))
		}
	}
	return err
}

// flight is one key being fetched from the directory.
type flight struct {
	done chan struct{} // closed when recs and err are set
	recs []sink.Record
	err  error
}

// lru is a size-bounded map with expiry; the caller holds Cache.mu.
type lru struct {
	max int
	m   map[string]*list.Element
	l   *list.List
	// inflight holds the keys being fetched now; it outlives a Purge, whose
	// callers still wait for those answers.
	inflight map[string]*flight
}

type lruEntry struct {
	key     string
	recs    []sink.Record // nil: known not found
	expires time.Time
}

func newLRU(max int) lru {
	return lru{max: max, m: map[string]*list.Element{}, l: list.New(), inflight: map[string]*flight{}}
}

func (l *lru) get(k string, now time.Time) ([]sink.Record, bool) {
	e, ok := l.m[k]
	if !ok {
		return nil, false
	}
	ent := e.Value.(*lruEntry)
	if !now.Before(ent.expires) {
		l.l.Remove(e)
		delete(l.m, k)
		return nil, false
	}
	l.l.MoveToFront(e)
	return ent.recs, true
}

func (l *lru) put(k string, recs []sink.Record, expires time.Time) {
	if e, ok := l.m[k]; ok {
		ent := e.Value.(*lruEntry)
		ent.recs, ent.expires = recs, expires
		l.l.MoveToFront(e)
		return
	}
	l.m[k] = l.l.PushFront(&lruEntry{key: k, recs: recs, expires: expires})
	for l.l.Len() > l.max {
		old := l.l.Back()
		l.l.Remove(old)
		delete(l.m, old.Value.(*lruEntry).key)
	}
}
