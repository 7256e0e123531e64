//go:build !unix

package jsonl

import "os"

// lockFile is a no-op where flock is not available.
func lockFile(*os.File) error { return nil }

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }
