package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mailsync/mailsync/sync/sink"
)

const (
	// authRetry is how long deliveries wait after HubSpot refused the
	// credentials or a scope: long enough not to hammer, short enough to
	// recover soon after an operator fixed the app.
	authRetry = 5 * time.Minute
	// maxInlineWait is the longest rate-limit wait a call sleeps through;
	// a longer one is handed back as a RetryAfterError with the cursor held.
	maxInlineWait = 15 * time.Second
	// maxAttempts bounds the tries of one call (429 waits and one token
	// refresh).
	maxAttempts = 4
	maxResponse = 16 << 20
	snippetLen  = 300
)

// apiError is a refusal with HubSpot's own message.
type apiError struct {
	Op       string
	Status   int
	Category string
	Message  string
}

func (e *apiError) Error() string {
	msg := e.Message
	if len(msg) > snippetLen {
		msg = msg[:snippetLen] + "…"
	}
	if e.Category != "" {
		return fmt.Sprintf("hubspot %s: %d %s: %s", e.Op, e.Status, e.Category, msg)
	}
	return fmt.Sprintf("hubspot %s: %d: %s", e.Op, e.Status, msg)
}

// pacer keeps calls below HubSpot's limits and holds them while HubSpot
// said to wait.
type pacer struct {
	all, search *rate.Limiter
	mu          stdsync.Mutex
	until       time.Time
}

func newPacer(cfg Config) *pacer {
	per := float64(cfg.RequestsPer10s) / 10
	return &pacer{
		all:    rate.NewLimiter(rate.Limit(per), max(1, int(per))),
		search: rate.NewLimiter(rate.Limit(cfg.SearchPerSecond), 1),
	}
}

// holdFor makes every call wait d from now (a 429, an exhausted window).
func (p *pacer) holdFor(d time.Duration) {
	p.mu.Lock()
	if t := time.Now().Add(d); t.After(p.until) {
		p.until = t
	}
	p.mu.Unlock()
}

// wait blocks for the hold and the token buckets. A hold longer than
// maxInlineWait is returned as a RetryAfterError instead.
func (c *Client) wait(ctx context.Context, search bool) error {
	c.pace.mu.Lock()
	hold := time.Until(c.pace.until)
	c.pace.mu.Unlock()
	if hold > maxInlineWait {
		return &sink.RetryAfterError{After: hold, Err: errors.New("hubspot: rate limit: waiting as HubSpot asked")}
	}
	if hold > 0 {
		c.m.throttled.Add(hold.Seconds())
		t := time.NewTimer(hold)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if search {
		if err := c.pace.search.Wait(ctx); err != nil {
			return ctxErr(ctx, err)
		}
	}
	return ctxErr(ctx, c.pace.all.Wait(ctx))
}

// ctxErr reports ctx's own error when the limiter refused because ctx
// ends before a token would be free.
func ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if _, ok := ctx.Deadline(); ok {
		return fmt.Errorf("hubspot: rate limit wait exceeds the deadline: %w", context.DeadlineExceeded)
	}
	return err
}

// call sends one request and decodes a 2xx answer into out. Errors follow
// sink.Sink's contract: *sink.RetryAfterError when HubSpot asked to wait
// or refused the credentials (cursor held), sink.Permanent for other 4xx
// with HubSpot's message, transient otherwise (5xx, transport, timeouts).
// A 404 is returned as a plain *apiError for the caller to interpret.
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, sink.Permanent(fmt.Errorf("hubspot %s: encode: %w", op, err))
		}
	}
	u := c.cfg.BaseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	renewed := false
	for attempt := 1; ; attempt++ {
		if err := c.wait(ctx, strings.HasSuffix(path, "/search")); err != nil {
			return 0, err
		}
		tok, err := c.auth.token(ctx)
		if err != nil {
			c.m.errors.WithLabelValues(op, "auth").Inc()
			if errors.Is(err, ErrReauth) {
				return 0, &sink.RetryAfterError{After: authRetry, Err: err}
			}
			return 0, err
		}
		status, data, hdr, err := c.send(ctx, op, method, u, tok, body)
		if err != nil {
			c.m.errors.WithLabelValues(op, "transport").Inc()
			return 0, err
		}
		if status >= 200 && status <= 299 {
			if out != nil && len(data) > 0 {
				if err := json.Unmarshal(data, out); err != nil {
					return status, fmt.Errorf("hubspot %s: decode answer: %w", op, err)
				}
			}
			return status, nil
		}
		aerr := parseError(op, status, data)
		switch {
		case status == http.StatusUnauthorized:
			c.m.errors.WithLabelValues(op, "auth").Inc()
			if !renewed && c.auth.renew(ctx, tok) {
				renewed = true
				c.log.Info("HubSpot refused the access token; refreshing it once", "op", op)
				continue
			}
			return status, &sink.RetryAfterError{After: authRetry, Err: fmt.Errorf("%w: %w", ErrReauth, aerr)}
		case status == http.StatusForbidden:
			c.m.errors.WithLabelValues(op, "auth").Inc()
			return status, &sink.RetryAfterError{After: authRetry, Err: aerr}
		case status == http.StatusTooManyRequests:
			c.m.errors.WithLabelValues(op, "rate_limited").Inc()
			wait := retryWait(hdr, aerr.Category)
			c.pace.holdFor(wait)
			if attempt < maxAttempts && wait <= maxInlineWait {
				continue
			}
			return status, &sink.RetryAfterError{After: wait, Err: aerr}
		case status >= 500 || status == http.StatusRequestTimeout:
			c.m.errors.WithLabelValues(op, "server").Inc()
			return status, aerr
		case status == http.StatusNotFound:
			return status, aerr
		default:
			c.m.errors.WithLabelValues(op, "refused").Inc()
			return status, sink.Permanent(aerr)
		}
	}
}

// send does one round trip and records what the answer says about the
// budget.
func (c *Client) send(ctx context.Context, op, method, u, tok string, body []byte) (int, []byte, http.Header, error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, sink.Permanent(fmt.Errorf("hubspot %s: build request: %w", op, unwrapURL(err)))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return 0, nil, nil, fmt.Errorf("hubspot %s: %w", op, cerr)
		}
		return 0, nil, nil, fmt.Errorf("hubspot %s: %w", op, unwrapURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil && resp.StatusCode < 300 {
		return 0, nil, nil, fmt.Errorf("hubspot %s: read answer: %w", op, err)
	}
	c.m.calls.WithLabelValues(op, strconv.Itoa(resp.StatusCode)).Inc()
	c.observe(resp.Header, resp.StatusCode)
	return resp.StatusCode, data, resp.Header, nil
}

// observe reads the rate-limit headers: an exhausted window holds every
// call until the window has passed, before HubSpot has to say 429.
func (c *Client) observe(h http.Header, status int) {
	if v, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Daily-Remaining")); err == nil {
		c.m.daily.Set(float64(v))
	}
	rem, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Remaining"))
	if err != nil {
		return
	}
	c.m.remaining.Set(float64(rem))
	if rem <= 0 && status != http.StatusTooManyRequests {
		c.pace.holdFor(intervalOf(h))
	}
}

func intervalOf(h http.Header) time.Duration {
	if ms, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Interval-Milliseconds")); err == nil && ms > 0 && ms <= 60_000 {
		return time.Duration(ms) * time.Millisecond
	}
	return 10 * time.Second
}

// retryWait is how long to wait after a 429: Retry-After when sent, else
// what the policy that was hit implies.
func retryWait(h http.Header, policy string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, time.Hour)
	}
	switch policy {
	case "SECONDLY":
		return time.Second
	case "DAILY":
		return time.Hour // the daily limit resets at the portal's midnight
	}
	return intervalOf(h)
}

// parseError reads HubSpot's error body ({status, message, category} or,
// for 429, {errorType, policyName}); the policy lands in Category.
func parseError(op string, status int, data []byte) *apiError {
	var v struct {
		Message    string `json:"message"`
		Category   string `json:"category"`
		PolicyName string `json:"policyName"`
	}
	e := &apiError{Op: op, Status: status}
	if json.Unmarshal(data, &v) == nil && v.Message != "" {
		e.Message, e.Category = v.Message, v.Category
		if v.PolicyName != "" {
			e.Category = v.PolicyName
		}
		return e
	}
	e.Message = strings.ToValidUTF8(strings.TrimSpace(string(data[:min(len(data), snippetLen)])), "?")
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// unwrapURL drops url.Error's wrapper, whose text repeats the URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
