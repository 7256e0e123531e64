package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/odootest"
	"github.com/mailsync/mailsync/sync/sink/odoo"
)

// BenchmarkOdooCatchUp times the binary's catch-up of a folder into Odoo
// (fetch, match against Odoo, search, post) beside a bare JSON-RPC client
// that only posts the same messages with the same concurrency, in one run,
// and reports mailsync's rate as a fraction of the bare client's.
//
//	go test -run '^$' -bench OdooCatchUp -benchtime 1x ./cmd/mailsync/
func BenchmarkOdooCatchUp(b *testing.B) {
	const n = 400
	bin := buildBinary(b)
	srv := dovecottest.Start(b)
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = odooMail("Jane Roe <jane@acme.example>", fmt.Sprintf("bench-%d@acme.example", i), fmt.Sprintf("Message %d", i))
	}
	srv.SeedMaildir(b, dovecottest.DefaultUser, "INBOX", msgs)
	for range b.N {
		o, jane, deal := benchWorld(b)
		bare := timeBare(b, o, jane, deal, n)
		o, _, _ = benchWorld(b)
		ms := timeBinary(b, bin, srv, o, n)
		b.ReportMetric(float64(n)/ms.Seconds(), "mailsync_msgs/s")
		b.ReportMetric(float64(n)/bare.Seconds(), "bare_msgs/s")
		b.ReportMetric(bare.Seconds()/ms.Seconds(), "ratio")
		fmt.Printf("odoo catch-up of %d messages: mailsync %.0f msgs/s, bare JSON-RPC client %.0f msgs/s (concurrency %d): %.0f%%\n",
			n, float64(n)/ms.Seconds(), float64(n)/bare.Seconds(), odoo.DefaultConcurrency, 100*bare.Seconds()/ms.Seconds())
	}
}

func benchWorld(b *testing.B) (o *odootest.Odoo, jane, deal int) {
	o = odootest.Reset(b)
	var acme int
	o.Call(b, "res.partner", "create", []any{map[string]any{"name": "Acme", "is_company": true, "website": "acme.example"}}, nil, &acme)
	o.Call(b, "res.partner", "create", []any{map[string]any{"name": "Jane Roe", "email": "jane@acme.example", "parent_id": acme}}, nil, &jane)
	o.Call(b, "crm.lead", "create", []any{map[string]any{"name": "Acme renewal", "type": "opportunity", "partner_id": jane}}, nil, &deal)
	return o, jane, deal
}

// timeBare posts each message on Jane and on her deal, as mailsync does,
// with message_post over JSON-RPC and odoo.DefaultConcurrency workers.
func timeBare(b *testing.B, o *odootest.Odoo, jane, deal, n int) time.Duration {
	key := o.APIKey(b)
	post := func(model string, id, i int) error {
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "call", "id": i, "params": map[string]any{
			"service": "object", "method": "execute_kw", "args": []any{o.Database, o.UID, key, model, "message_post", []any{[]int{id}},
				map[string]any{"body": "<p>Hello</p>", "subject": fmt.Sprintf("Message %d", i), "message_type": "email", "subtype_xmlid": "mail.mt_note",
					"message_id": fmt.Sprintf("<bare-%d@acme.example>", i), "email_from": "jane@acme.example",
					"context": map[string]any{"mail_create_nosubscribe": true}}}}})
		resp, err := http.Post(o.URL+"/jsonrpc", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var r struct{ Error any }
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Error != nil {
			return fmt.Errorf("message_post: %v %v", err, r.Error)
		}
		return nil
	}
	work := make(chan int)
	var wg stdsync.WaitGroup
	start := time.Now()
	for range odoo.DefaultConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := post("res.partner", jane, i); err != nil {
					b.Error(err)
				}
				if err := post("crm.lead", deal, i); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return time.Since(start)
}

// timeBinary runs the daemon until INBOX is idle with n messages delivered.
func timeBinary(b *testing.B, bin string, srv *dovecottest.Server, o *odootest.Odoo, n int) time.Duration {
	dir := b.TempDir()
	pw := filepath.Join(dir, "imap.password")
	os.WriteFile(pw, []byte(dovecottest.DefaultPassword), 0o600)
	cfgPath := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`state: state.db
sink: {type: odoo, odoo: {url: %q, database: %s, username: %s, api_key_file: %s}}
log: {level: warn}
matcher: {own_domains: [us.example]}
accounts:
  - {id: sales, host: 127.0.0.1, port: %d, tls: none, username: %s, password_file: %s, start: all, folders: [inbox]}
`, o.URL, o.Database, o.Login, o.APIKeyFile(), srv.Port(), dovecottest.DefaultUser, pw)), 0o600)
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	for deadline := start.Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, err := exec.Command(bin, "status", "--config", cfgPath, "--json").Output()
		var st control.Status
		if err == nil && json.Unmarshal(out, &st) == nil && len(st.Accounts) == 1 && len(st.Accounts[0].Folders) > 0 &&
			st.Accounts[0].Folders[0].Delivered >= int64(n) {
			return time.Since(start)
		}
	}
	b.Fatalf("catch-up did not finish in 5 minutes\n%s", logs.String())
	return 0
}
