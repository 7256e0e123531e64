package worker

import "testing"

func TestSplitBytesCoversRangeAndBoundsMemory(t *testing.T) {
	b := &batch{from: 10, to: 30}
	for _, u := range []uint32{11, 12, 15, 20, 21, 29} {
		b.items = append(b.items, &item{uid: u, size: 40})
	}
	b.items = append(b.items, &item{uid: 30, size: 500}) // larger than the limit alone
	parts := b.splitBytes(100)
	if got, want := len(parts), 4; got != want {
		t.Fatalf("len(parts) = %d, want %d", got, want)
	}
	next := b.from
	total := 0
	for i, p := range parts {
		if p.from != next {
			t.Fatalf("part %d from = %d, want %d (ranges must be contiguous)", i, p.from, next)
		}
		var sum int64
		for _, it := range p.items {
			if it.uid < p.from || it.uid > p.to {
				t.Fatalf("part %d [%d,%d] holds uid %d", i, p.from, p.to, it.uid)
			}
			sum += it.size
		}
		if sum > 100 && len(p.items) > 1 {
			t.Fatalf("part %d holds %d bytes in %d items, over the limit", i, sum, len(p.items))
		}
		total += len(p.items)
		next = p.to + 1
	}
	if got, want := parts[len(parts)-1].to, b.to; got != want {
		t.Fatalf("last part ends at %d, want %d", got, want)
	}
	if total != len(b.items) {
		t.Fatalf("parts hold %d items, want %d", total, len(b.items))
	}
}

func TestAckedThroughStopsAtFirstPending(t *testing.T) {
	b := &batch{from: 1, to: 10, items: []*item{{uid: 2, done: true}, {uid: 5}, {uid: 7, done: true}}}
	if got, want := b.ackedThrough(), uint32(4); got != want {
		t.Fatalf("ackedThrough() = %d, want %d", got, want)
	}
	b.items[1].done = true
	if got, want := b.ackedThrough(), uint32(10); got != want {
		t.Fatalf("ackedThrough() = %d, want %d", got, want)
	}
}
