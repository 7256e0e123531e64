package store

import (
	"fmt"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/mailsync/mailsync/sync/sink"
)

// normMessageID strips the whitespace and angle brackets around a
// Message-ID (RFC 5322 §3.6.4 msg-id), so "<a@b>" and "a@b" are one key
// whichever form the writer and the reader use. Case is kept: the local part
// is case-sensitive.
func normMessageID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	return strings.TrimSpace(id)
}

// PutThread adds records to the set linked to messageID (merged with what is
// there, de-duplicated by Kind and ID). It does nothing when there are no
// records or no usable Message-ID (empty, or longer than a bbolt key): the
// ID comes from untrusted mail, and one bad message must not fail a batch.
// The thread index grows with the mail; pruning is not implemented yet.
func (t *Tx) PutThread(messageID string, records []sink.Record) error {
	id := normMessageID(messageID)
	if len(records) == 0 || id == "" || len(id) > bbolt.MaxKeySize {
		return nil
	}
	b, err := t.top(bucketThreads)
	if err != nil {
		return fmt.Errorf("thread %q: put: %w", clip(id), err)
	}
	var have []sink.Record
	if v := b.Get([]byte(id)); v != nil {
		if have, err = decodeThread(v); err != nil {
			return fmt.Errorf("thread %q: put: %w", clip(id), err)
		}
	}
	merged, changed := mergeRecords(have, records)
	if !changed {
		return nil
	}
	if err := b.Put([]byte(id), encodeThread(merged)); err != nil {
		return fmt.Errorf("thread %q: put: %w", clip(id), err)
	}
	return nil
}

// mergeRecords appends to have the records it lacks, keeping first-seen order.
func mergeRecords(have, add []sink.Record) ([]sink.Record, bool) {
	seen := make(map[string]bool, len(have)+len(add))
	for _, r := range have {
		seen[r.Key()] = true
	}
	changed := false
	for _, r := range add {
		k := r.Key()
		if seen[k] {
			continue
		}
		seen[k] = true
		have = append(have, r)
		changed = true
	}
	return have, changed
}

// ThreadRecords returns the union of the records linked to any of
// messageIDs, de-duplicated by Kind and ID, in order of first appearance.
// Empty IDs are ignored; unknown IDs contribute nothing. nil if none.
func (t *Tx) ThreadRecords(messageIDs []string) ([]sink.Record, error) {
	b, err := t.top(bucketThreads)
	if err != nil {
		return nil, fmt.Errorf("threads: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	var out []sink.Record
	for _, raw := range messageIDs {
		id := normMessageID(raw)
		if id == "" || len(id) > bbolt.MaxKeySize {
			continue
		}
		v := b.Get([]byte(id))
		if v == nil {
			continue
		}
		recs, err := decodeThread(v)
		if err != nil {
			return nil, fmt.Errorf("thread %q: get: %w", clip(id), err)
		}
		out, _ = mergeRecords(out, recs)
	}
	return out, nil
}
