package salesforce

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

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/webhook"
)

// ErrReauth wraps a 401 that survived re-reading the token file: the
// token expired or was revoked and someone must log in again. It is
// transient for the daemon (the cursor waits), never a dead letter.
var ErrReauth = errors.New("salesforce refused the access token: re-authentication needed")

// limitWait is how long a REQUEST_LIMIT_EXCEEDED holds delivery: the
// budget is a rolling 24 hours, so retrying sooner only burns calls.
const limitWait = 5 * time.Minute

const maxResponse = 16 << 20

// apiError is one entry of Salesforce's error list.
type apiError struct {
	ErrorCode string   `json:"errorCode"`
	Message   string   `json:"message"`
	Fields    []string `json:"fields,omitempty"`
}

// StatusError is an answer other than 2xx with Salesforce's first error.
type StatusError struct {
	Op     string
	Status int
	Code   string
	Msg    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("salesforce %s answered %d %s: %s", e.Op, e.Status, e.Code, e.Msg)
}

type api struct {
	conf Config
	base string
	hc   *http.Client
	lim  *rate.Limiter
	log  *slog.Logger
	now  func() time.Time

	calls    *prometheus.CounterVec
	errs     *prometheus.CounterVec
	used     prometheus.Gauge
	limitMax prometheus.Gauge

	grant grant // nil: token_file only

	mu        stdsync.Mutex
	token     string
	fileToken string // what token_file held when last read
	reauth    string // why the connected app's grant was refused; "" while it works
}

// call sends one request and decodes the 2xx body into out. Errors follow
// sink.Sink's contract: 401 re-reads the token file once, then
// ErrReauth (transient); 403 REQUEST_LIMIT_EXCEEDED is a
// *sink.RetryAfterError; 5xx and transport failures are transient; other
// 4xx are sink.Permanent with Salesforce's message.
func (a *api) call(ctx context.Context, method, op, path string, q url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return sink.Permanent(fmt.Errorf("salesforce %s: %w", op, err))
		}
	}
	if a.grant != nil && a.currentToken() == "" {
		a.renew(ctx) // no token to start with; a failure shows as the 401 below
	}
	for attempt := 0; ; attempt++ {
		if err := a.lim.Wait(ctx); err != nil {
			return fmt.Errorf("salesforce %s: %w", op, err)
		}
		status, data, hdr, err := a.send(ctx, method, path, q, payload)
		a.calls.WithLabelValues(op, strconv.Itoa(status)).Inc()
		if err != nil {
			a.errs.WithLabelValues("transport").Inc()
			if cerr := ctx.Err(); cerr != nil {
				return fmt.Errorf("salesforce %s: %w", op, cerr)
			}
			return fmt.Errorf("salesforce %s: %w", op, err)
		}
		a.observeLimit(hdr.Get("Sforce-Limit-Info"))
		if status >= 200 && status <= 299 {
			if out != nil && len(data) > 0 {
				if err := json.Unmarshal(data, out); err != nil {
					return fmt.Errorf("salesforce %s: decode: %w", op, err)
				}
			}
			return nil
		}
		se := &StatusError{Op: op, Status: status, Msg: http.StatusText(status)}
		var list []apiError
		if json.Unmarshal(data, &list) == nil && len(list) > 0 {
			se.Code, se.Msg = list[0].ErrorCode, list[0].Message
		}
		switch {
		case status == http.StatusUnauthorized:
			a.errs.WithLabelValues("unauthorized").Inc()
			if attempt == 0 && (a.reloadToken() || a.renew(ctx)) {
				continue
			}
			return fmt.Errorf("%w (%s): %w", ErrReauth, a.reauthHint(), se)
		case status == http.StatusForbidden && se.Code == "REQUEST_LIMIT_EXCEEDED":
			a.errs.WithLabelValues("limit").Inc()
			return &sink.RetryAfterError{After: limitWait, Err: se}
		case status >= 500:
			a.errs.WithLabelValues("server").Inc()
			if d, ok := webhook.ParseRetryAfter(hdr.Get("Retry-After"), a.now()); ok && d > 0 {
				return &sink.RetryAfterError{After: d, Err: se}
			}
			return se
		default:
			a.errs.WithLabelValues("refused").Inc()
			return sink.Permanent(se)
		}
	}
}

func (a *api) send(ctx context.Context, method, path string, q url.Values, payload []byte) (int, []byte, http.Header, error) {
	u := a.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, errors.New("cannot build the request")
	}
	a.mu.Lock()
	req.Header.Set("Authorization", "Bearer "+a.token)
	a.mu.Unlock()
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, b, resp.Header, nil
}

// observeLimit exports "api-usage=USED/MAX" from Sforce-Limit-Info.
func (a *api) observeLimit(v string) {
	for _, part := range strings.Split(v, ",") {
		usage, ok := strings.CutPrefix(strings.TrimSpace(part), "api-usage=")
		if !ok {
			continue
		}
		used, max, ok := strings.Cut(usage, "/")
		if !ok {
			continue
		}
		if u, err := strconv.Atoi(used); err == nil {
			a.used.Set(float64(u))
		}
		if m, err := strconv.Atoi(max); err == nil {
			a.limitMax.Set(float64(m))
		}
	}
}

func (a *api) reloadToken() bool {
	tok, err := a.conf.readToken()
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if tok == a.fileToken {
		return false // nothing new in the file (a refreshed token may be newer)
	}
	a.token, a.fileToken = tok, tok
	a.log.Info("salesforce access token re-read after a 401")
	return true
}

func registerMetrics(reg prometheus.Registerer, a *api) error {
	a.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailsync_salesforce_calls_total",
		Help: "Salesforce REST calls by endpoint and HTTP status (0: no response)."}, []string{"op", "code"})
	a.errs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailsync_salesforce_errors_total",
		Help: "Failed Salesforce calls by kind (limit, unauthorized, server, refused, transport)."}, []string{"kind"})
	a.used = prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailsync_salesforce_api_usage",
		Help: "API requests used in the org's 24-hour window (Sforce-Limit-Info)."})
	a.limitMax = prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailsync_salesforce_api_limit",
		Help: "The org's 24-hour API request limit (Sforce-Limit-Info)."})
	for _, c := range []prometheus.Collector{a.calls, a.errs, a.used, a.limitMax} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
			// A second instance (mailsync check beside the daemon) counts
			// on its own collectors.
		}
	}
	return nil
}
