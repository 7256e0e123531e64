package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// benchKey returns a message key shaped like the real ones (a hex digest),
// so ledger inserts land all over the B+tree as they will in production.
func benchKey(n uint64) string {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, n))
	return hex.EncodeToString(sum[:])
}

func benchEntry(uid uint32, key string, now time.Time) LedgerEntry {
	return LedgerEntry{
		Status: StatusDelivered, Activity: "act-0123456789", MessageID: key[:20] + "@mail.example.com",
		ContentHash: "sha256:" + key, Records: []sink.Record{{Kind: "contact", ID: "c-1234", Name: "Jane Doe"}},
		Provenance: []sink.Provenance{{Account: "sales", Folder: "INBOX", UIDValidity: 1, UID: uid}},
		FirstSeen:  now, UpdatedAt: now,
	}
}

// benchBatch writes one batch as a folder worker does: per message a ledger
// entry, the uid map and an outbox delete; then counters and the cursor.
func benchBatch(tx *Tx, uid *uint32, n int, now time.Time, keyOf func(uint32) string) error {
	for j := 0; j < n; j++ {
		*uid++
		key := keyOf(*uid)
		if err := tx.PutLedger(key, benchEntry(*uid, key, now)); err != nil {
			return err
		}
		if err := tx.PutUID("sales", "INBOX", *uid, key); err != nil {
			return err
		}
		if err := tx.DeleteOutbox("sales", "INBOX", *uid); err != nil {
			return err
		}
	}
	if err := tx.AddCounters("sales", "INBOX", Counters{Delivered: int64(n)}); err != nil {
		return err
	}
	return tx.PutFolder("sales", "INBOX", FolderState{UIDValidity: 1, LastUID: *uid, UpdatedAt: now})
}

// randomKey is a message key that is a bare digest: a batch's inserts land
// in random ledger leaves.
func randomKey(uid uint32) string { return benchKey(uint64(uid)) }

// datePrefixedKey is a digest behind a day stamp (here ~200 messages a day):
// a batch's inserts land in a few neighbouring leaves.
func datePrefixedKey(uid uint32) string {
	return fmt.Sprintf("%06d/", uid/200) + benchKey(uint64(uid))
}

// BenchmarkUpdateBatch measures the folder worker's commit, one Update per
// batch of 256 deliveries, with fdatasync on (Sync) or off (NoSync), into a
// new file (Fresh: the ledger grows during the run) or one whose ledger
// already holds 100,000 entries (100k), and with random or date-prefixed
// message keys. The page counts show why keys matter: every random key
// dirties its own 4 KiB leaf, and commit writes and syncs them all.
func BenchmarkUpdateBatch(b *testing.B) {
	const batch = 256
	for _, c := range []struct {
		name    string
		noSync  bool
		prefill uint32
		keyOf   func(uint32) string
	}{
		{"Fresh/Sync/RandomKeys", false, 0, randomKey},
		{"100k/Sync/RandomKeys", false, 100_000, randomKey},
		{"100k/NoSync/RandomKeys", true, 100_000, randomKey},
		{"100k/Sync/DatePrefixedKeys", false, 100_000, datePrefixedKey},
	} {
		s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: true, Logger: quietLog})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		var uid uint32
		for uid < c.prefill {
			if err := s.Update(func(tx *Tx) error { return benchBatch(tx, &uid, 1000, now, c.keyOf) }); err != nil {
				b.Fatal(err)
			}
		}
		s.db.NoSync = c.noSync
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			before := s.db.Stats()
			for i := 0; i < b.N; i++ {
				if err := s.Update(func(tx *Tx) error { return benchBatch(tx, &uid, batch, now, c.keyOf) }); err != nil {
					b.Fatal(err)
				}
			}
			after := s.db.Stats()
			diff := after.Sub(&before)
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(diff.TxStats.GetWrite())/float64(b.N), "pages/batch")
		})
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLedgerLookup measures the dedupe check against a 100,000-entry
// ledger: alone in its own View (PerView) and inside an open one (InTx).
func BenchmarkLedgerLookup(b *testing.B) {
	const entries = 100_000
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: true, Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	for start := uint32(1); start <= entries; start += 1000 {
		err := s.Update(func(tx *Tx) error {
			for uid := start; uid < start+1000; uid++ {
				key := benchKey(uint64(uid))
				if err := tx.PutLedger(key, benchEntry(uid, key, now)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = benchKey(uint64(1 + (i*7919)%entries))
	}
	lookup := func(b *testing.B, tx *Tx, i int) {
		if _, ok, err := tx.Ledger(keys[i%len(keys)]); err != nil || !ok {
			b.Fatalf("Ledger() = %v, %v", ok, err)
		}
	}
	b.Run("PerView", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := s.View(func(tx *Tx) error { lookup(b, tx, i); return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("InTx", func(b *testing.B) {
		b.ReportAllocs()
		err := s.View(func(tx *Tx) error {
			for i := 0; i < b.N; i++ {
				lookup(b, tx, i)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
}
