package store

import (
	"errors"
	"fmt"
	"os"
)

// ErrInUse is matched (errors.Is) by the *InUseError Open returns when
// another process, or another Store in this process, holds the state file.
var ErrInUse = errors.New("state file in use")

// ErrSchemaTooNew is matched by the *SchemaError Open returns when the state
// file was written by a newer mailsync; this binary refuses it rather than
// misread it.
var ErrSchemaTooNew = errors.New("state file schema too new")

// ErrNotFound is returned by operations that need an existing record, such as
// AddProvenance on a key the ledger does not hold. Look-ups that may miss
// (Ledger, Folder, UIDKey, ...) report absence with a bool or a zero value
// instead.
var ErrNotFound = errors.New("not found")

// ErrInvalid is wrapped by every error about an argument the store refuses:
// an empty account, folder or key, UID 0, an unknown ledger status.
var ErrInvalid = errors.New("invalid argument")

// InUseError says who holds the state file. The pid comes from the sidecar
// file <path>.pid that the holder wrote; bbolt's flock cannot tell it.
type InUseError struct {
	Path string
	// PID is the holder's process id, or 0 when the sidecar was missing or
	// unreadable.
	PID int
}

// Error names the path and, when known, the holder's pid.
func (e *InUseError) Error() string {
	switch {
	case e.PID == 0:
		return fmt.Sprintf("state file %s is in use by another process (pid unknown)", e.Path)
	case e.PID == os.Getpid():
		return fmt.Sprintf("state file %s is already open in this process (pid %d)", e.Path, e.PID)
	default:
		return fmt.Sprintf("state file %s is in use by another process (pid %d)", e.Path, e.PID)
	}
}

// Unwrap makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Unwrap() error { return ErrInUse }

// SchemaError reports a state file whose schema this binary cannot use.
type SchemaError struct {
	Path  string
	Found uint64 // schema version in the file
	Known uint64 // newest schema version this binary knows
}

// Error names both schema versions.
func (e *SchemaError) Error() string {
	return fmt.Sprintf("state file %s was written by a newer mailsync (schema %d, this binary knows %d)",
		e.Path, e.Found, e.Known)
}

// Unwrap makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaError) Unwrap() error { return ErrSchemaTooNew }

// invalid builds an ErrInvalid error with a reason.
func invalid(reason string) error { return fmt.Errorf("%w: %s", ErrInvalid, reason) }

// folderErr attaches the account, folder and operation to err.
func folderErr(account, folder, op string, err error) error {
	return fmt.Errorf("account %q folder %q: %s: %w", clip(account), clip(folder), op, err)
}

// clip shortens a name for an error message, so an oversized key that was
// refused does not flood the log.
func clip(s string) string {
	const limit = 128
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
