package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
	"github.com/mailsync/mailsync/sync/worker"
)

// rig is a running pipeline against a test Dovecot: config, state file,
// sink and supervisor, all owned by the test.
type rig struct {
	t         testing.TB
	srv       *dovecottest.Server
	dir       string
	cfg       *config.Config
	store     *store.Store
	sink      sink.Sink
	sup       *worker.Supervisor
	cancel    context.CancelFunc
	events    chan worker.Event
	directory matcher.Directory
	// reg holds the supervisor's metrics of the last start.
	reg   *prometheus.Registry
	quiet bool
	// fdBudget is the process's descriptor budget for IMAP connections
	// (Deps.MaxConnections); 0 for none.
	fdBudget int
}

type rigOptions struct {
	// accounts maps account id to Dovecot user; each syncs folders.
	accounts map[string]string
	folders  []string
	// sinkYAML replaces the JSONL sink section.
	sinkYAML string
	// extra is appended to the config (e.g. a sync: section).
	extra string
	// directory answers the matcher's look-ups (default: knows nobody).
	directory matcher.Directory
	// port replaces the server's IMAP port (a proxy in front of it).
	port int
	// quiet logs only warnings (1,000 accounts' info lines are noise);
	// tls connects with implicit TLS to the server's TLS port.
	quiet, tls bool
}

// allCaptured is a matcher policy that logs every message, so a test can
// expect the sink to hold exactly the source set.
const allCaptured = `matcher:
  own_domains: [acme.example]
  keep: {internal: true, bulk: true, auto_replies: true, bounces: true}
`

func newRig(t testing.TB, srv *dovecottest.Server, o rigOptions) *rig {
	t.Helper()
	dir := t.TempDir()
	if o.folders == nil {
		o.folders = []string{"inbox", "sent"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state: %s\n", filepath.Join(dir, "state.db"))
	if o.sinkYAML != "" {
		b.WriteString(o.sinkYAML)
	} else {
		fmt.Fprintf(&b, "sink: {type: jsonl, jsonl: {path: %s}}\n", filepath.Join(dir, "messages.jsonl"))
	}
	b.WriteString(allCaptured)
	if o.extra != "" {
		b.WriteString(o.extra)
	} else {
		b.WriteString("sync: {retry_min: 50ms, retry_max: 1s, command_timeout: 20s, shutdown_grace: 5s}\n")
	}
	b.WriteString("accounts:\n")
	port, tls := srv.Port(), "tls: none"
	if o.port != 0 {
		port = o.port
	}
	if o.tls {
		port, tls = srv.TLSPort(), "tls: implicit\n    ca_file: "+srv.CAFile
	}
	for id, user := range o.accounts {
		pw := filepath.Join(dir, id+".password")
		if err := os.WriteFile(pw, []byte(dovecottest.DefaultPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  - id: %s\n    host: 127.0.0.1\n    port: %d\n    %s\n    username: %s\n    password_file: %s\n    start: all\n    folders: [%s]\n    matcher: {capture: all}\n",
			id, port, tls, user, pw, strings.Join(o.folders, ", "))
	}
	cfg, err := config.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	r := &rig{t: t, srv: srv, dir: dir, cfg: cfg, events: make(chan worker.Event, 100000), directory: o.directory, quiet: o.quiet}
	if r.directory == nil {
		r.directory = emptyDir{}
	}
	return r
}

// start opens the state file and sink and starts the supervisor.
func (r *rig) start() {
	r.t.Helper()
	var err error
	r.store, err = store.Open(r.cfg.State, store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	if r.sink == nil || r.cfg.Sink.Type == "jsonl" {
		r.sink, err = sink.Open(context.Background(), r.cfg.Sink.Type, r.cfg.SinkSettings(), sink.Deps{})
		if err != nil {
			r.t.Fatal(err)
		}
	}
	m, err := matcher.New(r.cfg.Matcher.Config, r.directory, threadIndex{r.store})
	if err != nil {
		r.t.Fatal(err)
	}
	level := slog.LevelInfo
	if r.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(testWriter{r.t}, &slog.HandlerOptions{Level: level}))
	r.reg = prometheus.NewRegistry()
	r.sup, err = worker.New(r.cfg, worker.Deps{Store: r.store, Sink: r.sink, Matcher: m, Logger: log, Registerer: r.reg,
		MaxConnections: r.fdBudget,
		Observer: func(ev worker.Event) {
			select {
			case r.events <- ev:
			default:
			}
		}})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.sup.Start(ctx)
	r.t.Cleanup(r.stop)
}

// stop stops the supervisor and closes the sink and state file; safe to
// call twice.
func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.sup.Stop(5*time.Second, nil)
	r.cancel = nil
	if err := r.sink.Close(); err != nil {
		r.t.Errorf("sink close: %v", err)
	}
	if err := r.store.Check(); err != nil {
		r.t.Errorf("state file check: %v", err)
	}
	if err := r.store.Close(); err != nil {
		r.t.Errorf("store close: %v", err)
	}
}

// jsonlKeys reads the JSONL sink file: key → how many lines carry it.
// idleAccounts counts the accounts whose one folder is idle.
func (r *rig) idleAccounts() int {
	idle := 0
	for _, a := range r.sup.Status() {
		if len(a.Folders) == 1 && a.Folders[0].State == "idle" {
			idle++
		}
	}
	return idle
}

// jsonlKeys counts the sink file's lines by key. Called with the daemon
// stopped, the file must end with a complete line.
func (r *rig) jsonlKeys() map[string]int {
	r.t.Helper()
	path := filepath.Join(r.dir, "messages.jsonl")
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 && b[len(b)-1] != '\n' && r.cancel == nil {
		r.t.Fatalf("%s ends with an unterminated line after the daemon stopped", path)
	}
	return readJSONL(r.t, path, nil)
}

type jsonlLine struct {
	Key         string            `json:"key"`
	Event       string            `json:"event"`
	Subject     string            `json:"subject"`
	MessageID   string            `json:"message_id"`
	Provenance  []sink.Provenance `json:"provenance"`
	ParseErrors []string          `json:"parse_errors"`
	Body        string            `json:"body"`
	Truncated   bool              `json:"truncated"`
}

// readJSONL reads the complete lines of the JSONL sink's file. A last
// line without its newline is a write in progress (the daemon may be
// running) and is left for the next read; every complete line must be a
// valid JSON object.
func readJSONL(t testing.TB, path string, each func(jsonlLine)) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return map[string]int{}
	}
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	keys := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l jsonlLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: invalid JSON line: %v", path, err)
		}
		keys[l.Key]++
		if each != nil {
			each(l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *rig) cursor(account, folder string) store.FolderState {
	r.t.Helper()
	var st store.FolderState
	if err := r.store.View(func(tx *store.Tx) error {
		var err error
		st, err = tx.Folder(account, folder)
		return err
	}); err != nil {
		r.t.Fatal(err)
	}
	return st
}

type emptyDir struct{}

func (emptyDir) LookupEmails(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}
func (emptyDir) LookupDomains(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}

// testWriter sends log lines to t.Log so they show only for failing tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ = jsonl.Open

// threadIndex adapts the state file to the matcher, as the daemon does.
type threadIndex struct{ st *store.Store }

func (ti threadIndex) ThreadRecords(_ context.Context, ids []string) ([]sink.Record, error) {
	recs, err := ti.st.ThreadRecords(ids)
	out := make([]sink.Record, len(recs))
	for i, r := range recs {
		out[i] = sink.Record{Kind: sink.Kind(r.Kind), ID: r.ID, Name: r.Name}
	}
	return out, err
}

// mapDir is a directory with fixed answers.
type mapDir map[string][]sink.Record

func (d mapDir) LookupEmails(_ context.Context, emails []string) (map[string][]sink.Record, error) {
	out := map[string][]sink.Record{}
	for _, e := range emails {
		if r, ok := d[e]; ok {
			out[e] = r
		}
	}
	return out, nil
}
func (d mapDir) LookupDomains(context.Context, []string) (map[string][]sink.Record, error) {
	return nil, nil
}

// readJSONLRaw decodes the line with the given key into v.
func readJSONLRaw(t testing.TB, path, key string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, `{"key":"`+key+`"`) {
			if err := json.Unmarshal([]byte(line), v); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no line with key %s", key)
}
