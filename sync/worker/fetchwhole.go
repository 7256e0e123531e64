package worker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/sync/imapconn"
)

// wholePrefix is how much of each message a combined fetch asks for: all
// of most mail (27 KB on average in the benchmark's corpus), and with the
// batch size the worker's memory bound (1,000 x 64 KB = maxBatchBytes).
// A longer message costs one wasted prefix and a body fetch of its own.
const wholePrefix = 64 << 10

// fetchWhole fetches what fetchHeaders does, and in the same FETCH the
// first bytes of each message (BODY.PEEK[]<0.n>, RFC 9051 §6.4.5), from
// which the header block is cut. Dovecot then opens and reads each message
// once instead of twice: on loopback the header FETCH costs half as much as
// the body FETCH, and that was the fetch stage's largest part after the
// bodies. A message the prefix holds whole needs no body fetch; one it
// holds only in part, or whose header it cuts, is completed by prepare.
func (f *folderWorker) fetchWhole(ctx context.Context, conn *imapconn.Conn, from, to uint32) (*batch, error) {
	prefix := min(int64(wholePrefix), f.sup.conf().Sync.MaxBodyBytes)
	b := &batch{from: from, to: to}
	// Keep one command within the memory bound whatever the batch size.
	step := uint32(max(1, maxBatchBytes/prefix))
	for lo := from; lo <= to && lo != 0; lo += step {
		hi := min(lo+step-1, to)
		if hi < lo { // overflow near 2^32
			hi = to
		}
		if err := f.fetchWholeRange(ctx, conn, lo, hi, prefix, b); err != nil {
			return nil, err
		}
		if hi == to {
			break
		}
	}
	b.fetched = time.Now()
	slices.SortFunc(b.items, func(x, y *item) int { return int(x.uid) - int(y.uid) })
	b.items = slices.CompactFunc(b.items, func(x, y *item) bool { return x.uid == y.uid })
	return b, nil
}

func (f *folderWorker) fetchWholeRange(ctx context.Context, conn *imapconn.Conn, lo, hi uint32, prefix int64, b *batch) error {
	var set imap.UIDSet
	set.AddRange(imap.UID(lo), imap.UID(hi))
	section := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: prefix}}
	opts := &imap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, InternalDate: true,
		ModSeq:      conn.Caps().Has(imap.CapCondStore),
		BodySection: []*imap.FetchItemBodySection{section},
	}
	defer f.sup.metrics.stage("imap_whole", time.Now())
	// Scaled like a body fetch of every message at the full prefix.
	timeout := f.sup.conf().Sync.CommandTimeout + time.Duration(int64(hi-lo+1)*prefix/(1<<20))*time.Second
	limit := f.sup.conf().Sync.MaxBodyBytes
	err := conn.DoTimeout(ctx, "fetch messages", timeout, func(c *imapclient.Client) error {
		cmd := c.Fetch(set, opts)
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			it, err := readWhole(msg)
			if err != nil {
				// As in fetchBodyChunk: the stream is mid-literal, so the
				// connection is done; closing it ends go-imap's reader.
				c.Close()
				return err
			}
			if it.uid < lo || it.uid > hi {
				f.log.Warn("server returned a message outside the requested range; ignored", "uid", it.uid, "range", fmt.Sprintf("%d:%d", lo, hi))
				continue
			}
			it.settleWhole(prefix, limit)
			b.items = append(b.items, it)
		}
		return cmd.Close()
	})
	if err != nil {
		return fmt.Errorf("fetch messages %s: %w", set, err)
	}
	return nil
}

// readWhole reads one FETCH response of a combined fetch, the body prefix
// straight into a buffer of the literal's announced size (see readBody).
func readWhole(msg *imapclient.FetchMessageData) (*item, error) {
	it := &item{}
	for d := msg.Next(); d != nil; d = msg.Next() {
		switch d := d.(type) {
		case imapclient.FetchItemDataUID:
			it.uid = uint32(d.UID)
		case imapclient.FetchItemDataFlags:
			it.flags = d.Flags
		case imapclient.FetchItemDataRFC822Size:
			it.size = d.Size
		case imapclient.FetchItemDataInternalDate:
			it.internalDate = d.Time
		case imapclient.FetchItemDataModSeq:
			it.modSeq = d.ModSeq
		case imapclient.FetchItemDataBodySection:
			if d.Literal == nil {
				continue
			}
			buf := make([]byte, d.Literal.Size())
			if _, err := io.ReadFull(d.Literal, buf); err != nil {
				return nil, fmt.Errorf("read message: %w", err)
			}
			it.prefix = buf
		}
	}
	return it, nil
}

// settleWhole cuts the header from the prefix and says whether the prefix
// is the body to deliver. The server sends fewer bytes than asked only at
// the end of the message (RFC 9051 §6.4.5), so a short prefix is the whole
// message; RFC822.SIZE alone is not trusted for that, since a server that
// misreports it would get its mail silently cut. A prefix as long as
// sync.max_body_bytes of a message reported longer is the truncated body
// the body fetch would have produced.
func (it *item) settleWhole(prefix, limit int64) {
	if it.prefix == nil {
		// No body in the answer: fetch header and body as in header mode.
		it.needHeader = true
		return
	}
	switch n := int64(len(it.prefix)); {
	case n < prefix:
		it.whole = true
	case prefix == limit && it.size > limit:
		it.whole, it.truncated = true, true
	}
	header, ended := headerOf(it.prefix)
	if ended || it.whole && !it.truncated {
		it.header = header
	} else {
		// The header runs past the prefix.
		it.needHeader = true
	}
}

// headerOf returns the header block at the start of msg through the empty
// line that ends it, which is what BODY[HEADER] returns (RFC 9051 §6.4.5:
// the RFC 5322 header, with its terminating blank line), and whether that
// line was found. Without one the whole of msg is header.
func headerOf(msg []byte) ([]byte, bool) {
	for i := 0; i < len(msg); {
		switch {
		case bytes.HasPrefix(msg[i:], []byte("\r\n")):
			return msg[:i+2], true
		case msg[i] == '\n':
			return msg[:i+1], true
		}
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
	}
	return msg, false
}

// completeHeaders fetches the header of the items a combined fetch left
// without one, as fetchHeaders would have. One the server no longer has
// (expunged since) leaves the batch, as it would have in header mode.
func (f *folderWorker) completeHeaders(ctx context.Context, conn *imapconn.Conn, b *batch) error {
	var set imap.UIDSet
	for _, it := range b.items {
		if it.needHeader {
			set.AddNum(imap.UID(it.uid))
		}
	}
	if len(set) == 0 {
		return nil
	}
	hb, err := f.fetchHeaderSet(ctx, conn, set, b.from, b.to)
	if err != nil {
		return err
	}
	headers := make(map[uint32][]byte, len(hb.items))
	for _, it := range hb.items {
		headers[it.uid] = it.header
	}
	b.items = slices.DeleteFunc(b.items, func(it *item) bool {
		if !it.needHeader {
			return false
		}
		h, ok := headers[it.uid]
		it.header, it.needHeader = h, false
		return !ok
	})
	return nil
}

// useWhole makes the prefix of each item that holds its whole message (or
// its truncated body) the body to deliver, so fetchBodies skips it.
func useWhole(items []*item) {
	for _, it := range items {
		if it.needBody && it.whole && it.msg != nil {
			it.msg.Body, it.msg.Truncated = it.prefix, it.truncated
			it.needBody = false
		}
	}
}

// withBodies counts the items of a prepared batch that go out with their
// body. When that is most of a batch, the next is fetched whole; otherwise
// (a capture mode that skips most mail, a re-scan of delivered copies, a
// privacy level without bodies) the prefixes would be bytes read for
// nothing, and header mode reads only what is delivered.
func withBodies(items []*item) int {
	n := 0
	for _, it := range items {
		if it.action == actDeliver && it.msg != nil && !it.msg.BodyOmitted {
			n++
		}
	}
	return n
}
