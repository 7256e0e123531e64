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
	"github.com/mailsync/mailsync/sync/odootest"
)

// odooMail is a message as a sender at domain writes it.
func odooMail(from, mid, subject string) []byte {
	return []byte(fmt.Sprintf("From: %s\r\nTo: sales@us.example\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"+
		"Date: Tue, 01 Dec 2026 09:00:00 +0000\r\nContent-Type: text/plain\r\n\r\nHello from %s\r\n", from, subject, mid, from))
}

// TestOdooEndToEnd runs the binary against real Dovecot and real Odoo with
// capture: matched and Odoo as the only directory: a known contact's mail is
// logged on the contact and the open deal, a colleague's on the company, a
// stranger's nowhere; once each, also after the state file is deleted and
// the mailbox read again; live mail shows in Odoo within seconds; mail
// marked private leaves Odoo, mail deleted in Odoo loses $CRMLogged in the
// mailbox, and neither is logged again.
func TestOdooEndToEnd(t *testing.T) {
	o := odootest.Reset(t)
	var acme, jane, deal int
	o.Call(t, "res.partner", "create", []any{map[string]any{"name": "Acme", "is_company": true, "website": "acme.example"}}, nil, &acme)
	o.Call(t, "res.partner", "create", []any{map[string]any{"name": "Jane Roe", "email": "jane@acme.example", "parent_id": acme}}, nil, &jane)
	o.Call(t, "crm.lead", "create", []any{map[string]any{"name": "Acme renewal", "type": "opportunity", "partner_id": jane}}, nil, &deal)

	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", [][]byte{
		odooMail("Jane Roe <jane@acme.example>", "jane-1@acme.example", "Renewal terms"),
		odooMail("Bob <bob@acme.example>", "bob-1@acme.example", "Intro"),
		odooMail("Stranger <who@else.example>", "who-1@else.example", "Offer"),
	})
	dir := t.TempDir()
	pw := filepath.Join(dir, "imap.password")
	os.WriteFile(pw, []byte(dovecottest.DefaultPassword), 0o600)
	cfgPath := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`state: state.db
sink: {type: odoo, odoo: {url: %q, database: %s, username: %s, api_key_file: %s}}
log: {level: debug}
sync: {retry_min: 50ms, retry_max: 1s, poll_interval: 1s}
matcher: {own_domains: [us.example]}
accounts:
  - id: sales
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password_file: %s
    start: all
    folders: [inbox]
`, o.URL, o.Database, o.Login, o.APIKeyFile(), srv.Port(), dovecottest.DefaultUser, pw)), 0o600)

	logged := func(mid string) []string {
		var rows []struct {
			Model string `json:"model"`
			ResID int    `json:"res_id"`
		}
		o.Call(t, "mail.message", "search_read", []any{[]any{[]any{"message_id", "=", "<" + mid + ">"}}},
			map[string]any{"fields": []string{"model", "res_id"}, "order": "id"}, &rows)
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s/%d", r.Model, r.ResID))
		}
		return out
	}
	wantJane := fmt.Sprintf("[res.partner/%d crm.lead/%d]", jane, deal)
	check := func(when string) {
		t.Helper()
		if got := fmt.Sprint(logged("jane-1@acme.example")); got != wantJane {
			t.Errorf("%s: Jane's mail logged on %s, want %s", when, got, wantJane)
		}
		if got := logged("bob-1@acme.example"); len(got) == 0 || got[0] != fmt.Sprintf("res.partner/%d", acme) || len(got) > 2 {
			t.Errorf("%s: the colleague's mail logged on %v, want once on the company %d", when, got, acme)
		}
		if got := logged("who-1@else.example"); len(got) != 0 {
			t.Errorf("%s: the stranger's mail logged on %v", when, got)
		}
	}

	run := func(name string) (stop func()) {
		cmd := exec.Command(bin, "run", "--config", cfgPath)
		logf, _ := os.Create(filepath.Join(dir, name+".log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			logf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("%s log:\n%s", name, b)
			}
		}
	}
	// caughtUp waits until INBOX is idle with n messages decided.
	caughtUp := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			out, err := exec.Command(bin, "status", "--config", cfgPath, "--json").Output()
			var st control.Status
			if err == nil && json.Unmarshal(out, &st) == nil && len(st.Accounts) == 1 && len(st.Accounts[0].Folders) > 0 {
				f := st.Accounts[0].Folders[0]
				if f.State == "idle" && f.Delivered+f.Skipped+f.Excluded >= n {
					return
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("INBOX did not catch up with %d messages in 60 s", n)
	}

	// check logs in and checks the rights; a wrong key fails it, naming it.
	if out, err := exec.Command(bin, "check", "--config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	badKey := filepath.Join(dir, "bad.key")
	os.WriteFile(badKey, []byte("wrong"), 0o600)
	badCfg := filepath.Join(dir, "bad.yaml")
	b, _ := os.ReadFile(cfgPath)
	os.WriteFile(badCfg, []byte(strings.Replace(string(b), o.APIKeyFile(), badKey, 1)), 0o600)
	if out, err := exec.Command(bin, "check", "--config", badCfg).CombinedOutput(); err == nil || !strings.Contains(string(out), "refused the login") {
		t.Errorf("check with a wrong key: %v\n%s", err, out)
	}

	stop := run("first")
	caughtUp(3)
	check("first catch-up")
	// Live: new mail from Jane reaches Odoo within seconds.
	start := time.Now()
	srv.Append(t, dovecottest.DefaultUser, "INBOX", odooMail("jane@acme.example", "jane-2@acme.example", "Follow-up"))
	for len(logged("jane-2@acme.example")) < 2 && time.Since(start) < 15*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	latency := time.Since(start)
	if got := fmt.Sprint(logged("jane-2@acme.example")); got != wantJane {
		t.Fatalf("live mail logged on %s after %s, want %s", got, latency, wantJane)
	}
	t.Logf("live mail in Odoo after %s", latency.Round(time.Millisecond))
	stop()

	// The state file is lost: the daemon reads the mailbox again and logs
	// nothing twice.
	for _, f := range []string{"state.db", "state.db.lock"} {
		os.Remove(filepath.Join(dir, f))
	}
	stop = run("second")
	caughtUp(4)
	check("after the state file was deleted")
	if got := fmt.Sprint(logged("jane-2@acme.example")); got != wantJane {
		t.Errorf("after the state file was deleted: live mail logged on %s, want %s", got, wantJane)
	}

	// Private: the user marks Bob's mail private in the mailbox; the logged
	// message leaves Odoo. Unlink: an admin deletes Jane's first mail in
	// Odoo; the mailbox copy loses $CRMLogged.
	uids := map[string]imap.UID{}
	c := srv.Dial(t, dovecottest.DefaultUser)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		uids[m.Envelope.MessageID] = m.UID
	}
	if err := c.Store(imap.UIDSetNum(uids["bob-1@acme.example"]), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$CRMPrivate"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var janeIDs []int
	o.Call(t, "mail.message", "search", []any{[]any{[]any{"message_id", "=", "<jane-1@acme.example>"}}}, nil, &janeIDs)
	o.Call(t, "mail.message", "unlink", []any{janeIDs}, nil, nil)
	loggedFlag := func(uid imap.UID) bool {
		return slices.Contains(srv.Flags(t, dovecottest.DefaultUser, "INBOX")[uid], imap.Flag("$CRMLogged"))
	}
	if !loggedFlag(uids["jane-2@acme.example"]) {
		t.Errorf("jane-2 has no $CRMLogged")
	}
	deadline := time.Now().Add(20 * time.Second)
	for (len(logged("bob-1@acme.example")) > 0 || loggedFlag(uids["jane-1@acme.example"])) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if got := logged("bob-1@acme.example"); len(got) > 0 {
		t.Errorf("private mail still in Odoo on %v", got)
	}
	if loggedFlag(uids["jane-1@acme.example"]) {
		t.Errorf("mail deleted in Odoo still has $CRMLogged in the mailbox")
	}
	stop()
	// Neither comes back at the next start.
	stop = run("third")
	caughtUp(4)
	time.Sleep(time.Second)
	stop()
	if got := logged("bob-1@acme.example"); len(got) > 0 {
		t.Errorf("private mail logged again on %v", got)
	}
	if got := logged("jane-1@acme.example"); len(got) > 0 {
		t.Errorf("mail deleted in Odoo logged again on %v", got)
	}
}
