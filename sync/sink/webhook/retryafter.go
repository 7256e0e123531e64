package webhook

import (
	"net/http"
	"strings"
	"time"
)

// MaxRetryAfter caps the wait a CRM can ask for, so one odd header cannot
// park a folder for days.
const MaxRetryAfter = time.Hour

// ParseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): either
// delay-seconds, a non-negative decimal integer, or an HTTP-date, taken
// relative to now. The wait is capped at MaxRetryAfter; a date in the past
// is a wait of 0. ok is false when v is neither form.
func ParseRetryAfter(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		const maxSecs = int64(MaxRetryAfter / time.Second)
		var secs int64
		for i := 0; i < len(v); i++ {
			secs = secs*10 + int64(v[i]-'0')
			if secs > maxSecs { // also stops overflow of a huge number
				return MaxRetryAfter, true
			}
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	wait = t.Sub(now)
	switch {
	case wait < 0:
		return 0, true
	case wait > MaxRetryAfter:
		return MaxRetryAfter, true
	}
	// HTTP-dates have whole seconds; round up so we never come back early.
	return wait.Truncate(time.Second) + ceilSecond(wait), true
}

func ceilSecond(d time.Duration) time.Duration {
	if d%time.Second != 0 {
		return time.Second
	}
	return 0
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
