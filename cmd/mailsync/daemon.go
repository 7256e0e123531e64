package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	stdsync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/matcher/filedir"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/oauth"
	"github.com/mailsync/mailsync/sync/outbound"
	"github.com/mailsync/mailsync/sync/sink"
	_ "github.com/mailsync/mailsync/sync/sink/hubspot"    // registers "hubspot"
	_ "github.com/mailsync/mailsync/sync/sink/jsonl"      // registers "jsonl"
	_ "github.com/mailsync/mailsync/sync/sink/odoo"       // registers "odoo"
	_ "github.com/mailsync/mailsync/sync/sink/pipedrive"  // registers "pipedrive"
	_ "github.com/mailsync/mailsync/sync/sink/salesforce" // registers "salesforce"
	_ "github.com/mailsync/mailsync/sync/sink/webhook"    // registers "webhook"
	"github.com/mailsync/mailsync/sync/worker"
)

// daemon is one running instance of the pipeline: state file, sink,
// matcher and the supervisor over them.
type daemon struct {
	cfg      *config.Config
	log      *slog.Logger
	store    *store.Store
	sink     sink.Sink
	sup      *worker.Supervisor
	closers  []func() error
	registry *prometheus.Registry
	// cfgPath is the file reload re-reads; started is for status.
	cfgPath string
	started time.Time
	tokens  *oauth.Manager
	// sender submits mail composed in the CRM (POST /v1/accounts/{id}/send).
	sender *outbound.Sender
	// recoverer finishes sends left unfinished (after a crash, or a Sent
	// copy that failed).
	recoverer *outbound.Recoverer
	// reloadMu serialises reloads (SIGHUP and the control socket) and
	// guards cfg while one runs.
	reloadMu stdsync.Mutex
}

// daemonOptions let the demo watch outcomes.
type daemonOptions struct {
	observer func(worker.Event)
	// cfgPath is the config file, for reload.
	cfgPath string
}

// openDaemon opens everything the pipeline needs and checks every secret
// source up front, so a missing password is refused at start with the
// key that names it rather than discovered later in a retry loop.
func openDaemon(cfg *config.Config, log *slog.Logger, opts daemonOptions) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: log, registry: prometheus.NewRegistry(), cfgPath: opts.cfgPath, started: time.Now()}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	for i := range cfg.Accounts {
		if cfg.Accounts[i].Auth != "password" {
			continue
		}
		if _, err := cfg.Accounts[i].Password(); err != nil {
			return nil, err
		}
	}
	d.store, err = store.Open(cfg.State, store.Options{})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.store.Close)
	tokens, err := oauth.New(cfg, oauth.Options{Store: d.store, Logger: log, Registerer: d.registry})
	d.tokens = tokens
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, tokens.Close)
	sinkTok, err := sinkTokens(cfg, d.store)
	if err != nil {
		return nil, err
	}
	d.sink, err = openSink(context.Background(), cfg, log, d.store.AdapterKV(cfg.Sink.Type), d.registry, tokenStore(sinkTok))
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.sink.Close)
	checkSinkAtStart(cfg, d.sink, log)
	m, err := buildMatcher(cfg, d.store, d)
	if err != nil {
		return nil, err
	}
	d.sender, err = outbound.New(cfg, outbound.Deps{
		Store: d.store, Logger: log,
		DialIMAP: outbound.NewIMAPDialer(cfg.Sync.CommandTimeout, tokens.Authenticator, log),
	})
	if err != nil {
		return nil, err
	}
	d.recoverer = outbound.NewRecoverer(d.sender, cfg.Sync.RetryMin, cfg.Sync.RetryMax)
	d.sender.OnUnfinished(d.recoverer.Kick)
	d.closers = append(d.closers, func() error {
		d.recoverer.Stop() // idempotent; runUntil stops it first
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Sync.ShutdownGrace)
		defer cancel()
		return d.sender.Close(ctx)
	})
	d.sup, err = worker.New(cfg, worker.Deps{Store: d.store, Sink: d.sink, Matcher: m, Logger: log, Registerer: d.registry, Observer: opts.observer, Authenticator: tokens.Authenticator,
		MaxConnections: fdBudget(cfg, log)})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// close releases everything in reverse order of opening.
func (d *daemon) close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	d.closers = nil
	return errors.Join(errs...)
}

// runUntil starts the supervisor and blocks until ctx ends, then stops it
// gracefully; hard cuts the grace period short.
func (d *daemon) runUntil(ctx context.Context, hard <-chan struct{}, ready func()) {
	d.sup.Start(ctx)
	// Sends a crash interrupted are finished now, not when their client
	// happens to retry.
	d.recoverer.Start()
	defer d.recoverer.Stop()
	// CRMs that queue mail to be sent from the mailbox: poll their outbox.
	if ob, ok := d.sink.(outbound.Outbox); ok {
		p := outbound.NewPoller(d.sender, ob, d.cfg.Sync.PollInterval, d.log)
		p.Start(ctx)
		defer p.Stop()
	}
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	d.log.Info("stopping", "grace", d.cfg.Sync.ShutdownGrace)
	start := time.Now()
	d.sup.Stop(d.cfg.Sync.ShutdownGrace, hard)
	d.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
}

func newLogger(cfg config.Log, w *os.File) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationAsText}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationAsText writes durations as Go duration text ("873ms"), which
// slog's JSON handler would write as integer nanoseconds (873000000).
func durationAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// buildMatcher assembles the daemon's matcher: the sink's own directory
// (when it is a CRM that has one) and the directory file behind a cache,
// and the state file as the thread index.
func buildMatcher(cfg *config.Config, st *store.Store, d *daemon) (*matcher.Matcher, error) {
	return buildMatcherWith(cfg, threadIndex{st}, d.sink, d.log)
}

// buildMatcherWith builds the matcher over threads and the directories: the
// CRM's when s implements matcher.Directory, then the directory file. With
// neither, the matcher still excludes, threads and applies tags and the
// capture mode.
func buildMatcherWith(cfg *config.Config, threads matcher.ThreadIndex, s sink.Sink, log *slog.Logger) (*matcher.Matcher, error) {
	var dirs matcher.Multi
	if crm, ok := s.(matcher.Directory); ok {
		dirs = append(dirs, crm)
	}
	if cfg.Matcher.DirectoryFile != "" {
		fd, err := filedir.Open(cfg.Matcher.DirectoryFile, filedir.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("matcher.directory_file: %w", err)
		}
		dirs = append(dirs, fd)
	}
	var dir matcher.Directory = emptyDirectory{}
	if len(dirs) > 0 {
		dir = dirs
	}
	cache := matcher.NewCache(dir, matcher.CacheOptions{TTL: cfg.Matcher.CacheTTL, NegativeTTL: cfg.Matcher.NegativeTTL})
	m, err := matcher.New(cfg.Matcher.Config, cache, threads)
	if err != nil {
		return nil, fmt.Errorf("matcher: %w", err)
	}
	return m, nil
}

// threadIndex adapts the state file's Message-ID index to the matcher.
type threadIndex struct{ st *store.Store }

func (t threadIndex) ThreadRecords(_ context.Context, ids []string) ([]sink.Record, error) {
	recs, err := t.st.ThreadRecords(ids)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	out := make([]sink.Record, len(recs))
	for i, r := range recs {
		out[i] = sink.Record{Kind: sink.Kind(r.Kind), ID: r.ID, Name: r.Name}
	}
	return out, nil
}

// emptyDirectory knows no records: without a directory the matcher still
// excludes, threads and applies tags and the capture mode.
type emptyDirectory struct{}

func (emptyDirectory) LookupEmails(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}
func (emptyDirectory) LookupDomains(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}

// openSink builds the configured adapter with what it needs from the daemon.
// tokens is nil unless the adapter keeps its OAuth2 grant in the state file.
func openSink(ctx context.Context, cfg *config.Config, log *slog.Logger, kv sink.KV, reg prometheus.Registerer, tokens sink.TokenStore) (sink.Sink, error) {
	s, err := sink.Open(ctx, cfg.Sink.Type, cfg.SinkSettings(), sink.Deps{
		Logger:  log.With("sink", cfg.Sink.Type),
		HTTP:    sink.NewHTTPClient(sink.DefaultHTTPTimeout),
		KV:      kv,
		Metrics: reg,
		Tokens:  tokens,
	})
	if err != nil {
		return nil, err // Parse errors name the key, Open errors the file or host
	}
	return s, nil
}

// checkSinkAtStart logs what a CRM adapter's own check finds. A CRM that is
// down or refuses now does not stop the daemon: deliveries wait and retry
// with the cursor held, and the warning says what to fix.
func checkSinkAtStart(cfg *config.Config, s sink.Sink, log *slog.Logger) {
	c, ok := s.(sink.Checker)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		log.Warn("the CRM check failed; deliveries will retry", "sink", cfg.Sink.Type, "error", err)
		return
	}
	log.Info("CRM check passed", "sink", cfg.Sink.Type)
}
