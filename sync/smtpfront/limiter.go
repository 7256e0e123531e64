package smtpfront

import (
	stdsync "sync"
	"time"
)

// limiter is a token bucket per account: n messages per period, refilled
// continuously, at most n saved up.
type limiter struct {
	n      float64
	period time.Duration
	now    func() time.Time

	mu      stdsync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(n int, period time.Duration) *limiter {
	return &limiter{n: float64(n), period: period, now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes a token for account; false means over the rate, and wait is
// how long until the next token.
func (l *limiter) allow(account string) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, found := l.buckets[account]
	if !found {
		b = &bucket{tokens: l.n, last: now}
		l.buckets[account] = b
	}
	b.tokens = min(l.n, b.tokens+now.Sub(b.last).Seconds()*l.n/l.period.Seconds())
	b.last = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.period) / l.n)
	}
	b.tokens--
	return true, 0
}
