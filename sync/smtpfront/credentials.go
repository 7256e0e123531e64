package smtpfront

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
	stdsync "sync"
	"syscall"
	"time"
)

// Credentials is the credentials file: one "account-id:secret" per line,
// blank lines and lines starting with # ignored. The secret is everything
// after the first colon, spaces included. The file is re-read when it
// changes, so a credential can be rotated without a restart; only hashes
// of the secrets are kept in memory.
type Credentials struct {
	path string

	mu    stdsync.Mutex
	stamp fileStamp
	sums  map[string][sha256.Size]byte
	err   error
}

type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

// LoadCredentials reads path. The error names the file and line, never a
// secret.
func LoadCredentials(path string) (*Credentials, error) {
	c := &Credentials{path: path}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refresh()
	if c.err != nil {
		return nil, c.err
	}
	return c, nil
}

// Accounts returns the account ids the file names.
func (c *Credentials) Accounts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refresh()
	ids := make([]string, 0, len(c.sums))
	for id := range c.sums {
		ids = append(ids, id)
	}
	return ids
}

// Check reports whether secret is account's credential. A file that became
// unreadable or invalid keeps the last good contents and returns the
// problem as err (the caller logs it), so a bad edit does not lock every
// CRM out.
func (c *Credentials) Check(account, secret string) (ok bool, err error) {
	c.mu.Lock()
	c.refresh()
	want, known := c.sums[account]
	err = c.err
	c.mu.Unlock()
	got := sha256.Sum256([]byte(secret))
	// Compare even for an unknown account, so timing does not tell which
	// account ids exist.
	match := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	return known && match, err
}

// refresh re-reads the file when its stamp changed. Called with mu held.
func (c *Credentials) refresh() {
	fi, err := os.Stat(c.path)
	if err != nil {
		c.err = fmt.Errorf("smtp_front.credentials_file: %w", err)
		return
	}
	stamp := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		stamp.ino = st.Ino
	}
	if stamp == c.stamp && c.sums != nil {
		return
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		c.err = fmt.Errorf("smtp_front.credentials_file: %w", err)
		return
	}
	sums, err := parseCredentials(b)
	if err != nil {
		c.err = fmt.Errorf("smtp_front.credentials_file %s: %w", c.path, err)
		return
	}
	c.stamp, c.sums, c.err = stamp, sums, nil
}

func parseCredentials(b []byte) (map[string][sha256.Size]byte, error) {
	sums := map[string][sha256.Size]byte{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		id, secret, ok := strings.Cut(line, ":")
		id = strings.TrimSpace(id)
		switch {
		case !ok || id == "":
			return nil, fmt.Errorf("line %d: want account-id:secret", n)
		case secret == "":
			return nil, fmt.Errorf("line %d: account %s has an empty secret", n, id)
		}
		if _, dup := sums[id]; dup {
			return nil, fmt.Errorf("line %d: account %s is listed twice", n, id)
		}
		sums[id] = sha256.Sum256([]byte(secret))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(sums) == 0 {
		return nil, errors.New("names no account")
	}
	return sums, nil
}
