package jsonl

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mailsync/mailsync/sync/sink"
)

// scanBuf is the read buffer of scan; a key must fit in it.
const scanBuf = 1 << 20

// scan indexes the keys of the lines in [start, size) of f into keys and
// returns an entry per line (for the key file) and up to where the file
// holds complete, good lines. start is 0 or the end of a line (what the
// key file covers). Only the line prefixes are parsed (see lineKey), so
// bodies are read but never decoded.
//
// Every batch is one append, so a crash can only tear the end of the file:
// an unterminated last line, or a last line whose bytes never reached the
// disk (zeros). Those are cut (valid < size). A bad line with good lines
// after it is not a crash; scan refuses the file rather than guess.
func scan(f *os.File, start, size int64, keys map[string]int64) (entries []keyEntry, valid int64, err error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, start, size-start), scanBuf)
	var (
		off              = start // start of the current line
		lastStart int64  = -1
		badAt     int64  = -1 // start of a bad complete line
		lastKey   string      // key of the last line, if it added it
	)
	for off < size {
		line, rerr := r.ReadSlice('\n')
		key, ok := lineKey(line)
		n := int64(len(line))
		for errors.Is(rerr, bufio.ErrBufferFull) {
			line, rerr = r.ReadSlice('\n')
			n += int64(len(line))
		}
		if rerr == io.EOF {
			// Unterminated: torn by a crash mid-write.
			break
		}
		if rerr != nil {
			return nil, 0, fmt.Errorf("read at %d: %w", off, rerr)
		}
		if badAt >= 0 {
			return nil, 0, fmt.Errorf("line at byte %d is not a mailsync JSON line and is not the last one; fix or move the file", badAt)
		}
		if !ok {
			badAt = off
		} else if _, dup := keys[key]; !dup {
			keys[key] = off
			lastKey = key
		} else {
			lastKey = ""
		}
		if ok {
			entries = append(entries, keyEntry{off: off, n: n, key: key})
		}
		lastStart = off
		off += n
	}
	valid = off
	if badAt >= 0 {
		return entries, badAt, nil // the bad line was the last: cut it
	}
	if lastStart >= 0 {
		// The last line has a good prefix; check all of it, since its tail
		// is what a crash could have lost.
		ok, err := validLine(f, lastStart, valid-lastStart)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			if lastKey != "" {
				delete(keys, lastKey)
			}
			if len(entries) > 0 && entries[len(entries)-1].off == lastStart {
				entries = entries[:len(entries)-1]
			}
			valid = lastStart
		}
	}
	return entries, valid, nil
}

// validLine reports whether the n bytes at off are one JSON object and a
// newline.
func validLine(f *os.File, off, n int64) (bool, error) {
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return false, fmt.Errorf("read last line at %d: %w", off, err)
	}
	return json.Valid(b[:n-1]), nil
}

// ReadFile calls fn for each message of a JSON lines file, in file order,
// with the byte offset of its line (the receipt's number). It stops at the
// first error, including a line that does not decode; an unterminated last
// line (a crash mid-write, not yet repaired by Open) is ignored.
func ReadFile(path string, fn func(off int64, m *sink.Message) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s at %d: %w", path, off, err)
		}
		m, err := Unmarshal(line)
		if err != nil {
			return fmt.Errorf("%s: line at byte %d: %w", path, off, err)
		}
		if err := fn(off, m); err != nil {
			return err
		}
		off += int64(len(line))
	}
}
