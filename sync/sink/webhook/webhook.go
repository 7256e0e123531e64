// Package webhook is a sink that POSTs each message as JSON to an HTTP
// endpoint, signed the Standard Webhooks way (https://www.standardwebhooks.com):
//
//	webhook-id:        the message's idempotency key (sink.Message.Key)
//	webhook-timestamp: unix seconds
//	webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
//
// The body is the same JSON object the jsonl sink writes (jsonl.Marshal).
// Idempotency rests on the receiver: it must dedupe on webhook-id, which
// stays the same across retries.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
)

// ErrClosed is returned by deliveries after Close.
var ErrClosed = errors.New("webhook sink is closed")

// ErrUnauthorized is wrapped (with sink.ErrPermanent) by 401 and 403
// answers. Those usually mean a wrong secret, which fails every message the
// same way, so a caller may stop the sink instead of dead-lettering on.
var ErrUnauthorized = errors.New("endpoint refused the request's credentials")

func init() {
	sink.Register("webhook", sink.Adapter{
		Parse: func(section map[string]any) (any, error) { return ParseSettings(section) },
		Open: func(_ context.Context, cfg any, deps sink.Deps) (sink.Sink, error) {
			return New(cfg.(Config))
		},
	})
}

// Client delivers messages to one webhook endpoint. It is safe for
// concurrent use.
type Client struct {
	url     string
	host    string // the only part of the URL that errors show
	scheme  string
	secret  Secret
	timeout time.Duration
	conc    int
	headers http.Header
	hc      *http.Client
	now     func() time.Time
	closed  atomic.Bool
}

var (
	_ sink.Sink = (*Client)(nil)
)

// New validates cfg, reads the secret and builds the HTTP client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	secret, err := cfg.readSecret()
	if err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", configPath, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: %s holds no PEM certificate", configPath, cfg.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = cfg.Concurrency
	h := make(http.Header, len(cfg.Headers)+1)
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", "mailsync")
	}
	return &Client{
		url:     u.String(),
		host:    u.Host,
		scheme:  u.Scheme,
		secret:  secret,
		timeout: cfg.Timeout,
		conc:    cfg.Concurrency,
		headers: h,
		hc: &http.Client{
			Transport: tr,
			// A redirected POST turns into a GET without the body; a moved
			// endpoint is a config error to surface, not to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}, nil
}

// String names the endpoint for logs: scheme and host only.
func (c *Client) String() string { return "webhook:" + c.scheme + "://" + c.host }

// GoString is String, so %#v does not print the fields raw.
func (c *Client) GoString() string { return c.String() }

// Format prints String for every verb.
func (c *Client) Format(f fmt.State, _ rune) { f.Write([]byte(c.String())) }

// deliverOne POSTs m once. It returns the CRM's activity id (the response's
// X-Activity-Id header, else the "id" of a JSON response body, else
// "http:<status>"). Errors follow sink.Sink's contract:
//
//   - 429 and 503 with a Retry-After header: *sink.RetryAfterError
//     (wait capped at MaxRetryAfter); without one, a transient error.
//   - other 5xx, 408, 425, timeouts, connection errors: transient.
//   - 409 Conflict: transient. The Idempotency-Key draft
//     (draft-ietf-httpapi-idempotency-key-header §2.7) uses it for "a request
//     with this key is still being processed", so a retry settles it;
//     calling it delivered could drop a message for good.
//   - other 4xx and 3xx: sink.Permanent, with the status and up to 200
//     bytes of the response body; 401 and 403 also wrap ErrUnauthorized.
//   - ctx ended: an error wrapping ctx's error.
//
// Errors name the endpoint's host, never its path, query or the secret.
func (c *Client) deliverOne(ctx context.Context, m *sink.Message) (string, error) {
	if m == nil {
		return "", sink.Permanent(errors.New("webhook: nil message"))
	}
	if c.closed.Load() {
		return "", ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("webhook: post to %s: %w", c.host, err)
	}
	// A fresh buffer per request, not a pooled one: the transport may still
	// read the body after Do returns (when the server answers early).
	body, err := jsonl.AppendMessage(make([]byte, 0, len(m.Body)+len(m.Body)/16+1024), m)
	if err != nil {
		return "", sink.Permanent(fmt.Errorf("webhook: %w", err))
	}
	return c.post(ctx, m.Key, body)
}

// maxResponse is how much of a response body is read for the receipt or
// an error message; the rest is drained up to drainLimit so the connection
// can be reused.
const (
	maxResponse = 64 << 10
	drainLimit  = 256 << 10
)

func (c *Client) post(ctx context.Context, id string, body []byte) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", sink.Permanent(fmt.Errorf("webhook: build request for %s: %w", c.host, unwrapURL(err)))
	}
	req.Header = c.headers.Clone()
	ts := c.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Webhook-Id", id)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("Webhook-Signature", Sign(c.secret, id, ts, body))

	resp, err := c.hc.Do(req)
	if err != nil {
		return "", c.transportError(ctx, rctx, err)
	}
	defer resp.Body.Close()
	// A failed read only costs the receipt or the error's snippet: the
	// status has already said what happened.
	data, _ := readLimited(resp.Body, maxResponse)
	drain(resp.Body, drainLimit)
	return c.classify(resp, data)
}

// transportError explains a request that got no response.
func (c *Client) transportError(ctx, rctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("webhook: post to %s: %w", c.host, cerr)
	}
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("webhook: post to %s: no response within %s: %w", c.host, c.timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("webhook: post to %s: %w", c.host, unwrapURL(err))
}

// unwrapURL drops url.Error's wrapper, whose message repeats the full URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Deliver delivers up to Concurrency messages at once; results are in
// the order of ms. Each message is posted as deliverOne says. A key repeated within ms is posted once. Messages not
// started when ctx ends fail with ctx's error.
func (c *Client) Deliver(ctx context.Context, ms []*sink.Message) []sink.Result {
	res := make([]sink.Result, len(ms))
	dupOf := make([]int, len(ms))
	first := make(map[string]int, len(ms))
	sem := make(chan struct{}, c.conc)
	var wg stdsync.WaitGroup
	// After a transient failure the CRM is struggling (or asked us to wait
	// with Retry-After): requests not yet started get the same error instead
	// of hammering it, and the caller retries them after its wait.
	var (
		stopMu  stdsync.Mutex
		stopErr error
	)
	for i, m := range ms {
		dupOf[i] = -1
		if m != nil {
			if j, ok := first[m.Key]; ok {
				dupOf[i] = j
				continue
			}
			first[m.Key] = i
		}
		if err := ctx.Err(); err != nil {
			res[i].Err = fmt.Errorf("webhook: post to %s: %w", c.host, err)
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			res[i].Err = fmt.Errorf("webhook: post to %s: %w", c.host, ctx.Err())
			continue
		}
		stopMu.Lock()
		stop := stopErr
		stopMu.Unlock()
		if stop != nil {
			<-sem
			res[i].Err = stop
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var activity string
			activity, res[i].Err = c.deliverOne(ctx, m)
			res[i].Receipt = sink.Receipt{Activity: activity}
			if err := res[i].Err; err != nil && !sink.IsPermanent(err) {
				stopMu.Lock()
				if stopErr == nil {
					stopErr = fmt.Errorf("not sent after an earlier failure in the batch: %w", err)
				}
				stopMu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, j := range dupOf {
		if j >= 0 {
			res[i] = res[j]
		}
	}
	return res
}

// Close makes later deliveries fail and drops idle connections; requests
// in flight finish. A second Close returns nil.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.hc.CloseIdleConnections()
	return nil
}
