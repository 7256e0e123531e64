package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoDaemon is matched (errors.Is) by the errors Dial and the Client's
// methods return when nothing listens on the socket: the CLI falls back to
// reading the state file, or tells the operator to start the daemon.
var ErrNoDaemon = errors.New("no daemon answers")

// DefaultClientTimeout bounds each Client call whose context has no earlier
// deadline. A reload re-reads the config and restarts workers, so it is
// generous.
const DefaultClientTimeout = 30 * time.Second

// maxResponseBytes caps what a client reads of one response.
const maxResponseBytes = 64 << 20

// Client talks to a running daemon over its control socket. It implements
// Daemon, so code written against the interface can drive a remote daemon.
// It is safe for concurrent use (SetTimeout aside).
//
// Every method's error is an *Error when the daemon answered with one
// (errors.Is matches the Err* sentinels through it), wraps ErrNoDaemon when
// the daemon went away, and is a transport or decoding error otherwise.
type Client struct {
	path    string
	hc      *http.Client
	timeout time.Duration
}

var _ Daemon = (*Client)(nil)

// Dial checks that a daemon answers on the socket at path and returns a
// client for it. The error wraps ErrNoDaemon when the socket is missing or
// stale; other errors (permission denied, ...) do not, since a daemon may be
// running that this user may not talk to.
func Dial(path string) (*Client, error) {
	conn, err := net.DialTimeout("unix", path, probeTimeout)
	if err != nil {
		return nil, dialError(path, err)
	}
	conn.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		// A connection per request: the socket is local and cheap, and no
		// idle connection (with its goroutines) outlives a call.
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}, timeout: DefaultClientTimeout}, nil
}

// Path returns the socket path the client talks to.
func (c *Client) Path() string { return c.path }

// SetTimeout changes the per-call bound (DefaultClientTimeout); d <= 0
// leaves calls bounded by their context only. Call it before using c.
func (c *Client) SetTimeout(d time.Duration) { c.timeout = d }

func dialError(path string, err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w on %s", ErrNoDaemon, path)
	}
	return fmt.Errorf("control socket %s: %w", path, err)
}

// Error is a request the daemon answered with an error. errors.Is matches
// it against ErrUnknownAccount, ErrUnknownFolder, ErrUnknownJob,
// ErrUnknownMessage and ErrInvalidRequest by the code the daemon sent.
type Error struct {
	Status  int    // HTTP status
	Code    string // e.g. "unknown_account"; empty for internal errors
	Message string // the daemon's error text
}

// Error returns the daemon's message.
func (e *Error) Error() string { return e.Message }

// Is matches the sentinel error named by e.Code.
func (e *Error) Is(target error) bool {
	for _, c := range errorCodes {
		if c.code == e.Code && c.err == target {
			return true
		}
	}
	return false
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Pause stops an account's workers; see Daemon.Pause.
func (c *Client) Pause(ctx context.Context, account string) error {
	return c.do(ctx, http.MethodPost, "/v1/accounts/"+seg(account)+"/pause", nil, nil)
}

// Resume restarts a paused account's workers.
func (c *Client) Resume(ctx context.Context, account string) error {
	return c.do(ctx, http.MethodPost, "/v1/accounts/"+seg(account)+"/resume", nil, nil)
}

// Resync re-scans a folder from the start; see Daemon.Resync.
func (c *Client) Resync(ctx context.Context, account, folder string) error {
	return c.do(ctx, http.MethodPost, "/v1/accounts/"+seg(account)+"/folders/"+seg(folder)+"/resync", nil, nil)
}

// Reload asks the daemon to re-read its config file.
func (c *Client) Reload(ctx context.Context) (*ReloadResult, error) {
	var res ReloadResult
	if err := c.do(ctx, http.MethodPost, "/v1/reload", nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// StartBackfill queues a backfill job.
func (c *Client) StartBackfill(ctx context.Context, req BackfillRequest) (*BackfillJob, error) {
	var job BackfillJob
	if err := c.do(ctx, http.MethodPost, "/v1/backfills", req, &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// Backfills lists backfill jobs, newest first.
func (c *Client) Backfills(ctx context.Context) ([]BackfillJob, error) {
	var jobs []BackfillJob
	if err := c.do(ctx, http.MethodGet, "/v1/backfills", nil, &jobs); err != nil {
		return nil, err
	}
	return jobs, nil
}

// Backfill returns one job; an error matching ErrUnknownJob if none.
func (c *Client) Backfill(ctx context.Context, id string) (*BackfillJob, error) {
	var job BackfillJob
	if err := c.do(ctx, http.MethodGet, "/v1/backfills/"+seg(id), nil, &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// CancelBackfill stops a job.
func (c *Client) CancelBackfill(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/backfills/"+seg(id), nil, nil)
}

// DeadLetters lists parked messages of account, or of all accounts for "".
func (c *Client) DeadLetters(ctx context.Context, account string) ([]DeadLetter, error) {
	p := "/v1/deadletters"
	if account != "" {
		p += "?account=" + url.QueryEscape(account)
	}
	var dls []DeadLetter
	if err := c.do(ctx, http.MethodGet, p, nil, &dls); err != nil {
		return nil, err
	}
	return dls, nil
}

// RetryDeadLetter moves a parked message back to the delivery path.
func (c *Client) RetryDeadLetter(ctx context.Context, account, folder string, uid uint32) error {
	return c.do(ctx, http.MethodPost, dlPath(account, folder, uid, "retry"), nil, nil)
}

// DropDeadLetter forgets a parked message.
func (c *Client) DropDeadLetter(ctx context.Context, account, folder string, uid uint32) error {
	return c.do(ctx, http.MethodPost, dlPath(account, folder, uid, "drop"), nil, nil)
}

func dlPath(account, folder string, uid uint32, action string) string {
	return "/v1/deadletters/" + seg(account) + "/" + seg(folder) + "/" + strconv.FormatUint(uint64(uid), 10) + "/" + action
}

// seg escapes one path segment. "." and ".." are escaped too, or the
// server's path cleaning would treat them as directory steps.
func seg(s string) string {
	if s == "." || s == ".." {
		return strings.ReplaceAll(s, ".", "%2E")
	}
	return url.PathEscape(s)
}

// do sends one request with in as the JSON body (if not nil) and decodes a
// 2xx JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	// The host is ignored: the transport always dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://mailsync"+path, body)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w on %s (it stopped?)", ErrNoDaemon, c.path)
		}
		return fmt.Errorf("control %s %s: %w", method, strings.SplitN(path, "?", 2)[0], unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("control %s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("daemon answered %s", resp.Status)
		}
		return &Error{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error}
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("control %s %s: decode response: %w", method, path, err)
	}
	return nil
}

// unwrapURLError drops url.Error's wrapper, whose text repeats the fake
// http://mailsync URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Close releases the client. Nothing is kept open between calls, so it
// only drops what the transport might hold.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}
