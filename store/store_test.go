package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// openAt opens path and, at cleanup, closes it, reopens the file as left on
// disk and runs the bbolt consistency check on it.
func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLog
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		c, err := Open(path, Options{Logger: quietLog, NoSync: true})
		if err != nil {
			t.Errorf("reopen for check: %v", err)
			return
		}
		if err := c.Check(); err != nil {
			t.Errorf("Check() = %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close() after check = %v", err)
		}
	})
	return s
}

// openTest opens a fresh store in a temp dir.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "state.db"), Options{NoSync: true})
}

func TestOpenCreatesPrivateDirAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "state.db")
	s := openAt(t, path, Options{})
	if got, want := s.Path(), path; got != want {
		t.Fatalf("Path() = %q, want %q", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Fatalf("file mode = %#o, want %#o", got, want)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := di.Mode().Perm(), os.FileMode(0o700); got != want {
		t.Fatalf("dir mode = %#o, want %#o", got, want)
	}
	if n, err := s.Size(); err != nil || n <= 0 {
		t.Fatalf("Size() = %d, %v, want > 0", n, err)
	}
	if got, want := readPID(path), os.Getpid(); got != want {
		t.Fatalf("pid sidecar = %d, want %d", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid sidecar after Close: stat err = %v, want not exist", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
}

func TestOpenTightensWideMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path, Options{NoSync: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, path, Options{NoSync: true})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Fatalf("file mode after reopen = %#o, want %#o", got, want)
	}
}

func TestOpenInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	openAt(t, path, Options{NoSync: true})

	done := make(chan error, 1)
	go func() {
		s, err := Open(path, Options{Timeout: 100 * time.Millisecond, Logger: quietLog})
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("second Open did not give up on the lock")
	}
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open() = %v, want ErrInUse", err)
	}
	for _, want := range []string{path, fmt.Sprintf("pid %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	var iu *InUseError
	if !errors.As(err, &iu) || iu.PID != os.Getpid() {
		t.Fatalf("errors.As(*InUseError) = %+v, want PID %d", iu, os.Getpid())
	}
	// The failed Open must not have taken over the sidecar.
	if got, want := readPID(path), os.Getpid(); got != want {
		t.Fatalf("pid sidecar = %d, want %d", got, want)
	}
}

func TestInUseErrorWithoutPID(t *testing.T) {
	err := &InUseError{Path: "/x/state.db"}
	if got, want := err.Error(), "state file /x/state.db is in use by another process (pid unknown)"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	err = &InUseError{Path: "/x/state.db", PID: os.Getpid() + 1}
	if got, want := err.Error(), fmt.Sprintf("state file /x/state.db is in use by another process (pid %d)", os.Getpid()+1); got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, 3))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for _, ro := range []bool{false, true} {
		s, err := Open(path, Options{ReadOnly: ro, Logger: quietLog})
		if err == nil {
			s.Close()
			t.Fatalf("Open(ReadOnly=%v) of schema 3 succeeded", ro)
		}
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Open(ReadOnly=%v) = %v, want ErrSchemaTooNew", ro, err)
		}
		if want := "written by a newer mailsync (schema 3, this binary knows 1)"; !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not contain %q", err, want)
		}
	}
	if _, err := os.Stat(pidPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused Open left a pid sidecar (stat err %v)", err)
	}
	// The file is untouched: still schema 3, and no mailsync buckets added.
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if v, _ := readSchema(tx); v != 3 {
			t.Errorf("schema after refused Open = %d, want 3", v)
		}
		if tx.Bucket(bucketLedger) != nil {
			t.Error("refused Open created the ledger bucket")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesCorruptSchemaValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keySchemaVersion, []byte("1"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{Logger: quietLog}); err == nil {
		s.Close()
		t.Fatal("Open with a 1-byte schema_version succeeded")
	}
}

func TestReopenKeepsDataAndReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	want := FolderState{UIDValidity: 9, LastUID: 42}
	if err := s.Update(func(tx *Tx) error { return tx.PutFolder("a", "INBOX", want) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro := openAt(t, path, Options{ReadOnly: true})
	var got FolderState
	if err := ro.View(func(tx *Tx) (err error) { got, err = tx.Folder("a", "INBOX"); return err }); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Folder() after reopen = %+v, want %+v", got, want)
	}
	if err := ro.Update(func(tx *Tx) error { return nil }); err == nil {
		t.Fatal("Update on a read-only store succeeded")
	}
	if err := ro.Check(); err != nil {
		t.Fatalf("Check() read-only = %v", err)
	}
	if _, err := os.Stat(pidPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only Open wrote a pid sidecar (stat err %v)", err)
	}
}

func TestOpenReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", "state.db")
	if s, err := Open(path, Options{ReadOnly: true, Logger: quietLog}); err == nil {
		s.Close()
		t.Fatal("read-only Open of a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("read-only Open created the directory")
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := Open("", Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open(\"\") = %v, want ErrInvalid", err)
	}
}

func TestStoreErrorsPassThrough(t *testing.T) {
	s := openTest(t)
	sentinel := errors.New("sentinel")
	if err := s.Update(func(*Tx) error { return sentinel }); err != sentinel {
		t.Fatalf("Update() = %v, want the fn's error unchanged", err)
	}
	if err := s.View(func(*Tx) error { return sentinel }); err != sentinel {
		t.Fatalf("View() = %v, want the fn's error unchanged", err)
	}
}

// TestGroupCommitsConcurrentCallsTogether: concurrent Group calls all
// land, and a failing one does not take the others down.
func TestGroupCommitsConcurrentCallsTogether(t *testing.T) {
	s := openTest(t)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Group(func(tx *Tx) error {
				if i == 7 {
					return errors.New("refused")
				}
				return tx.PutFolder("a", fmt.Sprintf("F%d", i), FolderState{UIDValidity: 1, LastUID: uint32(i)})
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Fatalf("Group %d: %v", i, err)
		}
	}
	if err := s.View(func(tx *Tx) error {
		for i := range 20 {
			st, err := tx.Folder("a", fmt.Sprintf("F%d", i))
			if err != nil {
				return err
			}
			if want := uint32(i); i != 7 && st.LastUID != want {
				t.Errorf("F%d LastUID = %d, want %d", i, st.LastUID, want)
			}
			if i == 7 && st.UIDValidity != 0 {
				t.Errorf("F7 was written by a failing Group")
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
