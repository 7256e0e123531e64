// Package jsonl is a sink that appends each message as one JSON line to a
// local file. It is the default sink, the reference for the contract every
// CRM adapter keeps, and a durable hand-off for tools that read JSON lines.
//
// Durability: a delivery returns only after its line is on disk (fdatasync),
// and deliveries from concurrent workers share one write and one sync
// (group commit). Idempotency: the file itself is the ledger; Open indexes
// the keys already written and a key is never written twice.
//
// Format: each line is sink.Message as JSON with "key" first. The raw RFC
// 5322 body is a JSON string under "body" when it is valid UTF-8 and base64
// under "body_base64" when it is not, so bytes are never altered (see
// AppendMessage). A receipt is "jsonl:<byte offset of the line>".
package jsonl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	stdsync "sync"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// DefaultFileMode is the mode of a new file: mail is personal data.
const DefaultFileMode os.FileMode = 0o600

// ErrClosed is returned by deliveries after Close.
var ErrClosed = errors.New("jsonl sink is closed")

// Config says where the file is.
type Config struct {
	// Path of the file; its directory is created (0700) if missing.
	Path string `mapstructure:"path"`
	// FileMode of a newly created file; 0 means DefaultFileMode. An existing
	// file keeps its mode.
	FileMode os.FileMode `mapstructure:"file_mode"`
}

// Sink appends messages to a JSON lines file. It is safe for concurrent use.
type Sink struct {
	path string

	qmu   stdsync.Mutex
	queue []*request // waiting for the next group commit

	// ioMu is held by the goroutine that writes a group; everything below
	// is only touched under it.
	ioMu    stdsync.Mutex
	f       *os.File
	size    int64            // bytes of complete lines in the file
	keys    map[string]int64 // key -> offset of its line
	closed  bool
	broken  error    // set when the file's state is unknown after a failed sync
	iov     [][]byte // the ranges of the group being written
	pending map[string]int64
	stats   Stats
	// kf is the key file (keyfile.go), nil once a write to it failed;
	// entries are the lines of the group being written.
	kf      *os.File
	entries []keyEntry
	// writeFile appends the ranges to f in order and returns how many
	// bytes it wrote; tests replace it to fill the disk.
	writeFile func([][]byte) (int64, error)
}

// Stats are the sink's totals since Open, for benchmarks and metrics: how
// much went to the file and where the time went.
type Stats struct {
	Lines, Bytes int64
	// Writes and WriteTime are the write(2) calls; Syncs and SyncTime the
	// fdatasync(2) calls that made them durable.
	Writes, Syncs       int64
	WriteTime, SyncTime time.Duration
	// EncodeTime is the encoding done on the delivery path (what Prepare
	// did ahead of it is not counted).
	EncodeTime time.Duration
	// ScannedBytes is how much of the file Open read to index it: the
	// lines after what the key file covers.
	ScannedBytes int64
}

// Stats returns the totals since Open.
func (s *Sink) Stats() Stats {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	return s.stats
}

var (
	_ sink.Sink     = (*Sink)(nil)
	_ sink.Preparer = (*Sink)(nil)
	_ sink.Grouper  = (*Sink)(nil)
)

// deliverGroup is how many messages the worker hands to one Deliver: a
// re-delivery after a crash costs the file nothing (the key index drops
// it), so the group is sized for the disk: one write and one fdatasync per
// 1,000 lines (27 MB of average mail) instead of per 50, which spent more
// time syncing than writing. The worker's byte bound on a batch still
// caps the group's memory.
const deliverGroup = 1000

// DeliverGroup implements sink.Grouper.
func (s *Sink) DeliverGroup() int { return deliverGroup }

// Open opens or creates the file, indexes the keys it holds and repairs a
// line torn by a crash (see scan). Only one Sink may have a file open: a
// second Open of the same path, from any process, fails.
func Open(cfg Config) (*Sink, error) {
	if cfg.Path == "" {
		return nil, errors.New("jsonl: path is empty")
	}
	mode := cfg.FileMode
	if mode == 0 {
		mode = DefaultFileMode
	}
	dir := filepath.Dir(cfg.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("jsonl: create directory: %w", err)
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, mode)
	if err != nil {
		return nil, fmt.Errorf("jsonl: open: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("jsonl: %s: %w", cfg.Path, err)
	}
	s := &Sink{path: cfg.Path, f: f, pending: map[string]int64{}}
	s.writeFile = func(iov [][]byte) (int64, error) { return writev(f, iov) }
	if err := s.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("jsonl: %s: %w", cfg.Path, err)
	}
	// Make the file's directory entry durable too (a new file's name is
	// only as safe as its directory's last sync).
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("jsonl: sync directory: %w", err)
	}
	return s, nil
}

// load indexes the file and cuts a torn tail: the keys the key file
// vouches for, then a scan of the lines after them (see keyfile.go).
func (s *Sink) load() error {
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	kpath := s.path + keyFileSuffix
	keys, covered, kvalid := readKeyFile(kpath, s.f, st.Size())
	entries, valid, err := scan(s.f, covered, st.Size(), keys)
	if err != nil {
		return err
	}
	s.stats.ScannedBytes = st.Size() - covered
	// Without a key file the sink still works, only the next start scans
	// more; so a key file that cannot be written is not an error.
	s.kf, _ = openKeyFile(kpath, kvalid, entries)
	if valid < st.Size() {
		if err := s.f.Truncate(valid); err != nil {
			return fmt.Errorf("truncate torn tail at %d: %w", valid, err)
		}
		if err := datasync(s.f); err != nil {
			return fmt.Errorf("sync after repair: %w", err)
		}
	}
	s.keys, s.size = keys, valid
	return nil
}

// String names the sink for logs.
func (s *Sink) String() string { return "jsonl:" + s.path }

// Len returns how many distinct keys the file holds.
func (s *Sink) Len() int {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	return len(s.keys)
}

// Deliver appends the messages whose keys are new with one write and one
// sync, shared with any batches that other goroutines submit meanwhile. A
// key repeated within ms is written once and both get its receipt. The
// receipt's activity is "jsonl:<byte offset of the line>", the same for
// every delivery of a key. Errors: ErrClosed after Close, ctx's error if ctx
// ends before the write, a permanent error for a message that cannot be
// encoded (empty key), and a transient error when the write or sync fails.
func (s *Sink) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	req := &request{ctx: ctx, ms: ms, res: make([]sink.Result, len(ms))}
	if len(ms) == 0 {
		return req.res
	}
	if err := ctx.Err(); err != nil {
		req.fail(err)
		return req.res
	}
	start := time.Now()
	req.encode() // outside the lock, so workers encode in parallel
	encoded := time.Since(start)

	s.qmu.Lock()
	s.queue = append(s.queue, req)
	s.qmu.Unlock()

	// Group commit: whoever gets ioMu writes everything queued so far. A
	// request that arrives while a sync runs is written by the next holder,
	// together with all others that queued behind it.
	s.ioMu.Lock()
	s.stats.EncodeTime += encoded
	if !req.done {
		s.qmu.Lock()
		group := s.queue
		s.queue = nil
		s.qmu.Unlock()
		s.commit(group)
	}
	s.ioMu.Unlock()
	req.release()
	return req.res
}

// Close closes the file. Later deliveries fail with ErrClosed; a second
// Close returns nil.
func (s *Sink) Close() error {
	s.ioMu.Lock()
	defer s.ioMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.kf != nil {
		s.kf.Close()
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("jsonl: close: %w", err)
	}
	return nil
}

func receipt(off int64) sink.Receipt {
	return sink.Receipt{Activity: "jsonl:" + strconv.FormatInt(off, 10)}
}
