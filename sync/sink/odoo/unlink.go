package odoo

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/mailsync/mailsync/sync/sink"
)

// The unlink index remembers, in the adapter's KV, which mail.message ids
// each logged message became, in chunks of chunkSize messages: an admin who
// deletes a logged e-mail in Odoo (Settings › Technical › Messages) makes
// it disappear, and Unlinked reports the message once all its ids are gone.
// Each poll checks at most pollChunks chunks, rotating, so a large history
// costs a bounded number of calls per poll.
const (
	chunkSize  = 500
	pollChunks = 20
	keyHead    = "index/head"   // number of the chunk being filled
	keyCursor  = "index/cursor" // next chunk Unlinked checks
)

func chunkKey(n int) string { return "index/" + strconv.Itoa(n) }

// indexChunk maps a message key to its mail.message ids.
type indexChunk map[string][]int

func (s *Sink) loadInt(key string) int {
	b, _ := s.kv.Get(key)
	n, _ := strconv.Atoi(string(b))
	return n
}

func (s *Sink) loadChunk(n int) (indexChunk, error) {
	b, err := s.kv.Get(chunkKey(n))
	if err != nil || b == nil {
		return indexChunk{}, err
	}
	c := indexChunk{}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("unlink index chunk %d: %w", n, err)
	}
	return c, nil
}

// indexAdd records the activities of delivered messages, in one KV write.
func (s *Sink) indexAdd(ms []*Message, receipts []sink.Receipt) error {
	if len(ms) == 0 {
		return nil
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	head := s.loadInt(keyHead)
	c, err := s.loadChunk(head)
	if err != nil {
		return err
	}
	writes := map[string][]byte{}
	for i, m := range ms {
		if len(c) >= chunkSize {
			b, _ := json.Marshal(c)
			writes[chunkKey(head)] = b
			head++
			c = indexChunk{}
		}
		c[m.Key] = parseIDs(receipts[i].Activity)
	}
	b, _ := json.Marshal(c)
	writes[chunkKey(head)] = b
	writes[keyHead] = []byte(strconv.Itoa(head))
	return s.kv.PutMany(writes)
}

// indexRemove forgets keys (retracted, or unlinks acknowledged).
func (s *Sink) indexRemove(keys []string) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	writes := map[string][]byte{}
	for n := s.loadInt(keyHead); n >= 0 && len(drop) > 0; n-- {
		c, err := s.loadChunk(n)
		if err != nil {
			return err
		}
		changed := false
		for k := range c {
			if drop[k] {
				delete(c, k)
				delete(drop, k)
				changed = true
			}
		}
		if changed {
			b, _ := json.Marshal(c)
			writes[chunkKey(n)] = b
		}
	}
	if len(writes) == 0 {
		return nil
	}
	return s.kv.PutMany(writes)
}

// Unlinked implements sink.Unlinker.
func (s *Sink) Unlinked(ctx context.Context) ([]string, error) {
	s.indexMu.Lock()
	head, cursor := s.loadInt(keyHead), s.loadInt(keyCursor)
	var chunks []indexChunk
	for i := 0; i < pollChunks && i <= head; i++ {
		n := (cursor + i) % (head + 1)
		c, err := s.loadChunk(n)
		if err != nil {
			s.indexMu.Unlock()
			return nil, err
		}
		chunks = append(chunks, c)
	}
	next := (cursor + len(chunks)) % (head + 1)
	s.indexMu.Unlock()

	var gone []string
	for _, c := range chunks {
		var ids []int
		for _, v := range c {
			ids = append(ids, v...)
		}
		if len(ids) == 0 {
			continue
		}
		var exist []int
		if err := s.rpc.execute(ctx, modelMessage, "search", []any{[]any{[]any{"id", "in", ids}}}, nil, &exist); err != nil {
			return nil, err
		}
		have := map[int]bool{}
		for _, id := range exist {
			have[id] = true
		}
		for k, v := range c {
			if !anyIn(v, have) {
				gone = append(gone, k)
			}
		}
	}
	if err := s.kv.Put(keyCursor, []byte(strconv.Itoa(next))); err != nil {
		return nil, err
	}
	return gone, nil
}

// AckUnlinked implements sink.Unlinker.
func (s *Sink) AckUnlinked(_ context.Context, keys []string) error { return s.indexRemove(keys) }

func anyIn(ids []int, have map[int]bool) bool {
	for _, id := range ids {
		if have[id] {
			return true
		}
	}
	return false
}

func parseIDs(activity string) []int {
	var out []int
	for _, f := range strings.Split(activity, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}
