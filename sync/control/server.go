package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// ErrInvalidRequest is wrapped by Daemon implementations for a request
// that is well-formed but refused (a backfill whose since is after its
// until, a reload of a bad file); the socket maps it to 400.
var ErrInvalidRequest = errors.New("invalid request")

// ShutdownTimeout bounds how long Serve waits for requests in flight once
// its context ends; then their connections are closed.
const ShutdownTimeout = 5 * time.Second

// maxRequestBytes caps a request body; the largest is a backfill request.
const maxRequestBytes = 1 << 20

// Routes of the control API, as registered and as the Client builds them.
// Path segments are URL-escaped, so a folder may contain '/'.
const (
	routeStatus      = "GET /v1/status"
	routePause       = "POST /v1/accounts/{account}/pause"
	routeResume      = "POST /v1/accounts/{account}/resume"
	routeResync      = "POST /v1/accounts/{account}/folders/{folder}/resync"
	routeReload      = "POST /v1/reload"
	routeBackfillNew = "POST /v1/backfills"
	routeBackfills   = "GET /v1/backfills"
	routeBackfill    = "GET /v1/backfills/{id}"
	routeBackfillDel = "DELETE /v1/backfills/{id}"
	routeDeadLetters = "GET /v1/deadletters"
	routeDLRetry     = "POST /v1/deadletters/{account}/{folder}/{uid}/retry"
	routeDLDrop      = "POST /v1/deadletters/{account}/{folder}/{uid}/drop"
)

// errorCodes name the errors a client can match with errors.Is; the code
// travels in the error body beside the message.
var errorCodes = []struct {
	err    error
	code   string
	status int
}{
	{ErrUnknownAccount, "unknown_account", http.StatusNotFound},
	{ErrUnknownFolder, "unknown_folder", http.StatusNotFound},
	{ErrUnknownJob, "unknown_job", http.StatusNotFound},
	{ErrUnknownMessage, "unknown_message", http.StatusNotFound},
	{ErrInvalidRequest, "invalid_request", http.StatusBadRequest},
}

// errorBody is every error response: {"error": "...", "code": "..."}.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// Serve creates the control socket at path (see Listen) and serves d on it
// until ctx ends, then shuts down gracefully within ShutdownTimeout and
// removes the socket. It returns nil after a shutdown, or the error that
// stopped it earlier.
func Serve(ctx context.Context, path string, d Daemon, log *slog.Logger) error {
	ln, err := Listen(path)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, d, log)
}

// ServeListener is Serve on a listener the caller made (with Listen, so that
// a refused socket is a start-up error before the daemon reports ready).
// It closes ln. Request contexts end with ctx.
func ServeListener(ctx context.Context, ln net.Listener, d Daemon, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           newHandler(d, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("control socket: requests still running at shutdown; closing them", "error", err)
		srv.Close()
	}
	<-errc // http.ErrServerClosed once Serve has returned
	return nil
}

// handler translates HTTP to Daemon calls.
type handler struct {
	d   Daemon
	log *slog.Logger
}

func newHandler(d Daemon, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{d: d, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc(routeStatus, h.status)
	mux.HandleFunc(routePause, h.account(d.Pause))
	mux.HandleFunc(routeResume, h.account(d.Resume))
	mux.HandleFunc(routeResync, h.resync)
	mux.HandleFunc(routeReload, h.reload)
	mux.HandleFunc(routeBackfillNew, h.startBackfill)
	mux.HandleFunc(routeBackfills, h.backfills)
	mux.HandleFunc(routeBackfill, h.backfill)
	mux.HandleFunc(routeBackfillDel, h.cancelBackfill)
	mux.HandleFunc(routeDeadLetters, h.deadLetters)
	mux.HandleFunc(routeDLRetry, h.deadLetter(d.RetryDeadLetter))
	mux.HandleFunc(routeDLDrop, h.deadLetter(d.DropDeadLetter))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.Method + " " + r.URL.Path, Code: "no_endpoint"})
	})
	return h.logged(mux)
}

// logged records every request that changes something at info level and
// reads at debug, so the journal shows who paused what.
func (h *handler) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r)
		lvl := slog.LevelInfo
		if r.Method == http.MethodGet {
			lvl = slog.LevelDebug
		}
		h.log.Log(r.Context(), lvl, "control request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "took", time.Since(start).Round(time.Millisecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.d.Status(r.Context())
	h.reply(w, r, http.StatusOK, st, err)
}

func (h *handler) account(fn func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h.reply(w, r, http.StatusNoContent, nil, fn(r.Context(), r.PathValue("account")))
	}
}

func (h *handler) resync(w http.ResponseWriter, r *http.Request) {
	err := h.d.Resync(r.Context(), r.PathValue("account"), r.PathValue("folder"))
	h.reply(w, r, http.StatusNoContent, nil, err)
}

func (h *handler) reload(w http.ResponseWriter, r *http.Request) {
	res, err := h.d.Reload(r.Context())
	h.reply(w, r, http.StatusOK, res, err)
}

func (h *handler) startBackfill(w http.ResponseWriter, r *http.Request) {
	var req BackfillRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		h.reply(w, r, 0, nil, fmt.Errorf("%w: backfill request: %v", ErrInvalidRequest, err))
		return
	}
	job, err := h.d.StartBackfill(r.Context(), req)
	h.reply(w, r, http.StatusCreated, job, err)
}

func (h *handler) backfills(w http.ResponseWriter, r *http.Request) {
	jobs, err := h.d.Backfills(r.Context())
	if jobs == nil {
		jobs = []BackfillJob{} // [] rather than null for scripts
	}
	h.reply(w, r, http.StatusOK, jobs, err)
}

func (h *handler) backfill(w http.ResponseWriter, r *http.Request) {
	job, err := h.d.Backfill(r.Context(), r.PathValue("id"))
	h.reply(w, r, http.StatusOK, job, err)
}

func (h *handler) cancelBackfill(w http.ResponseWriter, r *http.Request) {
	h.reply(w, r, http.StatusNoContent, nil, h.d.CancelBackfill(r.Context(), r.PathValue("id")))
}

func (h *handler) deadLetters(w http.ResponseWriter, r *http.Request) {
	dls, err := h.d.DeadLetters(r.Context(), r.URL.Query().Get("account"))
	if dls == nil {
		dls = []DeadLetter{}
	}
	h.reply(w, r, http.StatusOK, dls, err)
}

func (h *handler) deadLetter(fn func(ctx context.Context, account, folder string, uid uint32) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		uid, err := strconv.ParseUint(r.PathValue("uid"), 10, 32)
		if err != nil || uid == 0 {
			h.reply(w, r, 0, nil, fmt.Errorf("%w: uid %q is not a positive 32-bit number", ErrInvalidRequest, r.PathValue("uid")))
			return
		}
		h.reply(w, r, http.StatusNoContent, nil, fn(r.Context(), r.PathValue("account"), r.PathValue("folder"), uint32(uid)))
	}
}

// reply writes v with status, or err as an error body: the Unknown*
// errors are 404, ErrInvalidRequest 400, anything else 500.
func (h *handler) reply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err == nil {
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, v)
		return
	}
	body := errorBody{Error: err.Error()}
	status = http.StatusInternalServerError
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			body.Code, status = c.code, c.status
			break
		}
	}
	if status == http.StatusInternalServerError {
		h.log.Warn("control request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// A write error means the client went away; there is no one to tell.
	_ = enc.Encode(v)
}
