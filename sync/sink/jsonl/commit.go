package jsonl

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// request is one DeliverBatch call waiting for a group commit.
type request struct {
	ctx  context.Context
	ms   []*sink.Message
	res  []sink.Result
	buf  *[]byte // the encoded lines, back to back, each ending in '\n'
	ends []int   // ends[i] is where line i ends in buf; a failed one is empty
	done bool    // set under ioMu by the goroutine that committed it
}

var bufs = stdsync.Pool{New: func() any { return new([]byte) }}

// maxPooled keeps a rare huge batch from pinning its buffer forever.
const maxPooled = 64 << 20

func (r *request) fail(err error) {
	for i := range r.res {
		r.res[i].Err = err
	}
}

// encode renders every message; one that cannot be encoded fails alone.
func (r *request) encode() {
	r.buf = bufs.Get().(*[]byte)
	b := (*r.buf)[:0]
	r.ends = make([]int, len(r.ms))
	for i, m := range r.ms {
		start := len(b)
		var err error
		b, err = AppendMessage(b, m)
		if err != nil {
			b = b[:start]
			r.res[i].Err = sink.Permanent(fmt.Errorf("jsonl: %w", err))
		} else {
			b = append(b, '\n')
		}
		r.ends[i] = len(b)
	}
	*r.buf = b
}

func (r *request) release() {
	if r.buf != nil && cap(*r.buf) <= maxPooled {
		bufs.Put(r.buf)
	}
	r.buf = nil
}

// commit writes the new lines of a group with one write and one sync and
// fills in every result. It runs with ioMu held.
func (s *Sink) commit(group []*request) {
	defer func() {
		for _, r := range group {
			r.done = true
		}
	}()
	var stop error
	switch {
	case s.closed:
		stop = ErrClosed
	case s.broken != nil:
		stop = s.broken
	}
	if stop != nil {
		for _, r := range group {
			for i := range r.res {
				if r.res[i].Err == nil {
					r.res[i].Err = stop
				}
			}
		}
		return
	}

	// Lay out the write. The common case, one request whose lines are all
	// new, is written straight from its buffer; otherwise the new lines are
	// gathered into scratch.
	clear(s.pending)
	s.entries = s.entries[:0]
	direct := len(group) == 1
	out := s.scratch[:0]
	var n int64 // bytes laid out so far
	// undirect switches to gathering; while direct, everything laid out is
	// the prefix buf[:upto] of the only request.
	undirect := func(r *request, upto int) {
		if direct {
			out = append(out, (*r.buf)[:upto]...)
			direct = false
		}
	}
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.failPending(err)
			undirect(r, 0)
			continue
		}
		start := 0
		for i, m := range r.ms {
			end := r.ends[i]
			line := (*r.buf)[start:end]
			if r.res[i].Err != nil {
				undirect(r, start)
				start = end
				continue
			}
			off, dup := s.keys[m.Key]
			if !dup {
				off, dup = s.pending[m.Key]
			}
			if dup {
				r.res[i].Receipt = receipt(off)
				undirect(r, start)
				start = end
				continue
			}
			start = end
			off = s.size + n
			s.pending[m.Key] = off
			s.entries = append(s.entries, keyEntry{off: off, n: int64(len(line)), key: m.Key})
			r.res[i].Receipt = receipt(off)
			n += int64(len(line))
			if !direct {
				out = append(out, line...)
			}
		}
	}
	if n == 0 {
		return
	}
	if direct {
		out = *group[0].buf
	} else if cap(out) <= maxPooled {
		s.scratch = out
	}

	if err := s.write(out); err != nil {
		for _, r := range group {
			for i, m := range r.ms {
				if _, ok := s.pending[m.Key]; ok && r.res[i].Err == nil {
					r.res[i] = sink.Result{Err: err}
				}
			}
		}
		return
	}
	for k, off := range s.pending {
		s.keys[k] = off
	}
	s.stats.Lines += int64(len(s.pending))
	s.stats.Bytes += n
	// After the sync: the key file only ever describes durable lines.
	if s.kf != nil && writeKeyEntries(s.kf, s.entries) != nil {
		s.kf.Close()
		s.kf = nil // the next Open scans from where it stopped
	}
}

func (r *request) failPending(err error) {
	for i := range r.res {
		if r.res[i].Err == nil {
			r.res[i].Err = err
		}
	}
}

// write appends b and syncs it. On failure it cuts the file back to its last
// good size, so a partial write never leaves a torn line in the middle of
// the file, and if it cannot vouch for the file any more (a failed sync may
// have dropped pages the kernel now calls clean) it marks the sink broken:
// every later delivery fails until the file is reopened and rescanned.
func (s *Sink) write(b []byte) error {
	start := time.Now()
	_, werr := s.f.Write(b)
	written := time.Now()
	s.stats.Writes++
	s.stats.WriteTime += written.Sub(start)
	if werr == nil {
		err := datasync(s.f)
		s.stats.Syncs++
		s.stats.SyncTime += time.Since(written)
		if err != nil {
			werr = fmt.Errorf("jsonl: sync: %w", err)
			s.broken = errors.New("jsonl: an earlier sync failed; reopen the sink")
		} else {
			s.size += int64(len(b))
			return nil
		}
	} else {
		werr = fmt.Errorf("jsonl: write: %w", werr)
	}
	if err := s.f.Truncate(s.size); err != nil {
		s.broken = fmt.Errorf("jsonl: cannot cut back a failed write (%v); reopen the sink", err)
	}
	return werr
}
