package pipedrive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/webhook"
)

// ErrUnauthorized wraps 401 answers: the token is wrong or revoked. It is
// transient for the daemon (the cursor waits for an operator to fix the
// token file, which is re-read on the next 401), never a dead letter.
var ErrUnauthorized = errors.New("pipedrive refused the API token")

// Waits the adapter applies when Pipedrive does not say.
const (
	// defaultRateWait is used for a 429 without Retry-After or
	// x-ratelimit-reset: Pipedrive's burst window is 2 s.
	defaultRateWait = 2 * time.Second
	// maxInlineWait is the longest 429 wait the adapter sleeps through
	// itself; a longer one (the daily budget) goes back to the worker as a
	// RetryAfterError, so the cursor is held without a blocked goroutine.
	maxInlineWait = 10 * time.Second
	// maxInlineRetries bounds how often one call is retried after 429s.
	maxInlineRetries = 5
	maxResponse      = 8 << 20
)

// api is Pipedrive's v1 API: pacing, credentials, errors and metrics.
type api struct {
	conf Config
	base string
	host string
	hc   *http.Client
	lim  *rate.Limiter
	log  *slog.Logger
	m    *metrics
	now  func() time.Time

	mu        stdsync.Mutex
	token     string
	holdUntil time.Time // no request before this: the server asked us to wait
}

func newAPI(conf Config, token string, hc *http.Client, log *slog.Logger, m *metrics) *api {
	u, _ := url.Parse(conf.BaseURL)
	return &api{
		conf: conf, base: conf.BaseURL, host: u.Host, hc: hc, log: log, m: m, now: time.Now,
		lim:   rate.NewLimiter(rate.Limit(conf.RequestsPerSecond), conf.Burst),
		token: token,
	}
}

// StatusError is a Pipedrive answer other than 2xx, with Pipedrive's
// own message.
type StatusError struct {
	Op      string
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("pipedrive %s answered %d: %s", e.Op, e.Status, e.Message)
}

// statusOf returns the HTTP status err carries, or 0.
func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// envelope is the body of every Pipedrive v1 answer.
type envelope struct {
	Success        bool            `json:"success"`
	Data           json.RawMessage `json:"data"`
	AdditionalData json.RawMessage `json:"additional_data"`
	Error          string          `json:"error"`
	ErrorInfo      string          `json:"error_info"`
}

// call sends one request and decodes data (and additional_data, if extra
// is non-nil). op names the endpoint in errors and metrics. Errors follow
// sink.Sink's contract:
//   - 429: slept through (up to maxInlineWait, maxInlineRetries times,
//     all callers held together), then a *sink.RetryAfterError;
//   - 5xx and transport errors: transient (a *sink.RetryAfterError when
//     the server sent Retry-After); never retried here, since a POST that
//     failed may still have been applied: the caller's search-before-create
//     settles it;
//   - 401: the token file is re-read once; then transient, wrapping
//     ErrUnauthorized; 402 (subscription) transient too;
//   - other 4xx: sink.Permanent with Pipedrive's error message.
func (a *api) call(ctx context.Context, method, op, path string, q url.Values, body, data, extra any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return sink.Permanent(fmt.Errorf("pipedrive %s: %w", op, err))
		}
	}
	reauthed := false
	for attempt := 0; ; attempt++ {
		if err := a.pace(ctx); err != nil {
			return fmt.Errorf("pipedrive %s: %w", op, err)
		}
		status, env, hdr, err := a.send(ctx, method, path, q, payload)
		a.m.call(op, status)
		if err != nil {
			a.m.fail("transport")
			if cerr := ctx.Err(); cerr != nil {
				return fmt.Errorf("pipedrive %s: %w", op, cerr)
			}
			return fmt.Errorf("pipedrive %s on %s: %w", op, a.host, err)
		}
		a.observeBudget(hdr)
		if status >= 200 && status <= 299 {
			if data != nil && len(env.Data) > 0 && string(env.Data) != "null" {
				if err := json.Unmarshal(env.Data, data); err != nil {
					return fmt.Errorf("pipedrive %s: decode data: %w", op, err)
				}
			}
			if extra != nil && len(env.AdditionalData) > 0 && string(env.AdditionalData) != "null" {
				if err := json.Unmarshal(env.AdditionalData, extra); err != nil {
					return fmt.Errorf("pipedrive %s: decode additional_data: %w", op, err)
				}
			}
			return nil
		}
		msg := &StatusError{Op: op, Status: status, Message: env.message(status)}
		switch {
		case status == http.StatusTooManyRequests:
			a.m.fail("rate_limited")
			wait := rateWait(hdr, a.now())
			a.hold(wait)
			if wait <= maxInlineWait && attempt < maxInlineRetries {
				a.log.Debug("pipedrive rate limit hit; waiting", "op", op, "wait", wait)
				continue
			}
			return &sink.RetryAfterError{After: wait, Err: msg}
		case status == http.StatusUnauthorized:
			a.m.fail("unauthorized")
			if !reauthed && a.reloadToken() {
				reauthed = true
				continue
			}
			return fmt.Errorf("%w (fix %s): %w", ErrUnauthorized, a.tokenSource(), msg)
		case status >= 500 || status == http.StatusPaymentRequired || status == http.StatusRequestTimeout:
			a.m.fail("server")
			if wait, ok := webhook.ParseRetryAfter(hdr.Get("Retry-After"), a.now()); ok && wait > 0 {
				return &sink.RetryAfterError{After: wait, Err: msg}
			}
			return msg
		default:
			a.m.fail("refused")
			return sink.Permanent(msg)
		}
	}
}

func (e envelope) message(status int) string {
	s := e.Error
	if e.ErrorInfo != "" {
		s += " (" + e.ErrorInfo + ")"
	}
	if s == "" {
		s = http.StatusText(status)
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func (a *api) send(ctx context.Context, method, path string, q url.Values, payload []byte) (int, envelope, http.Header, error) {
	var env envelope
	qq := url.Values{}
	for k, v := range q {
		qq[k] = v
	}
	a.mu.Lock()
	qq.Set("api_token", a.token)
	a.mu.Unlock()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path+"?"+qq.Encode(), rd)
	if err != nil {
		return 0, env, nil, errors.New("cannot build the request")
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, token included
		}
		return 0, env, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, env, nil, fmt.Errorf("read response: %w", err)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &env); err != nil && resp.StatusCode < 300 {
			return 0, env, nil, fmt.Errorf("response is not JSON: %w", err)
		}
	}
	return resp.StatusCode, env, resp.Header, nil
}

// pace waits for the token bucket and for any hold the server asked for.
func (a *api) pace(ctx context.Context) error {
	a.mu.Lock()
	until := a.holdUntil
	a.mu.Unlock()
	if d := until.Sub(a.now()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return a.lim.Wait(ctx)
}

func (a *api) hold(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t := a.now().Add(d); t.After(a.holdUntil) {
		a.holdUntil = t
	}
}

// rateWait reads how long a 429 asks to wait: Retry-After, else
// x-ratelimit-reset (seconds until the window resets), else 2 s.
func rateWait(h http.Header, now time.Time) time.Duration {
	if d, ok := webhook.ParseRetryAfter(h.Get("Retry-After"), now); ok && d > 0 {
		return d
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Ratelimit-Reset"))); err == nil && s > 0 {
		return min(time.Duration(s)*time.Second, webhook.MaxRetryAfter)
	}
	return defaultRateWait
}

// observeBudget exports the rate-limit headers and, when the window is
// used up, holds further calls until it resets instead of running into a 429.
func (a *api) observeBudget(h http.Header) {
	if v, err := strconv.Atoi(h.Get("X-Ratelimit-Remaining")); err == nil {
		a.m.remaining.Set(float64(v))
		if v <= 0 {
			if s, err := strconv.Atoi(h.Get("X-Ratelimit-Reset")); err == nil && s > 0 {
				a.hold(time.Duration(s) * time.Second)
			}
		}
	}
	if v, err := strconv.Atoi(h.Get("X-Daily-Requests-Left")); err == nil {
		a.m.daily.Set(float64(v))
	}
}

// reloadToken re-reads the token after a 401 and reports whether it changed.
func (a *api) reloadToken() bool {
	tok, err := a.conf.readToken()
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if tok == a.token {
		return false
	}
	a.token = tok
	a.log.Info("pipedrive API token re-read after a 401")
	return true
}

func (a *api) tokenSource() string {
	if a.conf.APITokenEnv != "" {
		return configPath + ".api_token_env"
	}
	return configPath + ".api_token_file"
}
