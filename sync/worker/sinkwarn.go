package worker

import (
	"log/slog"
	"regexp"
	stdsync "sync"
	"time"
)

// sinkWarnEvery is the longest a folder stalled on the sink goes without a
// warning line: an outage shows in the log while it lasts, not only at
// its start.
const sinkWarnEvery = 30 * time.Second

// sinkWarner rate-limits a folder's "sink unavailable" warnings: one for
// every new kind of error, and one at least every sinkWarnEvery while the
// same error goes on. A backfill may share the live folder's worker, so it
// locks.
type sinkWarner struct {
	mu   stdsync.Mutex
	kind string
	at   time.Time
}

// numbers are the parts of an error message that change between attempts
// of one fault (durations, offsets, ports), so "retry after 2s" and
// "retry after 3s" are one kind; a 3-digit HTTP status is kept, so a 500
// and a 503 are two.
var numbers = regexp.MustCompile(`[0-9]+(\.[0-9]+)?(ms|µs|s|m|h)\b|[0-9]{4,}`)

func (w *sinkWarner) warn(log *slog.Logger, err error, attempt int, wait time.Duration, waitingUID uint32) {
	if err == nil {
		return
	}
	kind := numbers.ReplaceAllString(err.Error(), "N")
	w.mu.Lock()
	due := kind != w.kind || time.Since(w.at) >= sinkWarnEvery
	if due {
		w.kind, w.at = kind, time.Now()
	}
	w.mu.Unlock()
	if due {
		log.Warn("sink unavailable; holding the cursor and retrying",
			"error", err, "consecutive_errors", attempt, "retry_in", wait.Round(time.Millisecond),
			"waiting_uid", waitingUID)
	}
}

func (w *sinkWarner) reset() {
	w.mu.Lock()
	w.kind, w.at = "", time.Time{}
	w.mu.Unlock()
}
