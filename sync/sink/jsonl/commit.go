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
	ctx context.Context
	ms  []*sink.Message
	res []sink.Result
	// buf holds the encoded lines back to back, each ending in '\n'; ends[i]
	// is where line i ends in buf (a failed one is empty). A line whose
	// body Prepare encoded holds it by reference: bodies[i] goes at
	// splits[i], between the rest of the object and its "}\n".
	buf    *[]byte
	ends   []int
	splits []int
	bodies []preparedBody
	done   bool // set under ioMu by the goroutine that committed it
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
	r.splits = make([]int, len(r.ms))
	r.bodies = make([]preparedBody, len(r.ms))
	for i, m := range r.ms {
		start := len(b)
		var err error
		var body preparedBody
		b, body, err = appendHead(b, m)
		switch {
		case err != nil:
			b = b[:start]
			r.res[i].Err = sink.Permanent(fmt.Errorf("jsonl: %w", err))
		case body != nil:
			r.splits[i], r.bodies[i] = len(b), body
			b = append(b, "}\n"...)
		default:
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

	// Lay out the write: the new lines as a list of byte ranges for one
	// writev, each range either a run of a request's buffer or a body as
	// Prepare left it, so no line is copied to be written.
	clear(s.pending)
	s.entries = s.entries[:0]
	iov := s.iov[:0]
	var n int64 // bytes laid out so far
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.failPending(err)
			continue
		}
		buf := *r.buf
		run := -1 // start in buf of the range iov ends with, if it is r's
		start := 0
		for i, m := range r.ms {
			line := buf[start:r.ends[i]]
			from := start
			start = r.ends[i]
			if r.res[i].Err != nil {
				run = -1
				continue
			}
			off, dup := s.keys[m.Key]
			if !dup {
				off, dup = s.pending[m.Key]
			}
			if dup {
				r.res[i].Receipt = receipt(off)
				run = -1
				continue
			}
			off = s.size + n
			size := int64(len(line))
			// Extend the range iov ends with when this line follows it in
			// buf (consecutive lines of one request), else start one.
			appendRange := func(lo, hi int) {
				if run >= 0 {
					iov[len(iov)-1] = buf[run:hi]
				} else {
					iov, run = append(iov, buf[lo:hi]), lo
				}
			}
			if body := r.bodies[i]; body != nil {
				appendRange(from, r.splits[i])
				iov = append(iov, body)
				run = -1
				appendRange(r.splits[i], r.ends[i])
				size += int64(len(body))
			} else {
				appendRange(from, r.ends[i])
			}
			s.pending[m.Key] = off
			s.entries = append(s.entries, keyEntry{off: off, n: size, key: m.Key})
			r.res[i].Receipt = receipt(off)
			n += size
		}
	}
	s.iov = iov
	// The ranges hold bodies: let them go with the request.
	defer clear(s.iov)
	if n == 0 {
		return
	}

	base := s.size
	written, err := s.write(iov, n)
	if err != nil {
		// What fits is kept (a full disk takes a prefix of the group):
		// those lines are acknowledged, the rest fail and are retried.
		for _, r := range group {
			for i, m := range r.ms {
				if off, ok := s.pending[m.Key]; ok && off >= base+written && r.res[i].Err == nil {
					r.res[i] = sink.Result{Err: err}
				}
			}
		}
	}
	for k, off := range s.pending {
		if off < base+written {
			s.keys[k] = off
		}
	}
	// After the sync: the key file only ever describes durable lines (a
	// full disk may have kept only a prefix of the group).
	durable := s.entries[:0]
	for _, e := range s.entries {
		if e.off < base+written {
			durable = append(durable, e)
		}
	}
	s.entries = durable
	s.stats.Lines += int64(len(durable))
	s.stats.Bytes += written
	if s.kf != nil && len(durable) > 0 && writeKeyEntries(s.kf, durable) != nil {
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

// write appends the n bytes of iov and syncs them, and returns how many
// bytes are now durably in the file. On a failed write (ENOSPC: a disk with
// less room than the group) it keeps the whole lines that made it (see
// s.entries), syncs them and cuts the torn rest, so the file never holds a
// torn line in the middle. If it cannot vouch for the file any more (a
// failed sync may have dropped pages the kernel now calls clean) it marks
// the sink broken: every later delivery fails until the file is reopened
// and rescanned.
func (s *Sink) write(iov [][]byte, n int64) (int64, error) {
	start := time.Now()
	done, werr := s.writeFile(iov)
	written := time.Now()
	s.stats.Writes++
	s.stats.WriteTime += written.Sub(start)
	if werr == nil && done != n {
		werr = fmt.Errorf("wrote %d of %d bytes", done, n)
	}
	if werr == nil {
		err := datasync(s.f)
		s.stats.Syncs++
		s.stats.SyncTime += time.Since(written)
		if err != nil {
			s.broken = errors.New("jsonl: an earlier sync failed; reopen the sink")
			s.cutBack(s.size)
			return 0, fmt.Errorf("jsonl: sync: %w", err)
		}
		s.size += n
		return n, nil
	}
	werr = fmt.Errorf("jsonl: write: %w", werr)
	var keep int64
	for _, e := range s.entries {
		end := e.off + e.n - s.size
		if end > done {
			break
		}
		keep = end
	}
	if keep > 0 {
		if !s.cutBack(s.size + keep) {
			return 0, werr
		}
		if err := datasync(s.f); err != nil {
			s.broken = errors.New("jsonl: an earlier sync failed; reopen the sink")
			return 0, werr
		}
		s.size += keep
		return keep, werr
	}
	s.cutBack(s.size)
	return 0, werr
}

// cutBack truncates the file to size; on failure the sink is broken.
func (s *Sink) cutBack(size int64) bool {
	if err := s.f.Truncate(size); err != nil {
		s.broken = fmt.Errorf("jsonl: cannot cut back a failed write (%v); reopen the sink", err)
		return false
	}
	return true
}
