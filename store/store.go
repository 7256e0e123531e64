// Package store keeps mailsync's durable state in one bbolt file: per-folder
// cursors, the delivery ledger shared by all accounts, UID maps, the outbox of
// fetched-but-unacknowledged messages, dead letters, the thread index,
// backfill jobs and a small key-value area. It is the only package that
// touches bbolt buckets or raw bytes.
//
// All reads and writes go through a typed *Tx inside View or Update, so one
// Update can advance a cursor and record a batch of deliveries atomically.
// Each Update costs two fdatasyncs; callers batch (100–500 messages per
// Update) rather than commit per message.
//
// Layout (bucket names in quotes, <> are variable keys):
//
//	"meta"      "schema_version" → uint64 big-endian
//	"accounts"  <account> / "folders" / <folder> /
//	                "state"      → FolderState (fixed binary)
//	                "counters"   → Counters (binary)
//	                "uids"       / uint32 BE UID → message key
//	                "outbox"     / uint32 BE UID → OutboxEntry (JSON)
//	                "deadletter" / uint32 BE UID → DeadLetter (JSON)
//	"ledger"    <message key> → LedgerEntry (binary, codec.go)
//	"threads"   <Message-ID>  → []sink.Record (binary, codec.go)
//	"backfill"  <job id>      → BackfillJob (JSON)
//	"kv"        <key>         → raw bytes
//
// What is written or read per message (ledger, threads, UID map) or per
// batch (cursor, counters) uses compact binary encodings; the colder records
// (outbox, dead letters, backfill jobs) are JSON, readable and easy to
// extend. Every value a *Tx returns is decoded into fresh memory, so it stays
// valid after the transaction ends.
//
// Throughput is bounded by page writes, not encoding: message keys and
// Message-IDs are random, so each record of a batch dirties its own 4 KiB
// B+tree leaf in the ledger (and in the thread index), and commit writes and
// fsyncs all of them. Bigger batches amortise the fsyncs, not those pages.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	stdsync "sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/mailsync/mailsync/sync/sink"
)

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Options tunes Open. The zero value is right for the daemon.
type Options struct {
	// Timeout bounds the wait for the file lock; zero or negative means
	// DefaultTimeout. The store never waits forever (bbolt's zero would).
	Timeout time.Duration
	// NoSync skips fdatasync on commit. Only for tests and benchmarks: a
	// power loss can lose committed batches.
	NoSync bool
	// ReadOnly opens the file with a shared lock for offline commands such
	// as status. The file must exist; Update fails. A running daemon holds
	// an exclusive lock, so ReadOnly opens then fail with ErrInUse.
	ReadOnly bool
	// Logger receives warnings (file mode tightened, pid sidecar problems);
	// nil means slog.Default().
	Logger *slog.Logger
}

// Store is an open state file. It is safe for use by many goroutines:
// bbolt runs one Update at a time and any number of Views alongside.
type Store struct {
	db       *bbolt.DB
	path     string
	readOnly bool
	log      *slog.Logger

	closeOnce stdsync.Once
	closeErr  error

	commits    atomic.Int64
	commitTime atomic.Int64 // nanoseconds
}

// UpdateStats counts the read-write transactions that committed and the
// time they held the write lock, fn and commit (with its fsyncs) together:
// what the state file costs the pipeline, and how close its one writer is
// to saturation. For benchmarks and metrics.
type UpdateStats struct {
	Commits int64
	Time    time.Duration
}

// UpdateStats returns the totals since Open.
func (s *Store) UpdateStats() UpdateStats {
	return UpdateStats{Commits: s.commits.Load(), Time: time.Duration(s.commitTime.Load())}
}

// Open opens or creates the state file at path.
//
// It creates the parent directory (0700) if missing and the file with mode
// 0600. An existing file that group or others may access is tightened to
// 0600 with a warning, because it will hold tokens; if that chmod fails Open
// refuses the file. In ReadOnly mode the mode is only warned about.
//
// Errors: *InUseError (ErrInUse) when the lock is not obtained within the
// timeout; *SchemaError (ErrSchemaTooNew) for a file from a newer mailsync;
// otherwise wrapped I/O or bbolt errors naming the path.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, invalid("state file path is empty")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("state file %s: create directory: %w", path, err)
		}
	}
	if err := checkMode(path, opts.ReadOnly, log); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:  timeout,
		NoSync:   opts.NoSync,
		ReadOnly: opts.ReadOnly,
		// etcd's settings: the hashmap freelist stays fast as the file
		// fragments, and not syncing the freelist saves a page write per
		// commit at the cost of a freelist rebuild when opening.
		FreelistType:   bbolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, &InUseError{Path: path, PID: readPID(path)}
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: open: %w", path, err)
	}
	s := &Store{db: db, path: path, readOnly: opts.ReadOnly, log: log}
	if err := s.initSchema(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if !opts.ReadOnly {
		if err := writePID(path); err != nil {
			// The pid only improves another process's error message.
			log.Warn("cannot write state file pid sidecar", "path", path, "err", err)
		}
	}
	return s, nil
}

// checkMode tightens (or, read-only, warns about) a state file that group or
// others can access. A missing file is fine: bbolt creates it 0600.
func checkMode(path string, readOnly bool, log *slog.Logger) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	mode := fi.Mode().Perm()
	if mode&0o077 == 0 {
		return nil
	}
	if readOnly {
		log.Warn("state file is accessible to other users; run mailsync once to fix it",
			"path", path, "mode", fmt.Sprintf("%#o", mode))
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("state file %s has mode %#o and cannot be restricted to 0600: %w", path, mode, err)
	}
	log.Warn("state file was accessible to other users; restricted to 0600",
		"path", path, "old_mode", fmt.Sprintf("%#o", mode))
	return nil
}

// Close releases the file and its lock. It is safe to call more than once;
// later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if !s.readOnly {
			// Before the lock goes, so a process waiting for it cannot
			// have written its own pid yet.
			removePID(s.path)
		}
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("state file %s: close: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Size returns the state file's size on disk in bytes.
func (s *Store) Size() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, fmt.Errorf("state file %s: %w", s.path, err)
	}
	return fi.Size(), nil
}

// View runs fn in a read-only transaction. fn's error is returned as is;
// other errors name the state file. tx must not be used after fn returns.
func (s *Store) View(fn func(tx *Tx) error) error {
	var fnErr error
	err := s.db.View(func(btx *bbolt.Tx) error {
		fnErr = fn(&Tx{tx: btx})
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("state file %s: view: %w", s.path, err)
	}
	return err
}

// Update runs fn in a read-write transaction and commits if fn returns nil;
// if fn fails (or panics) nothing it wrote is kept. fn's error is returned as
// is; a failed begin or commit is wrapped with the state file's path.
// Updates are serialised, so keep fn short: no network inside.
func (s *Store) Update(fn func(tx *Tx) error) error {
	var fnErr error
	var began time.Time // holding the write lock, not waiting for it
	err := s.db.Update(func(btx *bbolt.Tx) error {
		began = time.Now()
		fnErr = fn(&Tx{tx: btx})
		return fnErr
	})
	if err == nil {
		s.commits.Add(1)
		s.commitTime.Add(int64(time.Since(began)))
	}
	if err != nil && fnErr == nil {
		return fmt.Errorf("state file %s: update: %w", s.path, err)
	}
	return err
}

// Group is Update for callers that may share a transaction with others
// (group commit, bbolt's DB.Batch): concurrent calls within a few
// milliseconds commit together, with one fsync. At 1,000 accounts each
// receiving mail at once that turns a thousand serial commits into a few.
// fn may run more than once (a failing fn in the group makes each run
// again alone), so it must write only through tx and keep no other
// effects. A lone call waits bbolt's MaxBatchDelay (10 ms) first: not for
// the delivery path of a single folder.
func (s *Store) Group(fn func(tx *Tx) error) error {
	var fnErr error
	err := s.db.Batch(func(btx *bbolt.Tx) error {
		fnErr = fn(&Tx{tx: btx})
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("state file %s: update: %w", s.path, err)
	}
	if err == nil {
		s.commits.Add(1) // calls, not transactions: their time is in no one's
	}
	return err
}

// Check runs bbolt's consistency check and returns every problem found,
// joined. It takes the write lock (a read-only store uses a read
// transaction, which is safe because no one else can write) because bbolt's
// check reads the freelist, which a concurrent writer would change.
func (s *Store) Check() error {
	var errs []error
	check := func(btx *bbolt.Tx) error {
		for err := range btx.Check() {
			errs = append(errs, err)
		}
		return nil
	}
	var err error
	if s.readOnly {
		err = s.db.View(check)
	} else {
		err = s.db.Update(check)
	}
	if err != nil {
		return fmt.Errorf("state file %s: check: %w", s.path, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("state file %s: check: %w", s.path, errors.Join(errs...))
	}
	return nil
}

// ThreadRecords is Tx.ThreadRecords in its own read transaction, so a *Store
// can serve as the matcher's thread index.
func (s *Store) ThreadRecords(messageIDs []string) ([]sink.Record, error) {
	var recs []sink.Record
	err := s.View(func(tx *Tx) error {
		var err error
		recs, err = tx.ThreadRecords(messageIDs)
		return err
	})
	return recs, err
}
