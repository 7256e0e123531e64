package worker

import (
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/sync/sink"
)

// action is what the pipeline does with one fetched message.
type action int

const (
	actDeliver    action = iota // hand to the sink
	actExclude                  // must not be logged (internal, bulk, private, ...)
	actSkip                     // not captured under the account's capture mode
	actDuplicate                // already delivered from another copy: add provenance only
	actDeadLetter               // could not be processed: park with the reason
)

func (a action) String() string {
	return [...]string{"deliver", "exclude", "skip", "duplicate", "deadletter"}[a]
}

// item is one message moving through a batch.
type item struct {
	uid          uint32
	flags        []imap.Flag
	size         int64
	internalDate time.Time
	modSeq       uint64
	header       []byte

	key       string
	messageID string
	hash      string
	action    action
	reason    string
	needBody  bool
	msg       *sink.Message // for actDeliver

	// Filled by delivery.
	done     bool
	receipt  sink.Receipt
	err      error
	isLogged bool // written to the store
	// lastSent and singledOut (the first failed attempt during which the
	// sink took other messages) decide when a message that keeps failing
	// is parked (see parkStuck).
	lastSent, singledOut time.Time
}

func (it *item) recorded() bool { return it.isLogged }
func (it *item) markRecorded()  { it.isLogged = true }

// batch is a contiguous UID range of one folder: every UID in [from, to]
// that exists is in items, in UID order. The cursor may move to `to` only
// when every item is done.
type batch struct {
	from, to uint32
	items    []*item
	fetched  time.Time
	// targeted batches (backfill, dead-letter retry) cover chosen UIDs
	// below the cursor: they record outcomes but never move the cursor.
	targeted bool
}

// ackedThrough returns the highest UID such that every item at or below it
// is done: the contiguous acknowledged prefix the cursor may advance over.
func (b *batch) ackedThrough() uint32 {
	for _, it := range b.items {
		if !it.done {
			return it.uid - 1
		}
	}
	return b.to
}

// maxBatchBytes bounds the message bytes one batch holds in memory. With
// the pipeline's three batches alive at once (delivering, queued,
// fetching) a folder worker stays within a few hundred MB whatever the mail.
const maxBatchBytes = 64 << 20

// splitBytes cuts b into consecutive batches whose messages add up to at
// most limit bytes each (a single larger message gets a batch of its own).
// Together they cover b's UID range exactly, so the cursor logic holds.
func (b *batch) splitBytes(limit int64) []*batch {
	var parts []*batch
	cur := &batch{from: b.from, fetched: b.fetched, targeted: b.targeted}
	var n int64
	for _, it := range b.items {
		if len(cur.items) > 0 && n+it.size > limit {
			cur.to = it.uid - 1
			parts = append(parts, cur)
			cur, n = &batch{from: it.uid, fetched: b.fetched, targeted: b.targeted}, 0
		}
		cur.items = append(cur.items, it)
		n += it.size
	}
	cur.to = b.to
	return append(parts, cur)
}

// loggedUIDs are the items now in the CRM: delivered here, or copies of
// a message delivered from elsewhere.
func (b *batch) loggedUIDs() []uint32 {
	var out []uint32
	for _, it := range b.items {
		if it.action == actDeliver || it.action == actDuplicate {
			out = append(out, it.uid)
		}
	}
	return out
}

// deliverKeys are the message keys the batch will deliver as new
// activities, for the delivery claim.
func (b *batch) deliverKeys() []string {
	var keys []string
	for _, it := range b.items {
		if it.action == actDeliver && !it.done && it.key != "" {
			keys = append(keys, it.key)
		}
	}
	return keys
}

// pending are the items the sink has not acknowledged yet.
func (b *batch) pending() []*item {
	var out []*item
	for _, it := range b.items {
		if !it.done {
			out = append(out, it)
		}
	}
	return out
}

// ackGroup is how many messages go to the sink between two commits: a
// crash re-sends at most what was in flight (this group and the one being
// committed), not a whole fetch batch. A sink may ask for another size
// (sink.Grouper); see Supervisor.ackGroup.
const ackGroup = 50

// splitCount cuts b into consecutive batches of at most n items that
// together cover b's UID range exactly.
func (b *batch) splitCount(n int) []*batch {
	if len(b.items) <= n {
		return []*batch{b}
	}
	var parts []*batch
	for start := 0; start < len(b.items); start += n {
		end := min(start+n, len(b.items))
		p := &batch{from: b.items[start].uid, to: b.to, items: b.items[start:end], fetched: b.fetched, targeted: b.targeted}
		if start == 0 {
			p.from = b.from
		}
		if end < len(b.items) {
			p.to = b.items[end].uid - 1
		}
		parts = append(parts, p)
	}
	return parts
}
