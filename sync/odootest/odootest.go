// Package odootest starts the real Odoo 16 of ../shared/crm/odoo for tests
// and gives each test a clean database.
//
// Every test package that uses Odoo calls Main from its TestMain with its own
// Instance: each package gets its own ODOO_RUN directory and ports, so
// packages that `go test ./...` runs in parallel never reset each other's
// database. Instances are left running after the tests (a rerun then starts
// in 0.2 s); CI machines are thrown away.
//
// The tests skip only when MAILSYNC_SKIP_ODOO=1 is set; CI never sets it, and
// a start that fails makes the whole package fail.
package odootest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Instance names one private Odoo: its run directory and ports. Ports are
// derived from Base: HTTP Base, PostgreSQL Base+1, SMTP Base+2, Odoo's unused
// gevent port Base+3 and the IAP port Base+4, where nothing listens.
type Instance struct {
	// Name makes the run directory /tmp/mailsync-odoo-NAME.
	Name string
	// Base is the first of the instance's ports; give every package its own
	// range of ten.
	Base int
}

// Odoo is a started instance.
type Odoo struct {
	Run      string
	URL      string // http://127.0.0.1:PORT
	Database string
	Login    string
	UID      int
	// SMTPPort is the port Odoo's outgoing mail server points at; nothing
	// listens there unless a test starts a server on it.
	SMTPPort int
	skip     string
}

var current *Odoo

// Main starts inst (or notes why Odoo tests skip) and runs the package's
// tests. Call it from TestMain.
func Main(m *testing.M, inst Instance) {
	o := &Odoo{
		Run:      "/tmp/mailsync-odoo-" + inst.Name,
		URL:      "http://127.0.0.1:" + strconv.Itoa(inst.Base),
		Database: "crm",
		Login:    "admin",
		UID:      2,
		SMTPPort: inst.Base + 2,
	}
	current = o
	if os.Getenv("MAILSYNC_SKIP_ODOO") == "1" {
		o.skip = "MAILSYNC_SKIP_ODOO=1"
	} else if out, err := o.script("start.sh").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "odoo start.sh (%s): %v\n%s", o.Run, err, out)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Reset gives the test a clean database and returns the instance. Call it
// first in every test that uses Odoo; tests of one package must not run in
// parallel with each other.
func Reset(t testing.TB) *Odoo {
	t.Helper()
	o := current
	if o == nil {
		t.Fatal("odootest: Main was not called from TestMain")
	}
	if o.skip != "" {
		t.Skip(o.skip)
	}
	if out, err := o.script("reset.sh").CombinedOutput(); err != nil {
		t.Fatalf("odoo reset.sh: %v\n%s", err, out)
	}
	// Odoo's pooled connections to the dropped database die with the reset
	// and it reconnects on its own, but under load the first request can
	// still meet a dead one ("server closed the connection"): wait until a
	// query against the new database answers, so tests start on a clean,
	// reachable database.
	var err error
	for i := 0; i < 50; i++ {
		var n int
		if err = o.CallErr(t, "res.users", "search_count", []any{[]any{}}, nil, &n); err == nil {
			return o
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("odoo not answering after reset.sh: %v", err)
	return o
}

// APIKey returns admin's API key.
func (o *Odoo) APIKey(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(o.APIKeyFile())
	if err != nil {
		t.Fatalf("odoo api key: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// APIKeyFile is the file that holds admin's API key (mode 0600).
func (o *Odoo) APIKeyFile() string { return filepath.Join(o.Run, "apikey") }

// Call runs object.execute_kw as admin and decodes the result into out (may
// be nil). An Odoo error fails the test.
func (o *Odoo) Call(t testing.TB, model, method string, args []any, kwargs map[string]any, out any) {
	t.Helper()
	if err := o.CallErr(t, model, method, args, kwargs, out); err != nil {
		t.Fatalf("odoo %s.%s: %v", model, method, err)
	}
}

// CallErr is Call returning Odoo's error instead of failing the test.
func (o *Odoo) CallErr(t testing.TB, model, method string, args []any, kwargs map[string]any, out any) error {
	t.Helper()
	if args == nil {
		args = []any{}
	}
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	req := map[string]any{
		"jsonrpc": "2.0", "method": "call", "id": 1,
		"params": map[string]any{
			"service": "object", "method": "execute_kw",
			"args": []any{o.Database, o.UID, o.APIKey(t), model, method, args, kwargs},
		},
	}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.URL+"/jsonrpc", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
			Data    struct {
				Name    string `json:"name"`
				Message string `json:"message"`
			} `json:"data"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s", r.Error.Data.Name, r.Error.Data.Message)
	}
	if out != nil && len(r.Result) > 0 {
		return json.Unmarshal(r.Result, out)
	}
	return nil
}

// script runs ../shared/crm/odoo/NAME for this instance. The scripts'
// folder is found next to the module root, or in $MAILSYNC_ODOO_DIR.
func (o *Odoo) script(name string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(Dir(), name))
	port, _ := strconv.Atoi(o.URL[strings.LastIndexByte(o.URL, ':')+1:])
	cmd.Env = append(os.Environ(),
		"ODOO_RUN="+o.Run,
		"ODOO_HTTP_PORT="+strconv.Itoa(port),
		"ODOO_PG_PORT="+strconv.Itoa(port+1),
		"ODOO_SMTP_PORT="+strconv.Itoa(port+2),
		// HTTP+3 is Odoo's gevent port (unused with workers = 0); the IAP
		// port takes it so the instance needs four ports in all.
		"ODOO_IAP_PORT="+strconv.Itoa(port+4),
	)
	return cmd
}

// Dir is the folder of Odoo's scripts: $MAILSYNC_ODOO_DIR, or
// ../shared/crm/odoo beside the module root.
func Dir() string {
	if dir := os.Getenv("MAILSYNC_ODOO_DIR"); dir != "" {
		return dir
	}
	root, _ := os.Getwd()
	for root != "/" {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		root = filepath.Dir(root)
	}
	return filepath.Join(root, "..", "shared", "crm", "odoo")
}
