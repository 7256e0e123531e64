package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Tx is a transaction with typed helpers. It is valid only inside the View
// or Update callback that received it, and only on that goroutine. Write
// helpers on a View's Tx fail with bbolt's ErrTxNotWritable.
//
// Every helper validates its arguments (ErrInvalid, never a panic) and wraps
// errors with what they concern: the account and folder, the ledger key, the
// job id. Read helpers on data that was never written return zero values.
type Tx struct {
	tx *bbolt.Tx
}

// Writable reports whether tx belongs to an Update.
func (t *Tx) Writable() bool { return t.tx.Writable() }

var (
	subFolders    = []byte("folders")
	subUIDs       = []byte("uids")
	subOutbox     = []byte("outbox")
	subDeadLetter = []byte("deadletter")
	keyState      = []byte("state")
	keyCounters   = []byte("counters")
)

// checkName refuses names bbolt cannot store as keys.
func checkName(what, s string) error {
	if s == "" {
		return invalid(what + " is empty")
	}
	if len(s) > bbolt.MaxKeySize {
		return invalid(fmt.Sprintf("%s is %d bytes, longer than %d", what, len(s), bbolt.MaxKeySize))
	}
	return nil
}

func checkFolder(account, folder string) error {
	if err := checkName("account", account); err != nil {
		return err
	}
	return checkName("folder", folder)
}

func checkUID(uid uint32) error {
	if uid == 0 {
		return invalid("uid 0")
	}
	return nil
}

// top returns a top-level bucket, creating it in a write transaction. In a
// read transaction a missing bucket is nil, read as empty.
func (t *Tx) top(name []byte) (*bbolt.Bucket, error) {
	if b := t.tx.Bucket(name); b != nil || !t.tx.Writable() {
		return b, nil
	}
	return t.tx.CreateBucketIfNotExists(name)
}

// account returns accounts/<account>, creating it if create is set. It
// returns nil, nil if it is missing and create is not set.
func (t *Tx) account(account string, create bool) (*bbolt.Bucket, error) {
	accts, err := t.top(bucketAccounts)
	if err != nil || accts == nil {
		return nil, err
	}
	if !create {
		return accts.Bucket([]byte(account)), nil
	}
	return accts.CreateBucketIfNotExists([]byte(account))
}

// folder returns accounts/<account>/folders/<folder>, like account.
func (t *Tx) folder(account, folder string, create bool) (*bbolt.Bucket, error) {
	a, err := t.account(account, create)
	if err != nil || a == nil {
		return nil, err
	}
	if !create {
		fs := a.Bucket(subFolders)
		if fs == nil {
			return nil, nil
		}
		return fs.Bucket([]byte(folder)), nil
	}
	fs, err := a.CreateBucketIfNotExists(subFolders)
	if err != nil {
		return nil, err
	}
	return fs.CreateBucketIfNotExists([]byte(folder))
}

// folderSub returns one of a folder's maps (uids, outbox, deadletter).
func (t *Tx) folderSub(account, folder string, sub []byte, create bool) (*bbolt.Bucket, error) {
	f, err := t.folder(account, folder, create)
	if err != nil || f == nil {
		return nil, err
	}
	if !create {
		return f.Bucket(sub), nil
	}
	return f.CreateBucketIfNotExists(sub)
}

// uidKey encodes a UID big-endian so cursor order is UID order.
func uidKey(uid uint32) []byte { return binary.BigEndian.AppendUint32(make([]byte, 0, 4), uid) }

// parseUID decodes a uidKey; 0 if malformed (never a valid UID).
func parseUID(k []byte) uint32 {
	if len(k) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(k)
}

// Times are stored as Unix nanoseconds, 0 for the zero time, and read back
// in UTC. That covers the years 1678 to 2262.
func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
