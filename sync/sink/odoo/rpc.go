package odoo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
)

// rpc is a JSON-RPC client of Odoo's /jsonrpc endpoint, logged in as one
// user with an API key.
type rpc struct {
	endpoint string
	db       string
	login    string
	key      string
	http     *http.Client
	timeout  time.Duration
	nextID   atomic.Int64
	// slots bounds the calls in flight across all deliveries: Odoo serves
	// a few requests at a time and answers PoolError beyond its database
	// connection pool.
	slots chan struct{}

	mu  stdsync.Mutex
	uid int // 0 until authenticated
}

// Error is a failure Odoo reported: its exception class and message.
type Error struct {
	Name    string // odoo.exceptions.AccessError, ...
	Message string
	Status  int // HTTP status when the answer was not JSON-RPC
}

func (e *Error) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("odoo: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("odoo: %s: %s", shortName(e.Name), e.Message)
}

func shortName(n string) string { return n[strings.LastIndexByte(n, '.')+1:] }

// permanent reports whether retrying the same call cannot succeed: Odoo
// refused the data or the rights, not the moment.
func (e *Error) permanent() bool {
	switch shortName(e.Name) {
	case "AccessError", "ValidationError", "UserError", "MissingError", "ValueError", "TypeError", "KeyError":
		return true
	}
	return false
}

// errAuth is returned when Odoo refuses the login: wrong user, key or
// database.
var errAuth = errors.New("odoo refused the login (check sink.odoo.username, database and the API key)")

type rpcRequest struct {
	JSONRPC string    `json:"jsonrpc"`
	Method  string    `json:"method"`
	ID      int64     `json:"id"`
	Params  rpcParams `json:"params"`
}

type rpcParams struct {
	Service string `json:"service"`
	Method  string `json:"method"`
	Args    []any  `json:"args"`
}

type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
		Data    struct {
			Name    string `json:"name"`
			Message string `json:"message"`
		} `json:"data"`
	} `json:"error"`
}

// call runs service.method(args) and decodes the result into out.
func (c *rpc) call(ctx context.Context, service, method string, args []any, out any) error {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := json.Marshal(rpcRequest{JSONRPC: "2.0", Method: "call", ID: c.nextID.Add(1),
		Params: rpcParams{Service: service, Method: method, Args: args}})
	if err != nil {
		return sink.Permanent(fmt.Errorf("encode request: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return sink.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("odoo %s: %w", c.endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("odoo: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Status: resp.StatusCode, Message: snippet(raw)}
		if resp.StatusCode == http.StatusNotFound {
			// No /jsonrpc here: not an Odoo, or a wrong path.
			return sink.Permanent(fmt.Errorf("%w (is sink.odoo.url the address of an Odoo?)", e))
		}
		return e
	}
	var r rpcResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("odoo: answer is not JSON-RPC (%s): %w", snippet(raw), err)
	}
	if r.Error != nil {
		e := &Error{Name: r.Error.Data.Name, Message: firstLine(r.Error.Data.Message)}
		if e.Message == "" {
			e.Message = r.Error.Message
		}
		if e.permanent() {
			return sink.Permanent(e)
		}
		return e
	}
	if out == nil || len(r.Result) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		return sink.Permanent(fmt.Errorf("odoo %s.%s: unexpected result %s: %w", service, method, snippet(r.Result), err))
	}
	return nil
}

// authenticate logs in once; later calls reuse the uid.
func (c *rpc) authenticate(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.uid != 0 {
		return c.uid, nil
	}
	var res json.RawMessage
	if err := c.call(ctx, "common", "authenticate", []any{c.db, c.login, c.key, map[string]any{}}, &res); err != nil {
		var oe *Error
		if errors.As(err, &oe) && strings.Contains(oe.Message, "database") {
			return 0, sink.Permanent(fmt.Errorf("database %q: %w", c.db, err))
		}
		return 0, err
	}
	var uid int
	if json.Unmarshal(res, &uid) != nil || uid == 0 {
		// Odoo answers false for a wrong login or key. It is permanent
		// until the admin fixes the config; the worker's dead letters
		// would lose nothing, but every message would land there, so the
		// error asks for a long wait instead (see Deliver).
		return 0, errAuth
	}
	c.uid = uid
	return uid, nil
}

// execute runs object.execute_kw(model, method, args, kwargs).
func (c *rpc) execute(ctx context.Context, model, method string, args []any, kwargs map[string]any, out any) error {
	uid, err := c.authenticate(ctx)
	if err != nil {
		return err
	}
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	if err := c.call(ctx, "object", "execute_kw", []any{c.db, uid, c.key, model, method, args, kwargs}, out); err != nil {
		return fmt.Errorf("%s.%s: %w", model, method, err)
	}
	return nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
