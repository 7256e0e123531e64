package hubspot

import (
	"context"
	"slices"
	stdsync "sync"
)

// keyLocks serialises deliveries of the same key within the process, so
// two batches racing on one key cannot both search, find nothing and both
// create.
type keyLocks struct {
	mu   stdsync.Mutex
	held map[string]chan struct{}
}

// lock takes every key, in sorted order so that overlapping batches cannot
// deadlock. It returns the function that releases them.
func (l *keyLocks) lock(ctx context.Context, keys []string) (func(), error) {
	keys = slices.Sorted(slices.Values(keys))
	var got []string
	release := func() {
		l.mu.Lock()
		for _, k := range got {
			close(l.held[k])
			delete(l.held, k)
		}
		l.mu.Unlock()
	}
	for _, k := range keys {
		for {
			l.mu.Lock()
			if l.held == nil {
				l.held = map[string]chan struct{}{}
			}
			ch, busy := l.held[k]
			if !busy {
				l.held[k] = make(chan struct{})
				l.mu.Unlock()
				got = append(got, k)
				break
			}
			l.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				release()
				return nil, ctx.Err()
			}
		}
	}
	return release, nil
}

// maxKnown bounds the map of keys this process logged.
const maxKnown = 200_000

// knownKeys remembers the engagement id of keys this process logged or
// found: HubSpot's search index lags writes by seconds, so a redelivery
// right after a create must not depend on the search.
type knownKeys struct {
	mu stdsync.Mutex
	m  map[string]string
}

func (k *knownKeys) get(key string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	id, ok := k.m[key]
	return id, ok
}

func (k *knownKeys) put(key, id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil || len(k.m) >= maxKnown {
		k.m = map[string]string{} // the search still finds older keys
	}
	k.m[key] = id
}

func (k *knownKeys) drop(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
}
