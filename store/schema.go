package store

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"
)

// SchemaVersion is the newest state file schema this binary reads and writes.
const SchemaVersion uint64 = 1

var (
	bucketMeta     = []byte("meta")
	bucketAccounts = []byte("accounts")
	bucketLedger   = []byte("ledger")
	bucketThreads  = []byte("threads")
	bucketBackfill = []byte("backfill")
	bucketKV       = []byte("kv")

	keySchemaVersion = []byte("schema_version")

	topBuckets = [][]byte{bucketMeta, bucketAccounts, bucketLedger, bucketThreads, bucketBackfill, bucketKV}
)

// migrations[v] upgrades a file from schema v to v+1 inside the opening
// transaction. Version 0 is a new (empty) file.
var migrations = map[uint64]func(tx *bbolt.Tx) error{
	0: func(tx *bbolt.Tx) error {
		for _, name := range topBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
}

// readSchema returns the file's schema version; 0 when it has none yet.
func readSchema(tx *bbolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(keySchemaVersion)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta/schema_version is %d bytes, want 8: not a mailsync state file or corrupt", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// initSchema refuses newer files and migrates older ones to SchemaVersion.
// A read-only store cannot migrate, so it refuses a file that needs it.
func (s *Store) initSchema() error {
	check := func(found uint64) error {
		if found > SchemaVersion {
			return &SchemaError{Path: s.path, Found: found, Known: SchemaVersion}
		}
		return nil
	}
	if s.readOnly {
		return s.db.View(func(tx *bbolt.Tx) error {
			found, err := readSchema(tx)
			if err != nil {
				return fmt.Errorf("state file %s: %w", s.path, err)
			}
			if err := check(found); err != nil {
				return err
			}
			if found != 0 && found < SchemaVersion {
				return fmt.Errorf("state file %s has schema %d and needs migrating to %d: run the daemon once", s.path, found, SchemaVersion)
			}
			return nil
		})
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		found, err := readSchema(tx)
		if err != nil {
			return fmt.Errorf("state file %s: %w", s.path, err)
		}
		if err := check(found); err != nil {
			return err
		}
		if found == SchemaVersion {
			return nil
		}
		for v := found; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("state file %s: migrate schema %d to %d: %w", s.path, v, v+1, err)
			}
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("state file %s: %w", s.path, err)
		}
		if err := meta.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, SchemaVersion)); err != nil {
			return fmt.Errorf("state file %s: write schema version: %w", s.path, err)
		}
		return nil
	})
}
