package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/mailsync/mailsync/sync/sink"
)

// The ledger is written for every message and read for every fetched one,
// and the thread index for every matched one, so both use this compact
// binary form instead of JSON (JSON decoding cost ~6µs per entry, this
// about a tenth). Layout: a version byte, then fields in a fixed order;
// strings and counts are uvarint-prefixed, times are varint Unix
// nanoseconds (0 = zero time). A new layout gets a new version byte and the
// decoder keeps reading the old ones.

const (
	ledgerV1 = 1
	// ledgerV2 adds the records the CRM created for the message after the
	// events; ledgerV1 entries decode with none.
	ledgerV2  = 2
	threadsV1 = 1
)

var errTruncated = errors.New("truncated")

var statusCodes = []LedgerStatus{0: "", 1: StatusDelivered, 2: StatusExcluded, 3: StatusSkipped, 4: StatusDeadLetter, 5: StatusRetracted}

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) records(rs []sink.Record) {
	e.uvarint(uint64(len(rs)))
	for _, r := range rs {
		e.str(string(r.Kind))
		e.str(r.ID)
		e.str(r.Name)
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 && d.err == nil {
		d.err = fmt.Errorf("value %d overflows uint32", v)
	}
	return uint32(v)
}

// str copies, so the result never aliases bbolt's memory.
func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a collection length, refusing ones the remaining bytes cannot
// hold (each element takes at least min bytes), so a corrupt value cannot
// make the decoder allocate gigabytes.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.err = errTruncated
		return 0
	}
	return int(n)
}

func (d *decoder) records() []sink.Record {
	n := d.count(3)
	if n == 0 {
		return nil
	}
	rs := make([]sink.Record, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		rs = append(rs, sink.Record{Kind: sink.Kind(d.str()), ID: d.str(), Name: d.str()})
	}
	return rs
}

// done reports the first error, or trailing bytes.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return d.err
}

func encodeLedger(e LedgerEntry) ([]byte, error) {
	code := slices.Index(statusCodes, e.Status)
	if code <= 0 {
		return nil, invalid(fmt.Sprintf("ledger status %q", e.Status))
	}
	enc := encoder{b: make([]byte, 0, 256)}
	enc.b = append(enc.b, ledgerV2, byte(code))
	enc.str(e.Activity)
	enc.str(e.Reason)
	enc.str(e.MessageID)
	enc.str(e.ContentHash)
	enc.varint(timeNanos(e.FirstSeen))
	enc.varint(timeNanos(e.UpdatedAt))
	enc.records(e.Records)
	enc.uvarint(uint64(len(e.Provenance)))
	for _, p := range e.Provenance {
		enc.str(p.Account)
		enc.str(p.Folder)
		enc.uvarint(uint64(p.UIDValidity))
		enc.uvarint(uint64(p.UID))
	}
	// Sorted, so equal entries encode to equal bytes.
	keys := make([]string, 0, len(e.Events))
	for k := range e.Events {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	enc.uvarint(uint64(len(keys)))
	for _, k := range keys {
		enc.str(k)
		enc.str(e.Events[k])
	}
	enc.records(e.Created)
	return enc.b, nil
}

func decodeLedger(b []byte) (LedgerEntry, error) {
	if len(b) < 2 || (b[0] != ledgerV1 && b[0] != ledgerV2) {
		return LedgerEntry{}, fmt.Errorf("corrupt ledger entry: %d bytes, version %d", len(b), firstByte(b))
	}
	if int(b[1]) >= len(statusCodes) || b[1] == 0 {
		return LedgerEntry{}, fmt.Errorf("corrupt ledger entry: status code %d", b[1])
	}
	var e LedgerEntry
	e.Status = statusCodes[b[1]]
	d := decoder{b: b[2:]}
	e.Activity = d.str()
	e.Reason = d.str()
	e.MessageID = d.str()
	e.ContentHash = d.str()
	e.FirstSeen = nanosTime(d.varint())
	e.UpdatedAt = nanosTime(d.varint())
	e.Records = d.records()
	if n := d.count(4); n > 0 {
		e.Provenance = make([]sink.Provenance, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			e.Provenance = append(e.Provenance, sink.Provenance{
				Account: d.str(), Folder: d.str(), UIDValidity: d.uint32(), UID: d.uint32()})
		}
	}
	if n := d.count(2); n > 0 {
		e.Events = make(map[string]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.str()
			e.Events[k] = d.str()
		}
	}
	if b[0] >= ledgerV2 {
		e.Created = d.records()
	}
	if err := d.done(); err != nil {
		return LedgerEntry{}, fmt.Errorf("corrupt ledger entry: %w", err)
	}
	return e, nil
}

func encodeThread(rs []sink.Record) []byte {
	enc := encoder{b: []byte{threadsV1}}
	enc.records(rs)
	return enc.b
}

func decodeThread(b []byte) ([]sink.Record, error) {
	if len(b) < 1 || b[0] != threadsV1 {
		return nil, fmt.Errorf("corrupt thread entry: %d bytes, version %d", len(b), firstByte(b))
	}
	d := decoder{b: b[1:]}
	rs := d.records()
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("corrupt thread entry: %w", err)
	}
	return rs, nil
}
