package sink

import "unsafe"

// Preparer is implemented by adapters that can do the expensive part of a
// delivery ahead of it, e.g. encode the body. The worker calls Prepare on a
// batch in its fetch stage, while the previous batch is still with the
// sink, so that work leaves the delivery path. Prepare delivers nothing,
// must be safe to skip, and may be called on a batch that is then never
// delivered.
type Preparer interface {
	Prepare(ms []*Message)
}

// prepared is an adapter's cache attached to a Message, tied to the Body
// it was derived from.
type prepared struct {
	body *byte
	n    int
	v    any
}

// SetPrepared attaches v, an adapter's work derived from m.Body (an
// encoding of it, say), for the adapter's Deliver to reuse.
func (m *Message) SetPrepared(v any) {
	m.prepared = prepared{body: unsafe.SliceData(m.Body), n: len(m.Body), v: v}
}

// Prepared returns what SetPrepared attached, or nil when Body has been
// replaced since: a cache must never outlive the bytes it was made from.
func (m *Message) Prepared() any {
	p := m.prepared
	if p.v == nil || p.body != unsafe.SliceData(m.Body) || p.n != len(m.Body) {
		return nil
	}
	return p.v
}

// Grouper is implemented by adapters that want a different number of
// messages per Deliver call than the worker's default (50). The worker
// commits its state once per call, so after a crash it re-sends at most the
// group in flight and the one being committed: an adapter whose re-delivery
// costs nothing, because it dedupes by key itself at no cost (the JSONL
// file), can take large groups and so one write and one sync per group.
type Grouper interface {
	// DeliverGroup returns the most messages to hand to one Deliver call;
	// a value below 1 means the worker's default.
	DeliverGroup() int
}
