package worker

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
)

var headerSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}

// fetchHeaders fetches UID, FLAGS, RFC822.SIZE, INTERNALDATE and the header
// block of every message in [from, to]. The range is always closed: an open
// `n:*` past the end returns the last message (RFC 9051 §6.4.9), which
// go-imap routes to the unilateral handler.
func (f *folderWorker) fetchHeaders(ctx context.Context, conn *imapconn.Conn, from, to uint32) (*batch, error) {
	var set imap.UIDSet
	set.AddRange(imap.UID(from), imap.UID(to))
	return f.fetchHeaderSet(ctx, conn, set, from, to)
}

// fetchHeaderSet fetches the headers of the UIDs in set, which lie within
// [from, to]; anything the server returns outside them is refused.
func (f *folderWorker) fetchHeaderSet(ctx context.Context, conn *imapconn.Conn, set imap.UIDSet, from, to uint32) (*batch, error) {
	opts := &imap.FetchOptions{
		UID: true, Flags: true, RFC822Size: true, InternalDate: true,
		ModSeq:      conn.Caps().Has(imap.CapCondStore),
		BodySection: []*imap.FetchItemBodySection{headerSection},
	}
	defer f.sup.metrics.stage("imap_headers", time.Now())
	var bufs []*imapclient.FetchMessageBuffer
	err := conn.Do(ctx, "fetch headers", func(c *imapclient.Client) error {
		cmd := c.Fetch(set, opts)
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			buf, err := readHeader(msg)
			if err != nil {
				// As for bodies: close the connection rather than let
				// go-imap drain the cut literal beside its own reader.
				c.Close()
				return err
			}
			bufs = append(bufs, buf)
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("fetch headers %s: %w", set, err)
	}
	b := &batch{from: from, to: to, fetched: time.Now(), items: make([]*item, 0, len(bufs))}
	for _, buf := range bufs {
		uid := uint32(buf.UID)
		if uid < from || uid > to || !set.Contains(imap.UID(uid)) {
			// UID 0 (no UID item) or outside the range we asked for: a
			// broken server. Refuse rather than guess what it means.
			f.log.Warn("server returned a message outside the requested range; ignored", "uid", uid, "range", fmt.Sprintf("%d:%d", from, to))
			continue
		}
		b.items = append(b.items, &item{
			uid: uid, flags: buf.Flags, size: buf.RFC822Size, internalDate: buf.InternalDate,
			modSeq: buf.ModSeq, header: buf.FindBodySection(headerSection),
		})
	}
	slices.SortFunc(b.items, func(x, y *item) int { return int(x.uid) - int(y.uid) })
	b.items = slices.CompactFunc(b.items, func(x, y *item) bool { return x.uid == y.uid })
	return b, nil
}

// fetchBodies fetches the full message for every item that needs it, in
// chunks bounded in bytes so a batch of large mail cannot exhaust memory.
// Messages over the size cap are fetched partially and marked truncated.
func (f *folderWorker) fetchBodies(ctx context.Context, conn *imapconn.Conn, items []*item) error {
	limit := f.sup.conf().Sync.MaxBodyBytes
	const chunkBytes = 64 << 20
	var chunk []*item
	var chunkSize int64
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := f.fetchBodyChunk(ctx, conn, chunk, limit)
		chunk, chunkSize = chunk[:0], 0
		return err
	}
	for _, it := range items {
		if !it.needBody {
			continue
		}
		if it.size > limit {
			if err := f.fetchBodyChunk(ctx, conn, []*item{it}, limit); err != nil {
				return err
			}
			continue
		}
		if chunkSize+it.size > chunkBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		chunk = append(chunk, it)
		chunkSize += it.size
	}
	return flush()
}

func (f *folderWorker) fetchBodyChunk(ctx context.Context, conn *imapconn.Conn, items []*item, limit int64) error {
	var set imap.UIDSet
	byUID := make(map[uint32]*item, len(items))
	for _, it := range items {
		set.AddNum(imap.UID(it.uid))
		byUID[it.uid] = it
	}
	section := &imap.FetchItemBodySection{Peek: true}
	truncated := len(items) == 1 && items[0].size > limit
	if truncated {
		section.Partial = &imap.SectionPartial{Offset: 0, Size: limit}
	}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}
	defer f.sup.metrics.stage("imap_bodies", time.Now())
	err := conn.DoTimeout(ctx, "fetch bodies", f.sup.bodyTimeout(items), func(c *imapclient.Client) error {
		cmd := c.Fetch(set, opts)
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			uid, body, err := readBody(msg)
			if err != nil {
				// A literal cut short leaves the stream mid-response: the
				// connection is done. Closing it (not cmd.Close, which
				// would drain the literal while go-imap's reader goroutine
				// still owns the stream: a data race in beta.8) ends the
				// reader; the worker reconnects.
				c.Close()
				return err
			}
			if it := byUID[uid]; it != nil && body != nil {
				it.msg.Body, it.msg.Truncated = body, truncated
			}
		}
		return cmd.Close()
	})
	if err != nil {
		return fmt.Errorf("fetch bodies %s: %w", set, err)
	}
	for _, it := range items {
		if it.msg.Body == nil {
			// Expunged between the header and the body fetch: deliver what
			// we have rather than lose the message.
			it.msg.Body = it.header
			it.msg.ParseErrors = append(it.msg.ParseErrors, "body unavailable: message was expunged before its body was fetched")
		}
	}
	return nil
}

// readBody reads one FETCH response of a body fetch: its UID and the
// body, read straight into a buffer of the literal's announced size
// (Collect would grow one by doubling, copying and clearing each body
// several times). The announced size is bounded by the connection's
// literal cap, so it cannot make us allocate more than that.
func readBody(msg *imapclient.FetchMessageData) (uint32, []byte, error) {
	var uid uint32
	var body []byte
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch d := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = uint32(d.UID)
		case imapclient.FetchItemDataBodySection:
			if d.Literal == nil {
				continue
			}
			buf := make([]byte, d.Literal.Size())
			if _, err := io.ReadFull(d.Literal, buf); err != nil {
				return 0, nil, fmt.Errorf("read body: %w", err)
			}
			body = buf
		}
	}
	return uid, body, nil
}

// readHeader reads one FETCH response of a header fetch into a buffer,
// as FetchMessageData.Collect does, but without its deferred drain: after
// a read error the caller closes the connection instead (see fetchHeaderSet).
func readHeader(msg *imapclient.FetchMessageData) (*imapclient.FetchMessageBuffer, error) {
	buf := &imapclient.FetchMessageBuffer{SeqNum: msg.SeqNum}
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch d := item.(type) {
		case imapclient.FetchItemDataUID:
			buf.UID = d.UID
		case imapclient.FetchItemDataFlags:
			buf.Flags = d.Flags
		case imapclient.FetchItemDataRFC822Size:
			buf.RFC822Size = d.Size
		case imapclient.FetchItemDataInternalDate:
			buf.InternalDate = d.Time
		case imapclient.FetchItemDataModSeq:
			buf.ModSeq = d.ModSeq
		case imapclient.FetchItemDataBodySection:
			var b []byte
			if d.Literal != nil {
				b = make([]byte, d.Literal.Size())
				if _, err := io.ReadFull(d.Literal, b); err != nil {
					return nil, fmt.Errorf("read header: %w", err)
				}
			}
			buf.BodySection = append(buf.BodySection, imapclient.FetchBodySectionBuffer{Section: d.Section, Bytes: b})
		}
	}
	return buf, nil
}

// alreadyLogged reports which keys the ledger has as delivered (or
// retracted by the user): those copies only add provenance. The value says
// whether the ledger already has a copy in this folder (a re-scan after a
// UIDVALIDITY change), which needs no event.
func (f *folderWorker) alreadyLogged(items []*item) (map[string]bool, error) {
	defer f.sup.metrics.stage("ledger_lookup", time.Now())
	seen := make(map[string]bool)
	acct := f.acct.cfg.ID
	err := f.sup.store.View(func(tx *store.Tx) error {
		for _, it := range items {
			if it.key == "" {
				continue
			}
			e, ok, err := tx.Ledger(it.key)
			if err != nil {
				return err
			}
			if ok && (e.Status == store.StatusDelivered || e.Status == store.StatusRetracted) {
				seen[it.key] = hasCopyIn(e.Provenance, acct, f.name)
			}
		}
		return nil
	})
	return seen, err
}
