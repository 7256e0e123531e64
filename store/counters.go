package store

import (
	"encoding/binary"
	"fmt"
)

// Counters are running totals for status output. Deltas may be negative
// (a dead letter retried and delivered moves one from DeadLettered to
// Delivered).
type Counters struct {
	Delivered    int64
	Excluded     int64
	Skipped      int64
	DeadLettered int64
	Retracted    int64
}

// Add returns c plus d, field by field.
func (c Counters) Add(d Counters) Counters {
	return Counters{
		Delivered:    c.Delivered + d.Delivered,
		Excluded:     c.Excluded + d.Excluded,
		Skipped:      c.Skipped + d.Skipped,
		DeadLettered: c.DeadLettered + d.DeadLettered,
		Retracted:    c.Retracted + d.Retracted,
	}
}

// Counters are stored as a version byte and then int64s in field order. A
// shorter value (written before a field was added) reads the missing fields
// as 0; a longer one (from a newer binary) ignores the extra ones.
const countersV1 = 1

func encodeCounters(c Counters) []byte {
	fs := []int64{c.Delivered, c.Excluded, c.Skipped, c.DeadLettered, c.Retracted}
	b := make([]byte, 0, 1+8*len(fs))
	b = append(b, countersV1)
	for _, f := range fs {
		b = binary.BigEndian.AppendUint64(b, uint64(f))
	}
	return b
}

func decodeCounters(b []byte) (Counters, error) {
	if len(b) == 0 || b[0] != countersV1 || (len(b)-1)%8 != 0 {
		return Counters{}, fmt.Errorf("corrupt counters: %d bytes, version %d", len(b), firstByte(b))
	}
	var c Counters
	fs := []*int64{&c.Delivered, &c.Excluded, &c.Skipped, &c.DeadLettered, &c.Retracted}
	b = b[1:]
	for i := 0; i < len(fs) && len(b) >= 8; i++ {
		*fs[i] = int64(binary.BigEndian.Uint64(b))
		b = b[8:]
	}
	return c, nil
}

// Counters returns the folder's totals, zero if none were recorded.
func (t *Tx) Counters(account, folder string) (Counters, error) {
	if err := checkFolder(account, folder); err != nil {
		return Counters{}, folderErr(account, folder, "get counters", err)
	}
	f, err := t.folder(account, folder, false)
	if err != nil {
		return Counters{}, folderErr(account, folder, "get counters", err)
	}
	if f == nil {
		return Counters{}, nil
	}
	v := f.Get(keyCounters)
	if v == nil {
		return Counters{}, nil
	}
	c, err := decodeCounters(v)
	if err != nil {
		return Counters{}, folderErr(account, folder, "get counters", err)
	}
	return c, nil
}

// AddCounters adds delta to the folder's totals.
func (t *Tx) AddCounters(account, folder string, delta Counters) error {
	c, err := t.Counters(account, folder)
	if err != nil {
		return err
	}
	f, err := t.folder(account, folder, true)
	if err == nil {
		err = f.Put(keyCounters, encodeCounters(c.Add(delta)))
	}
	if err != nil {
		return folderErr(account, folder, "add counters", err)
	}
	return nil
}

// AccountCounters sums the totals of all the account's folders.
func (t *Tx) AccountCounters(account string) (Counters, error) {
	folders, err := t.Folders(account)
	if err != nil {
		return Counters{}, err
	}
	var sum Counters
	for _, f := range folders {
		c, err := t.Counters(account, f)
		if err != nil {
			return Counters{}, err
		}
		sum = sum.Add(c)
	}
	return sum, nil
}
