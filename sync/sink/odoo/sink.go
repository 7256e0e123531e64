// Package odoo is mailsync's Odoo adapter: it logs messages as mail.message
// e-mails on Odoo's partners and opportunities over JSON-RPC, and is the
// directory the matcher finds those records in.
//
// Besides sink.Sink it implements matcher.Directory, sink.Unlinker and
// sink.Checker. Odoo does not de-duplicate mail.message by Message-ID, so
// every batch searches for what is already logged before it posts.
package odoo

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	stdsync "sync"
	"sync/atomic"

	"github.com/mailsync/mailsync/sync/sink"
)

func init() {
	sink.Register("odoo", sink.Adapter{
		Parse: func(section map[string]any) (any, error) { return ParseSettings(section) },
		Open: func(ctx context.Context, cfg any, deps sink.Deps) (sink.Sink, error) {
			return Open(ctx, cfg.(Config), deps)
		},
		Shared: true,
	})
}

// Sink is an Odoo database seen through one user's API key.
type Sink struct {
	cfg Config
	rpc *rpc
	log *slog.Logger
	kv  sink.KV

	// indexMu guards the unlink index in kv (unlink.go).
	indexMu stdsync.Mutex
	keys    keyLocks
	closed  atomic.Bool
}

var _ sink.Sink = (*Sink)(nil)
var _ sink.Unlinker = (*Sink)(nil)
var _ sink.Checker = (*Sink)(nil)

// Open builds the sink. It reads the API key but does not call Odoo: the
// daemon's start runs Check, and a down Odoo must not keep it from starting.
func Open(_ context.Context, cfg Config, deps sink.Deps) (*Sink, error) {
	key, err := cfg.apiKey()
	if err != nil {
		return nil, err
	}
	hc := deps.HTTP
	if hc == nil {
		hc = sink.NewHTTPClient(cfg.Timeout)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv := deps.KV
	if kv == nil {
		kv = &sink.MemoryKV{}
	}
	return &Sink{
		cfg: cfg,
		rpc: &rpc{endpoint: cfg.URL + "/jsonrpc", db: cfg.Database, login: cfg.Username, key: key, http: hc, timeout: cfg.Timeout,
			slots: make(chan struct{}, cfg.Concurrency)},
		log: log.With("sink", "odoo"),
		kv:  kv,
	}, nil
}

// Close implements sink.Sink.
func (s *Sink) Close() error {
	s.closed.Store(true)
	if t, ok := s.rpc.http.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	return nil
}

// Check implements sink.Checker: it logs in and reads each model delivery
// uses, so a wrong URL, database, user or key, or a user without the
// rights, is named before anything is delivered.
func (s *Sink) Check(ctx context.Context) error {
	if _, err := s.rpc.authenticate(ctx); err != nil {
		return fmt.Errorf("%s: log in to %s as %q: %w", configPath, s.cfg.URL, s.cfg.Username, err)
	}
	for _, m := range []struct{ model, op string }{
		{modelPartner, "read"}, {modelPartner, "create"},
		{modelLead, "read"}, {modelLead, "create"},
		{modelMessage, "read"}, {modelMessage, "create"}, {modelMessage, "unlink"},
	} {
		var ok bool
		if err := s.rpc.execute(ctx, m.model, "check_access_rights", []any{m.op}, map[string]any{"raise_exception": false}, &ok); err != nil {
			return fmt.Errorf("%s: check rights on %s: %w", configPath, m.model, err)
		}
		if !ok {
			return fmt.Errorf("%s: user %q may not %s %s records; give the user the Sales / User: All Documents group (or Administrator)",
				configPath, s.cfg.Username, m.op, m.model)
		}
	}
	return nil
}

// keyLocks serialises deliveries of the same message key: Odoo cannot
// de-duplicate, so the search before posting must not race another post
// of the same key.
type keyLocks struct {
	mu   stdsync.Mutex
	held map[string]chan struct{}
}

// lock takes every key, waiting for those another delivery holds; keys are
// taken all at once or not at all, so two batches never deadlock.
func (l *keyLocks) lock(keys []string) (unlock func()) {
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = map[string]chan struct{}{}
		}
		var wait chan struct{}
		for _, k := range keys {
			if c, ok := l.held[k]; ok {
				wait = c
				break
			}
		}
		if wait == nil {
			done := make(chan struct{})
			for _, k := range keys {
				l.held[k] = done
			}
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				for _, k := range keys {
					delete(l.held, k)
				}
				l.mu.Unlock()
				close(done)
			}
		}
		l.mu.Unlock()
		<-wait
	}
}
