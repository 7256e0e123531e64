package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// maxReceipt bounds an activity id taken from a response.
const maxReceipt = 256

// unauthorizedRetry is how long to wait after a 401 or 403 before trying
// again: long enough not to hammer, short enough to recover soon after a
// fixed secret (a reload or restart retries at once anyway).
const unauthorizedRetry = 5 * time.Minute

// snippetLen is how much of a response body an error quotes.
const snippetLen = 200

// classify turns a response into a receipt or an error, per Deliver's
// contract. body is what could be read of the response body.
func (c *Client) classify(resp *http.Response, body []byte) (string, error) {
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		// The CRM has the message; a body cut short only loses the id.
		return receiptOf(resp, body), nil
	}
	err := fmt.Errorf("webhook: %s answered %d %s%s", c.host, code, http.StatusText(code), c.snippet(body))
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if wait, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok && wait > 0 {
			return "", &sink.RetryAfterError{After: wait, Err: err}
		}
		return "", err
	case code >= 500,
		code == http.StatusRequestTimeout,
		code == http.StatusConflict,
		code == http.StatusTooEarly:
		return "", err
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		// A refused signature or token is the sink's configuration, not
		// the message: dead-lettering would park the whole mailbox. Hold
		// the cursor and retry slowly until an operator fixes the secret.
		return "", &sink.RetryAfterError{After: unauthorizedRetry, Err: fmt.Errorf("%w: %w", ErrUnauthorized, err)}
	case code >= 300: // other 4xx, and 3xx (redirects are not followed)
		return "", sink.Permanent(err)
	default: // 1xx that is not an interim response: odd, maybe a proxy
		return "", err
	}
}

// receiptOf reads the activity id of a 2xx response.
func receiptOf(resp *http.Response, body []byte) string {
	if id := strings.TrimSpace(resp.Header.Get("X-Activity-Id")); id != "" && len(id) <= maxReceipt {
		return (id)
	}
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '{' && json.Unmarshal(b, &v) == nil && len(v.ID) > 0 {
		var s string
		if json.Unmarshal(v.ID, &s) == nil {
			if s != "" && len(s) <= maxReceipt {
				return (s)
			}
		} else if _, err := strconv.ParseFloat(string(v.ID), 64); err == nil && len(v.ID) <= maxReceipt {
			return string(v.ID) // numeric id, kept as written
		}
	}
	return ("http:" + strconv.Itoa(resp.StatusCode))
}

// snippet quotes the start of a response body for an error, with the
// secret cut out should a server echo it.
func (c *Client) snippet(body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return ""
	}
	if len(b) > snippetLen {
		b = b[:snippetLen]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if len(c.secret.b) > 0 {
		s = strings.ReplaceAll(s, string(c.secret.b), redacted)
	}
	return ": " + strconv.Quote(s)
}

func readLimited(r io.Reader, n int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, n))
}

func drain(r io.Reader, n int64) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, n))
}
