// Package filedir is a matcher.Directory read from a CSV or YAML file
// exported from a CRM. The file is re-read when it changes: on a look-up, at
// most once per CheckInterval, its modification time and size are compared
// with those last loaded. Polling needs no goroutine, so a Dir has nothing
// to close.
package filedir

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

// DefaultCheckInterval is how often a changed file is noticed by default.
const DefaultCheckInterval = 5 * time.Second

// Options configure Open.
type Options struct {
	// CheckInterval is the least time between two checks of the file;
	// zero means DefaultCheckInterval, negative checks on every look-up.
	CheckInterval time.Duration
	// Logger reports reloads and files that failed to reload; default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

// Dir is a Directory backed by a file. It is safe for concurrent use.
type Dir struct {
	path string
	opts Options

	idx       atomic.Pointer[index]
	lastCheck atomic.Int64 // unix nanoseconds

	mu      sync.Mutex // serialises checks and reloads
	modTime time.Time
	size    int64
	err     error
	loads   int
}

var _ matcher.Directory = (*Dir)(nil)

// Open loads the file at path; its extension (.csv, .yaml, .yml) says the
// format. A file that does not load is an error here; later, a bad edit
// keeps the last good data and is reported by Err and the logger.
func Open(path string, opts Options) (*Dir, error) {
	if opts.CheckInterval == 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if _, err := format(path); err != nil {
		return nil, err
	}
	d := &Dir{path: path, opts: opts}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.load(); err != nil {
		return nil, err
	}
	d.lastCheck.Store(opts.Now().UnixNano())
	return d, nil
}

func format(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".csv":
		return "csv", nil
	case ".yaml", ".yml":
		return "yaml", nil
	default:
		return "", fmt.Errorf("directory file %s: unknown extension %q (want .csv, .yaml or .yml)", path, ext)
	}
}

// load reads and indexes the file; d.mu is held. Stat comes first so a
// write racing the read is seen as a change at the next check.
func (d *Dir) load() error {
	fi, err := os.Stat(d.path)
	if err != nil {
		return fmt.Errorf("directory file: %w", err)
	}
	d.modTime, d.size = fi.ModTime(), fi.Size()
	b, err := os.ReadFile(d.path)
	if err != nil {
		return fmt.Errorf("directory file: %w", err)
	}
	f, _ := format(d.path)
	var rows []Row
	if f == "csv" {
		rows, err = ParseCSV(bytes.NewReader(b), d.path)
	} else {
		rows, err = ParseYAML(bytes.NewReader(b), d.path)
	}
	if err != nil {
		return err
	}
	idx, err := build(rows, d.path)
	if err != nil {
		return err
	}
	d.idx.Store(idx)
	d.loads++
	return nil
}

// check reloads the file if it changed, at most once per CheckInterval.
func (d *Dir) check() {
	now := d.opts.Now()
	if last := d.lastCheck.Load(); d.opts.CheckInterval > 0 && now.UnixNano()-last < int64(d.opts.CheckInterval) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if last := d.lastCheck.Load(); d.opts.CheckInterval > 0 && now.UnixNano()-last < int64(d.opts.CheckInterval) {
		return // another caller checked while we waited
	}
	d.lastCheck.Store(now.UnixNano())
	fi, err := os.Stat(d.path)
	if err != nil {
		if d.err == nil {
			d.opts.Logger.Warn("directory file unreadable, keeping last data", "path", d.path, "err", err)
		}
		d.err = err
		return
	}
	if fi.ModTime().Equal(d.modTime) && fi.Size() == d.size {
		return
	}
	if err := d.load(); err != nil {
		// Keep serving the last good data: a half-saved or mistyped
		// file must not empty the directory. The new mtime and size are
		// kept, so the same bad file is not re-parsed every interval.
		d.modTime, d.size = fi.ModTime(), fi.Size()
		d.err = err
		d.opts.Logger.Warn("directory file did not reload, keeping last data", "path", d.path, "err", err)
		return
	}
	d.err = nil
	d.opts.Logger.Info("directory file reloaded", "path", d.path, "emails", len(d.idx.Load().emails), "domains", len(d.idx.Load().domains))
}

// Err returns why the last reload failed, or nil after a good one.
func (d *Dir) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Loads returns how many times the file was loaded successfully.
func (d *Dir) Loads() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.loads
}

// LookupEmails implements matcher.Directory. It never fails: a file that
// stopped loading serves its last good data.
func (d *Dir) LookupEmails(ctx context.Context, emails []string) (map[string][]sink.Record, error) {
	d.check()
	return pick(d.idx.Load().emails, emails), nil
}

// LookupDomains implements matcher.Directory, as LookupEmails.
func (d *Dir) LookupDomains(ctx context.Context, domains []string) (map[string][]sink.Record, error) {
	d.check()
	return pick(d.idx.Load().domains, domains), nil
}

func pick(m map[string][]sink.Record, keys []string) map[string][]sink.Record {
	out := make(map[string][]sink.Record, len(keys))
	for _, k := range keys {
		if recs, ok := m[k]; ok {
			out[k] = recs
		}
	}
	return out
}
