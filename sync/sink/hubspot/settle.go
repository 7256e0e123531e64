package hubspot

import (
	"fmt"
	"strconv"
	stdsync "sync"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// kvCreating is when this portal last got a batch create from mailsync
// (unix nanoseconds), written before the call.
const kvCreating = "creating_since"

// createMark is how often the create time is written at most: the wait
// after a restart adds this much, so a mark up to this old still covers.
const createMark = time.Second

// settle closes the window in which a crash could log a batch twice:
// HubSpot answered a create, the daemon died before its ledger commit,
// and on restart the search, which trails writes, does not find the new
// emails yet. The time of each create is kept in the state file; a
// process that starts within search_lag of it creates nothing the search
// did not find until search_lag has passed since that create.
type settle struct {
	kv  sink.KV
	lag time.Duration
	now func() time.Time

	mu     stdsync.Mutex
	until  time.Time // creates wait until then (set at start)
	marked time.Time // last write of kvCreating
}

func newSettle(kv sink.KV, lag time.Duration, now func() time.Time) (*settle, error) {
	s := &settle{kv: kv, lag: lag, now: now}
	b, err := kv.Get(kvCreating)
	if err != nil {
		return nil, fmt.Errorf("%s: read the last create time: %w", configPath, err)
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil && b != nil {
		s.until = time.Unix(0, n).Add(lag + createMark)
	}
	return s, nil
}

// wait reports how long creates must still wait (0: go ahead).
func (s *settle) wait() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(0, s.until.Sub(s.now()))
}

// mark records that a create is about to be sent.
func (s *settle) mark() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.marked) < createMark {
		return nil
	}
	if err := s.kv.Put(kvCreating, []byte(strconv.FormatInt(now.UnixNano(), 10))); err != nil {
		return fmt.Errorf("record the create time in the state file: %w", err)
	}
	s.marked = now
	return nil
}
