package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/outbound"
	"github.com/mailsync/mailsync/sync/worker"
)

// adminShutdownTimeout bounds how long the admin HTTP server waits for a
// scrape in flight at shutdown.
const adminShutdownTimeout = 5 * time.Second

// readyFunc reports whether the daemon should receive traffic and, if not,
// why (shown by /readyz).
type readyFunc func() (ok bool, reason string)

// adminHandler serves /metrics from reg, /healthz (the process answers)
// and /readyz (ready says so).
func adminHandler(reg *prometheus.Registry, ready readyFunc, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          reg,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, reason := ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", reason)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// registerProcessMetrics adds the process and Go runtime collectors and
// mailsync_state_file_bytes to reg. Collectors someone already registered
// are kept, so the daemon may add them too.
func registerProcessMetrics(reg prometheus.Registerer, size func() (int64, error)) error {
	stateBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mailsync_state_file_bytes",
		Help: "Size of the bbolt state file on disk.",
	}, func() float64 {
		n, err := size()
		if err != nil {
			return -1 // visible in a graph, unlike a missing series
		}
		return float64(n)
	})
	for _, c := range []prometheus.Collector{
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		stateBytes,
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return fmt.Errorf("metrics: %w", err)
			}
		}
	}
	return nil
}

// startAdmin listens on addr (so a taken port fails the start) and serves h
// until stop, which shuts down within adminShutdownTimeout and waits.
func startAdmin(addr string, h http.Handler, log *slog.Logger) (bound net.Addr, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("admin.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "error", err)
		}
	}()
	log.Info("admin server listening", "addr", ln.Addr().String())
	var once stdsync.Once
	return ln.Addr(), func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
			<-done
		})
	}, nil
}

// operations is the operator surface of a running daemon: the control
// socket, the admin HTTP server, SIGHUP reloads and systemd notifications.
// run starts it after the daemon is open and stops it after the workers
// have stopped, so status answers during a graceful shutdown too.
type operations struct {
	log       *slog.Logger
	sd        *notifier
	isStarted atomic.Bool
	stops     []func() // in start order; stop runs them in reverse
	once      stdsync.Once
	// adminAddr is where the admin server listens; nil without one.
	adminAddr net.Addr
}

// operationsDeps is what operations needs from the daemon.
type operationsDeps struct {
	cfg      *config.Config
	registry *prometheus.Registry
	store    *store.Store
	// accounts returns the workers' status (readiness, health).
	accounts func() []worker.AccountStatus
	// control is the daemon's control API; nil serves no control socket.
	control control.Daemon
	// send serves the send API (outbound.SendPath) on the admin listener;
	// nil leaves it out.
	send http.Handler
}

// startOperations starts the operator surface of d; see operations.
func (d *daemon) startOperations(ctx context.Context) (*operations, error) {
	o, err := startOperations(ctx, operationsDeps{
		cfg: d.cfg, registry: d.registry, store: d.store,
		accounts: d.sup.Status, control: d.control(), send: d.sendAPI(),
	}, d.log)
	if err != nil {
		return nil, err
	}
	stop, err := d.startSMTPFront()
	if err != nil {
		o.stop()
		return nil, err
	}
	o.stops = append(o.stops, stop)
	return o, nil
}

// sendAPI is the send API over the daemon's sender, or nil when it is off:
// without admin.listen there is nowhere to serve it, and without
// admin.token_file every request would be refused, so the route is left
// out (a warning says why when an account could send).
func (d *daemon) sendAPI() http.Handler {
	if d.sender == nil || d.cfg.Admin.Listen == "" {
		return nil
	}
	if d.cfg.Admin.TokenFile == "" {
		for i := range d.cfg.Accounts {
			if d.cfg.Accounts[i].CanSend() {
				d.log.Warn("send API off: admin.token_file is not set", "account", d.cfg.Accounts[i].ID)
				break
			}
		}
		return nil
	}
	return outbound.NewHandler(d.sender, d.cfg.Admin.TokenFile, d.log)
}

// startOperations starts everything but READY=1, which started sends once
// the workers run. ctx is the daemon's run context: its end means shutdown
// began (STOPPING=1).
func startOperations(ctx context.Context, deps operationsDeps, log *slog.Logger) (_ *operations, err error) {
	o := &operations{log: log, sd: newNotifier(log)}
	defer func() {
		if err != nil {
			o.stop()
		}
	}()
	if err := registerProcessMetrics(deps.registry, deps.store.Size); err != nil {
		return nil, err
	}
	if deps.control == nil {
		log.Warn("control API not available in this build: no control socket; status reads the state file")
	} else if err := o.startControl(deps); err != nil {
		return nil, err
	}
	if deps.cfg.Admin.Listen != "" {
		mux := adminHandler(deps.registry, o.readiness(deps), log)
		if deps.send != nil {
			mux.Handle(outbound.SendPath, deps.send)
		}
		addr, stop, err := startAdmin(deps.cfg.Admin.Listen, mux, log)
		if err != nil {
			return nil, err
		}
		o.adminAddr = addr
		o.stops = append(o.stops, stop)
	}
	var reload reloadFunc
	if deps.control != nil {
		reload = deps.control.Reload
	}
	o.stops = append(o.stops, reloadOnSIGHUP(context.Background(), reload, o.sd, log))
	o.stops = append(o.stops, o.sd.startWatchdog(context.Background(), health(deps)))
	// STOPPING=1 as soon as shutdown begins, not when it ends.
	quit := make(chan struct{})
	var wg stdsync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			o.sd.stopping("stopping: finishing deliveries in flight")
		case <-quit:
		}
	}()
	o.stops = append(o.stops, func() { close(quit); wg.Wait() })
	return o, nil
}

// startControl listens on the control socket (a second daemon is refused
// here, before READY) and serves it until stop.
func (o *operations) startControl(deps operationsDeps) error {
	path := control.SocketPath(deps.cfg)
	ln, err := control.Listen(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := control.ServeListener(ctx, ln, deps.control, o.log); err != nil {
			o.log.Error("control socket stopped", "error", err)
		}
	}()
	o.stops = append(o.stops, func() { cancel(); <-done })
	o.log.Info("control socket listening", "path", path)
	if link := control.LinkPath(deps.cfg); link != "" {
		remove, err := control.Symlink(path, link)
		if err != nil {
			// The socket works; only the shortcut for shells is missing.
			o.log.Warn("cannot link the control socket next to the state file; CLI users need --socket", "error", err)
			return nil
		}
		o.stops = append(o.stops, remove)
	}
	return nil
}

// started is run's ready callback: the workers run, tell systemd.
func (o *operations) started() {
	o.isStarted.Store(true)
	o.sd.ready("syncing")
}

// stop stops everything started, in reverse order; safe to call twice.
func (o *operations) stop() {
	o.once.Do(func() {
		for i := len(o.stops) - 1; i >= 0; i-- {
			o.stops[i]()
		}
	})
}

// readiness is /readyz: started, the state file answers, and at least one
// account is not stopped by an authentication failure.
func (o *operations) readiness(deps operationsDeps) readyFunc {
	return func() (bool, string) {
		if !o.isStarted.Load() {
			return false, "starting"
		}
		if err := deps.store.View(func(*store.Tx) error { return nil }); err != nil {
			return false, "state file: " + err.Error()
		}
		accts := deps.accounts()
		for _, a := range accts {
			if a.State != worker.StateAuthFailed {
				return true, ""
			}
		}
		if len(accts) == 0 {
			return false, "no accounts running"
		}
		return false, "every account failed to log in"
	}
}

// health is the watchdog's check: the state file and the supervisor both
// answer. Either call hanging is the wedge the watchdog exists for.
func health(deps operationsDeps) healthFunc {
	return func() (bool, string) {
		if err := deps.store.View(func(*store.Tx) error { return nil }); err != nil {
			return false, "state file: " + err.Error()
		}
		deps.accounts()
		return true, ""
	}
}
