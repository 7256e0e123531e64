package sink

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	stdsync "sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Deps is what the daemon hands an adapter when it opens it.
type Deps struct {
	Logger *slog.Logger
	// HTTP has timeouts and mailsync's User-Agent set; adapters that call a
	// CRM over HTTP use it (or wrap its Transport) rather than their own.
	HTTP *http.Client
	// KV is the adapter's own namespace in the state file, for its cursors
	// and caches.
	KV KV
	// Metrics registers the adapter's own metrics (calls, errors, budget).
	Metrics prometheus.Registerer
	// Tokens keeps the adapter's OAuth2 grant encrypted in the state file;
	// nil when no tokens.key_file is configured (or in mailsync check
	// while the daemon holds the state file).
	Tokens TokenStore
}

// KV is a small key/value store kept in the state file for one adapter.
// Each call is one durable transaction: write few, batched (PutMany).
type KV interface {
	// Get returns nil, nil when key is absent.
	Get(key string) ([]byte, error)
	Put(key string, value []byte) error
	PutMany(kv map[string][]byte) error
	Delete(key string) error
}

// Adapter is how a CRM adapter registers itself.
type Adapter struct {
	// Parse decodes and validates the adapter's config section
	// (sink.<name>). Errors name the key: "sink.odoo.url: is required".
	Parse func(section map[string]any) (any, error)
	// Open builds the sink from what Parse returned.
	Open func(ctx context.Context, cfg any, deps Deps) (Sink, error)
	// Shared reports that a second instance may be opened beside the
	// daemon's: Open locks and writes nothing (a CRM client). mailsync
	// check and match open such a sink to test it and to look records up;
	// a file sink is only parsed.
	Shared bool
	// Login, if set, returns the authorization-code sign-in settings of
	// what Parse returned (nil when that config signs in otherwise).
	Login func(cfg any) (*LoginConfig, error)
}

var (
	registryMu stdsync.Mutex
	registry   = map[string]Adapter{}
)

// Register makes an adapter available by name. It panics on duplicates, as
// database/sql does, because that is a programming error.
func Register(name string, a Adapter) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("sink: Register called twice for " + name)
	}
	if a.Parse == nil || a.Open == nil {
		panic("sink: Register " + name + " without Parse or Open")
	}
	registry[name] = a
}

func lookup(name string) (Adapter, error) {
	registryMu.Lock()
	a, ok := registry[name]
	registryMu.Unlock()
	if !ok {
		return Adapter{}, fmt.Errorf("sink.type: unknown sink type %q (known: %v)", name, Names())
	}
	return a, nil
}

// Parse decodes and validates the section of the adapter registered under
// name. The daemon and mailsync check both call it, so check refuses
// exactly what run would.
func Parse(name string, section map[string]any) (any, error) {
	a, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return a.Parse(section)
}

// Open parses section and builds the sink registered under name.
func Open(ctx context.Context, name string, section map[string]any, deps Deps) (Sink, error) {
	a, err := lookup(name)
	if err != nil {
		return nil, err
	}
	cfg, err := a.Parse(section)
	if err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.HTTP == nil {
		deps.HTTP = NewHTTPClient(DefaultHTTPTimeout)
	}
	if deps.Metrics == nil {
		deps.Metrics = prometheus.NewRegistry()
	}
	if deps.KV == nil {
		deps.KV = &MemoryKV{}
	}
	return a.Open(ctx, cfg, deps)
}

// Shared reports whether the adapter registered under name may be opened
// beside a running daemon (Adapter.Shared).
func Shared(name string) bool {
	a, err := lookup(name)
	return err == nil && a.Shared
}

// Names lists the registered adapters.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
