// Package imapconn gives sync workers a logged-in go-imap v2 client that
// cannot hang and cannot be made to allocate without bound.
//
// go-imap v2 (beta.8) waits forever on a silent server, reads a line or a
// literal of any size into memory, and leaves a connection unusable after a
// failed SASL exchange. A Conn puts a deadline on every command (Do), caps
// what the server may send (Options.MaxLineBytes, Options.MaxLiteralBytes),
// and Dial closes the connection on any failure, so callers re-dial rather
// than reuse.
package imapconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// ErrCommandTimeout is wrapped by Do when the server did not finish a
// command within its deadline; the connection is then closed.
var ErrCommandTimeout = errors.New("no response")

// ErrClosed is wrapped by Do on a connection that is already closed.
var ErrClosed = errors.New("connection closed")

// Conn is a logged-in IMAP connection. Commands go through Do, one at a
// time. Once closed, for any reason, it stays closed: dial a new one.
type Conn struct {
	addr       string
	client     *imapclient.Client
	wire       *wire
	caps       imap.CapSet
	cmdTimeout time.Duration
	log        *slog.Logger
	sem        chan struct{} // one Do at a time: deadlines are per connection
}

// Client returns the go-imap client. Call its commands inside Do, never
// from a UnilateralDataHandler.
func (c *Conn) Client() *imapclient.Client { return c.client }

// Caps returns the capabilities the server advertised after login.
func (c *Conn) Caps() imap.CapSet { return c.caps }

// Addr returns host:port.
func (c *Conn) Addr() string { return c.addr }

// Closed returns a channel closed once the connection is closed and its
// reader has stopped.
func (c *Conn) Closed() <-chan struct{} { return c.client.Closed() }

// Close closes the connection at once, without LOGOUT, and waits for its
// reader goroutine to stop. It is safe to call more than once and from
// any goroutine.
func (c *Conn) Close() error {
	c.abort()
	<-c.client.Closed()
	return nil
}

// Logout sends LOGOUT within the command timeout, then closes the
// connection whatever the answer.
func (c *Conn) Logout(ctx context.Context) error {
	err := c.Do(ctx, "logout", func(cl *imapclient.Client) error { return cl.Logout().Wait() })
	_ = c.Close()
	return err
}

// abort closes the TCP connection without waiting; go-imap's reader then
// fails every pending command and stops.
func (c *Conn) abort() { _ = c.wire.Close() }

// Do runs fn, which issues IMAP commands on c.Client() and waits for them,
// under the command timeout. See DoTimeout.
func (c *Conn) Do(ctx context.Context, name string, fn func(c *imapclient.Client) error) error {
	return c.DoTimeout(ctx, name, c.cmdTimeout, fn)
}

// DoTimeout runs fn with deadline d: for an IDLE window or a large body
// fetch that may outlast the command timeout. Calls are serialised.
//
// If d passes before fn returns, or ctx ends, the connection is closed,
// which makes fn's pending commands fail; DoTimeout then returns an error
// wrapping ErrCommandTimeout (or ctx's cause) that names the command:
// "imap 127.0.0.1:1234: fetch: no response in 60s". If the server broke a
// size limit, the error wraps ErrLineTooLong or ErrLiteralTooLarge and the
// connection is closed. Other errors from fn (such as a NO response, an
// *imap.Error) are returned wrapped, and the connection stays usable
// unless Closed says otherwise.
func (c *Conn) DoTimeout(ctx context.Context, name string, d time.Duration, fn func(c *imapclient.Client) error) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return c.wrap(name, context.Cause(ctx))
	case <-c.Closed():
		return c.wrap(name, ErrClosed)
	}
	defer func() { <-c.sem }()
	select {
	case <-c.Closed():
		return c.wrap(name, ErrClosed)
	default:
	}
	if err := ctx.Err(); err != nil {
		return c.wrap(name, context.Cause(ctx))
	}

	deadline := time.Now().Add(d)
	// The deadline on the socket wakes go-imap's reader even while it
	// waits between responses; the timer also covers fn blocking anywhere
	// else.
	c.wire.setCommandDeadline(deadline)
	defer c.wire.setCommandDeadline(time.Time{})
	timer := time.AfterFunc(d, c.abort)
	stopCtx := context.AfterFunc(ctx, c.abort)

	err := fn(c.client)

	fired := !timer.Stop()
	cancelled := !stopCtx()
	if lerr := c.wire.limitError(); lerr != nil {
		c.abort()
		return c.wrap(name, lerr)
	}
	if cancelled {
		return c.wrap(name, context.Cause(ctx))
	}
	if fired || (err != nil && !time.Now().Before(deadline)) {
		c.abort()
		c.log.Debug("imap command timed out", "command", name, "timeout", d)
		return fmt.Errorf("imap %s: %s: %w in %s", c.addr, name, ErrCommandTimeout, formatDuration(d))
	}
	if err != nil {
		return c.wrap(name, err)
	}
	return nil
}

func (c *Conn) wrap(name string, err error) error {
	return fmt.Errorf("imap %s: %s: %w", c.addr, name, err)
}

// formatDuration prints whole seconds as "60s" rather than "1m0s".
func formatDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
