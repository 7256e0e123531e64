package worker

import (
	"context"
	stdsync "sync"
)

// claims serialise the delivery of one message across every folder worker
// of every account. Two mailboxes that get the same message at once both
// classify it as new; without a claim the copy that reached the sink first
// could commit last and be taken for the duplicate, so the CRM got the
// first copy's provenance twice and the second copy's never. A worker
// claims the keys of the messages it will deliver before the sink sees
// them and releases them after the ledger commit; a second copy waits,
// then finds the message delivered and sends only its provenance.
//
// A batch claims all its keys at once or none (it waits for the first key
// another batch holds, then tries again), so two workers can never each
// hold a key the other waits for.
type claims struct {
	mu   stdsync.Mutex
	held map[string]chan struct{} // closed on release
}

// acquire blocks until every key is free and takes them all; it fails only
// when ctx ends. The returned release must be called exactly once.
func (c *claims) acquire(ctx context.Context, keys []string) (release func(), err error) {
	if len(keys) == 0 {
		return func() {}, nil
	}
	for {
		c.mu.Lock()
		var busy chan struct{}
		for _, k := range keys {
			if ch, ok := c.held[k]; ok {
				busy = ch
				break
			}
		}
		if busy == nil {
			if c.held == nil {
				c.held = map[string]chan struct{}{}
			}
			done := make(chan struct{})
			for _, k := range keys {
				c.held[k] = done
			}
			c.mu.Unlock()
			var once stdsync.Once
			return func() {
				once.Do(func() {
					c.mu.Lock()
					for _, k := range keys {
						if c.held[k] == done {
							delete(c.held, k)
						}
					}
					c.mu.Unlock()
					close(done)
				})
			}, nil
		}
		c.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
