package sinktest

import (
	"context"
	"fmt"
	stdsync "sync"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// Inspect reports what reached the backing store: every key that arrived
// and how many times it did.
type Inspect func(t *testing.T) map[string]int

// NewSink builds a fresh, empty sink for one subtest and a way to look at
// its backing store.
type NewSink func(t *testing.T) (sink.Sink, Inspect)

// contractTimeout bounds every subtest's deliveries.
const contractTimeout = 30 * time.Second

// bodySize keeps the suite fast while still sending multi-line bodies.
const bodySize = 4 << 10

// RunContract runs the suite every sink adapter must pass: exactly-once
// arrival per key, idempotent redelivery with stable receipts, ordered batch
// results, cancellation that fails rather than succeeds, concurrent
// delivery, and a safe Close. newSink is called once per subtest.
func RunContract(t *testing.T, newSink NewSink) {
	t.Run("DeliverOnce", func(t *testing.T) { testDeliverOnce(t, newSink) })
	t.Run("RedeliverSameReceipt", func(t *testing.T) { testRedeliver(t, newSink) })
	t.Run("BatchInOrder", func(t *testing.T) { testBatchInOrder(t, newSink) })
	t.Run("BatchDuplicateKeys", func(t *testing.T) { testBatchDuplicates(t, newSink) })
	t.Run("EmptyKeyIsPermanent", func(t *testing.T) { testEmptyKey(t, newSink) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, newSink) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newSink) })
	t.Run("Close", func(t *testing.T) { testClose(t, newSink) })
}

func setup(t *testing.T, newSink NewSink) (context.Context, sink.Sink, Inspect) {
	t.Helper()
	s, inspect := newSink(t)
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), contractTimeout)
	t.Cleanup(cancel)
	return ctx, s, inspect
}

// wantArrived fails unless exactly the keys of ms arrived, once each.
func wantArrived(t *testing.T, inspect Inspect, ms []*sink.Message) {
	t.Helper()
	got := inspect(t)
	want := map[string]bool{}
	for _, m := range ms {
		want[m.Key] = true
	}
	for k := range want {
		if got[k] != 1 {
			t.Errorf("key %s arrived %d times, want 1", k, got[k])
		}
	}
	for k, n := range got {
		if !want[k] {
			t.Errorf("unexpected key %s arrived %d times", k, n)
		}
	}
}

// deliver delivers m alone and returns its activity id.
func deliver(t *testing.T, ctx context.Context, s sink.Sink, m *sink.Message) string {
	t.Helper()
	r, err := sink.DeliverOne(ctx, s, m)
	if err != nil {
		t.Fatalf("Deliver(%s) error: %v", m.Key, err)
	}
	if r.Activity == "" {
		t.Fatalf("Deliver(%s) returned an empty receipt", m.Key)
	}
	return r.Activity
}

func testDeliverOnce(t *testing.T, newSink NewSink) {
	ctx, s, inspect := setup(t, newSink)
	ms := Messages("once", 20, bodySize)
	for _, m := range ms {
		deliver(t, ctx, s, m)
	}
	wantArrived(t, inspect, ms)
}

func testRedeliver(t *testing.T, newSink NewSink) {
	ctx, s, inspect := setup(t, newSink)
	ms := Messages("again", 10, bodySize)
	first := make([]string, len(ms))
	for i, m := range ms {
		first[i] = deliver(t, ctx, s, m)
	}
	for i, m := range ms {
		if got := deliver(t, ctx, s, m); got != first[i] {
			t.Errorf("redelivery of %s: receipt %q, want %q", m.Key, got, first[i])
		}
	}
	for i, r := range s.Deliver(ctx, ms) {
		if r.Err != nil || r.Receipt.Activity != first[i] {
			t.Errorf("batch redelivery of %s = (%q, %v), want (%q, nil)", ms[i].Key, r.Receipt.Activity, r.Err, first[i])
		}
	}
	wantArrived(t, inspect, ms)
}

func testBatchInOrder(t *testing.T, newSink NewSink) {
	ctx, s, inspect := setup(t, newSink)
	ms := Messages("batch", 30, bodySize)
	res := s.Deliver(ctx, ms)
	if got, want := len(res), len(ms); got != want {
		t.Fatalf("DeliverAll returned %d results, want %d", got, want)
	}
	for i, r := range res {
		if r.Err != nil || r.Receipt.Activity == "" {
			t.Fatalf("result %d = (%q, %v), want a receipt", i, r.Receipt.Activity, r.Err)
		}
	}
	// A single delivery of a key returns its receipt, so result i must be
	// the one for message i.
	for i, m := range ms {
		if got := deliver(t, ctx, s, m); got != res[i].Receipt.Activity {
			t.Errorf("result %d has receipt %q, but %s's receipt is %q", i, res[i].Receipt.Activity, m.Key, got)
		}
	}
	wantArrived(t, inspect, ms)
}

func testBatchDuplicates(t *testing.T, newSink NewSink) {
	ctx, s, inspect := setup(t, newSink)
	a, b, c := Message("dup-a", bodySize), Message("dup-b", bodySize), Message("dup-c", bodySize)
	res := s.Deliver(ctx, []*sink.Message{a, b, a, c, b})
	if len(res) != 5 {
		t.Fatalf("DeliverAll returned %d results, want 5", len(res))
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("result %d error: %v", i, r.Err)
		}
	}
	if res[0].Receipt.Activity != res[2].Receipt.Activity || res[1].Receipt.Activity != res[4].Receipt.Activity {
		t.Errorf("receipts of repeated keys differ: %+v", res)
	}
	wantArrived(t, inspect, []*sink.Message{a, b, c})
}

func testEmptyKey(t *testing.T, newSink NewSink) {
	ctx, s, inspect := setup(t, newSink)
	m := Message("", bodySize)
	if _, err := sink.DeliverOne(ctx, s, m); !sink.IsPermanent(err) {
		t.Errorf("Deliver(empty key) error = %v, want a permanent error", err)
	}
	wantArrived(t, inspect, nil)
}

func testCancelled(t *testing.T, newSink NewSink) {
	_, s, inspect := setup(t, newSink)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ms := Messages("cancelled", 5, bodySize)
	if r, err := sink.DeliverOne(ctx, s, ms[0]); err == nil {
		t.Errorf("Deliver with a cancelled context = %q, want an error", r.Activity)
	} else if sink.IsPermanent(err) {
		t.Errorf("Deliver with a cancelled context: %v is permanent; cancellation must not dead-letter", err)
	}
	for i, r := range s.Deliver(ctx, ms) {
		if r.Err == nil {
			t.Errorf("batch result %d with a cancelled context = %q, want an error", i, r.Receipt.Activity)
		} else if sink.IsPermanent(r.Err) {
			t.Errorf("batch result %d: %v is permanent", i, r.Err)
		}
	}
	wantArrived(t, inspect, nil)
}

func testConcurrent(t *testing.T, newSink NewSink) {
	ctx, s, inspect := setup(t, newSink)
	const workers, keys = 6, 40
	ms := Messages("conc", keys, bodySize)
	var (
		mu       stdsync.Mutex
		receipts = map[string]map[string]bool{}
		errs     []error
	)
	record := func(m *sink.Message, r sink.Receipt, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Key, err))
			return
		}
		if receipts[m.Key] == nil {
			receipts[m.Key] = map[string]bool{}
		}
		receipts[m.Key][r.Activity] = true
	}
	var wg stdsync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Each worker starts at a different key and alternates single
			// deliveries with batches, so the same keys race every way.
			order := append(append([]*sink.Message{}, ms[w*keys/workers:]...), ms[:w*keys/workers]...)
			for i := 0; i < len(order); {
				if (i/7+w)%2 == 0 {
					r, err := sink.DeliverOne(ctx, s, order[i])
					record(order[i], r, err)
					i++
					continue
				}
				chunk := order[i:min(i+7, len(order))]
				for j, r := range s.Deliver(ctx, chunk) {
					record(chunk[j], r.Receipt, r.Err)
				}
				i += len(chunk)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("concurrent delivery: %v", err)
	}
	for k, rs := range receipts {
		if len(rs) != 1 {
			t.Errorf("key %s got %d different receipts, want 1: %v", k, len(rs), rs)
		}
	}
	wantArrived(t, inspect, ms)
}

func testClose(t *testing.T, newSink NewSink) {
	ctx, s, inspect := setup(t, newSink)
	m := Message("close-a", bodySize)
	deliver(t, ctx, s, m)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() error: %v, want nil", err)
	}
	if r, err := sink.DeliverOne(ctx, s, Message("close-b", bodySize)); err == nil {
		t.Errorf("Deliver after Close = %q, want an error", r.Activity)
	}
	wantArrived(t, inspect, []*sink.Message{m})
}
