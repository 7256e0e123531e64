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
