package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/sync/control"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mtatest"
	"github.com/mailsync/mailsync/sync/odootest"
)

// TestOdooReplyThroughSMTPFront points Odoo's outgoing mail server at the
// daemon's SMTP front: a reply written in Odoo on a partner reaches the
// partner's mailbox through the account's own SMTP server (a real Postfix),
// lands once, \Seen, in the account's Sent folder, and stays one message in
// Odoo although the daemon syncs Sent into Odoo.
func TestOdooReplyThroughSMTPFront(t *testing.T) {
	o := odootest.Reset(t)
	var acme, jane int
	o.Call(t, "res.partner", "create", []any{map[string]any{"name": "Acme", "is_company": true, "website": "acme.example"}}, nil, &acme)
	o.Call(t, "res.partner", "create", []any{map[string]any{"name": "Jane Roe", "email": "jane@acme.example", "parent_id": acme}}, nil, &jane)

	bin := buildBinary(t)
	dc := dovecottest.Start(t, dovecottest.WithLMTP(),
		dovecottest.WithUsers(map[string]string{dovecottest.DefaultUser: dovecottest.DefaultPassword, "jane": "jane-pass"}))
	mta := mtatest.Start(t, mtatest.Options{LMTP: dc.LMTPAddr()})
	dir := t.TempDir()
	const secret = "front-s3cret-odoo"
	os.WriteFile(filepath.Join(dir, "imap.password"), []byte(dovecottest.DefaultPassword), 0o600)
	os.WriteFile(filepath.Join(dir, "front.credentials"), []byte("sales:"+secret+"\n"), 0o600)
	front := freePort(t)
	cfgPath := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`state: state.db
sink: {type: odoo, odoo: {url: %q, database: %s, username: %s, api_key_file: %s}}
log: {level: debug}
sync: {retry_min: 100ms, retry_max: 1s}
matcher: {own_domains: [us.example]}
smtp_front: {listen: "127.0.0.1:%d", tls: none, credentials_file: front.credentials}
accounts:
  - id: sales
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password_file: imap.password
    start: all
    folders: [inbox, sent]
    smtp: {host: 127.0.0.1, port: %d, tls: none, from: "Sales <sales@us.example>"}
`, o.URL, o.Database, o.Login, o.APIKeyFile(), front, dc.Port(), dovecottest.DefaultUser, mta.Port())), 0o600)
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Dir = dir
	logPath := filepath.Join(dir, "run.log")
	logf, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("daemon log:\n%s", tail(string(b), 80))
		}
	}()
	status := func() (f []control.FolderStatus) {
		out, err := exec.Command(bin, "status", "--config", cfgPath, "--json").Output()
		var st control.Status
		if err == nil && json.Unmarshal(out, &st) == nil && len(st.Accounts) == 1 {
			return st.Accounts[0].Folders
		}
		return nil
	}
	for deadline := time.Now().Add(30 * time.Second); len(status()) < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("daemon not syncing INBOX and Sent within 30 s")
		}
	}

	// Odoo's outgoing mail server is the front: user = account id.
	var srv int
	o.Call(t, "ir.mail_server", "create", []any{map[string]any{"name": "mailsync", "smtp_host": "127.0.0.1", "smtp_port": front,
		"smtp_encryption": "none", "smtp_authentication": "login", "smtp_user": "sales", "smtp_pass": secret}}, nil, &srv)
	o.Call(t, "res.partner", "write", []any{[]int{3}, map[string]any{"email": "sales@us.example"}}, nil, nil) // admin writes as sales@
	// A reply written in Odoo's chatter, sent to Jane.
	var msgID int
	o.Call(t, "res.partner", "message_post", []any{[]int{jane}}, map[string]any{
		"body": "<p>Hello Jane, here is the quote.</p>", "subject": "Your quote", "message_type": "comment",
		"subtype_xmlid": "mail.mt_comment", "partner_ids": []int{jane}}, &msgID)
	var posted []struct {
		MessageID string `json:"message_id"`
	}
	o.Call(t, "mail.message", "read", []any{[]int{msgID}, []string{"message_id"}}, nil, &posted)
	mid := strings.Trim(posted[0].MessageID, "<>")

	ids, _ := waitCount(t, dc, "jane", "INBOX", 1, 30*time.Second)
	if ids[0] != mid {
		t.Fatalf("jane's INBOX holds <%s>, want Odoo's <%s>", ids[0], mid)
	}
	sent, flags := waitCount(t, dc, dovecottest.DefaultUser, "Sent", 1, 20*time.Second)
	if sent[0] != mid || !slices.Contains(flags[0], imap.FlagSeen) {
		t.Fatalf("Sent holds <%s> %v, want <%s> \\Seen", sent[0], flags[0], mid)
	}
	// Odoo deletes a mail.mail once sent; one left behind is a failure.
	var failed []map[string]any
	o.Call(t, "mail.mail", "search_read", []any{[]any{[]any{"mail_message_id", "=", msgID}}}, map[string]any{"fields": []string{"state", "failure_reason"}}, &failed)
	if len(failed) != 0 {
		t.Errorf("Odoo's mail.mail left behind: %+v", failed)
	}
	// The Sent folder's sync has seen the copy: still one message in Odoo.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if fs := status(); len(fs) == 2 && fs[1].LastUID >= 1 && fs[1].State == "idle" {
			break
		}
	}
	var n int
	o.Call(t, "mail.message", "search_count", []any{[]any{[]any{"message_id", "=", "<" + mid + ">"}}}, nil, &n)
	if n != 1 {
		t.Errorf("Odoo holds %d messages with <%s>, want 1", n, mid)
	}
	time.Sleep(500 * time.Millisecond)
	if got, _ := messageIDs(t, dc, "jane", "INBOX"); len(got) != 1 {
		t.Errorf("jane received %d copies", len(got))
	}
}
