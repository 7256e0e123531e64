package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink/salesforce/salesforcetest"
)

// TestSalesforceThroughBinary: the real binary, a real Dovecot and the
// spec-validated Salesforce fake: a matched catch-up with the directory
// from Salesforce across SIGKILL, a lost state file, 5xx answers and an
// expired token replaced in its file. Each matched message must be one
// EmailMessage, related to its contact and its open opportunity.
// (REQUEST_LIMIT_EXCEEDED holds delivery for 5 minutes; the adapter's
// TestErrors covers it.)
func TestSalesforceThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	fake := salesforcetest.Start(t)
	acct := fake.Add("Account", map[string]any{"Name": "Contoso", "Website": "contoso.example"})
	ada := fake.Add("Contact", map[string]any{"Name": "Ada Liu", "Email": "ada@contoso.example", "AccountId": acct})
	opp := fake.Add("Opportunity", map[string]any{"Name": "Renewal", "AccountId": acct, "IsClosed": false})

	var msgs [][]byte
	for i := range 80 {
		from := "Ada Liu <ada@contoso.example>"
		switch {
		case i%4 == 1:
			from = "Bob <bob@contoso.example>"
		case i%4 == 3:
			from = "Stranger <x@nowhere.example>"
		}
		msgs = append(msgs, crmMail(i, from))
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	const matched = 60

	dir := t.TempDir()
	tok := filepath.Join(dir, "salesforce.token")
	if err := os.WriteFile(tok, []byte(salesforcetest.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, srv, "")
	b, _ := os.ReadFile(cfg)
	conf := strings.Replace(string(b), "sink: {type: jsonl, jsonl: {path: messages.jsonl}}",
		fmt.Sprintf("sink: {type: salesforce, salesforce: {instance_url: %q, api_version: \"59.0\", token_file: %q, requests_per_second: 40}}", fake.URL, tok), 1)
	conf = strings.Replace(conf, "matcher: {capture: all}", "matcher: {capture: matched}", 1)
	conf = strings.Replace(conf, "batch_size: 32", "batch_size: 8", 1)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logged := func() int { return len(fake.Identifiers()) }
	checkOnce := func(want int) {
		t.Helper()
		ids := fake.Identifiers()
		for k, n := range ids {
			if n != 1 {
				t.Errorf("%s logged %d times", k, n)
			}
		}
		if len(ids) != want {
			t.Errorf("%d messages logged, want %d", len(ids), want)
		}
	}

	cmd := runDaemon(t, bin, cfg, filepath.Join(dir, "run1.log"))
	waitFor(t, "a first email messages", 60*time.Second, func() bool { return logged() >= 15 })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	t.Logf("killed with %d messages logged", logged())
	cmd = runDaemon(t, bin, cfg, filepath.Join(dir, "run2.log"))
	waitFor(t, "the catch-up", 60*time.Second, func() bool { return logged() >= matched })
	time.Sleep(500 * time.Millisecond)
	stopDaemon(t, cmd, filepath.Join(dir, "run2.log"))
	checkOnce(matched)
	for _, em := range fake.Records("EmailMessage") {
		from, _ := em.Fields["FromAddress"].(string)
		want := opp // the open opportunity, for the contact and for the domain
		if from == "x@nowhere.example" {
			t.Errorf("a stranger's mail was logged: %v", em.Fields["MessageIdentifier"])
		}
		if em.Fields["RelatedToId"] != want || em.Fields["Incoming"] != true {
			t.Errorf("EmailMessage from %s: RelatedToId %v, Incoming %v; want %s, true", from, em.Fields["RelatedToId"], em.Fields["Incoming"], want)
		}
	}
	rels := 0
	for _, r := range fake.Records("EmailMessageRelation") {
		if r.Fields["RelationId"] == ada {
			rels++
		}
	}
	if rels != 40 {
		t.Errorf("%d relations to Ada, want 40 (one per mail of hers)", rels)
	}

	// Lost state file: the SOQL search by MessageIdentifier finds them all.
	posts := fake.Calls("POST /composite/sobjects")
	queries := fake.Calls("GET /query")
	if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	cmd = runDaemon(t, bin, cfg, filepath.Join(dir, "run3.log"))
	waitFor(t, "the searches after the lost state", 60*time.Second, func() bool { return fake.Calls("GET /query") >= queries+5 })
	waitFor(t, "the re-scan to settle", 60*time.Second, func() bool {
		n := fake.Calls("GET /query")
		time.Sleep(2 * time.Second)
		return fake.Calls("GET /query") == n
	})
	if got := fake.Calls("POST /composite/sobjects"); got != posts {
		t.Errorf("after losing the state file: %d collection calls, want 0", got-posts)
	}
	checkOnce(matched)

	// 5xx while new mail arrives, then an expired token.
	fake.FailNext(500, 503, 500)
	for i := 100; i < 110; i++ {
		srv.Append(t, dovecottest.DefaultUser, "INBOX", crmMail(i, "ada@contoso.example"))
	}
	waitFor(t, "the mail sent during the 5xx", 60*time.Second, func() bool { return logged() >= matched+10 })
	fake.SetToken("00Dfake!renewed")
	for i := 200; i < 205; i++ {
		srv.Append(t, dovecottest.DefaultUser, "INBOX", crmMail(i, "ada@contoso.example"))
	}
	time.Sleep(2 * time.Second)
	if got := logged(); got != matched+10 {
		t.Errorf("with an expired token %d messages were logged, want none", got-matched-10)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "run3.log")); !strings.Contains(string(b), "re-authentication needed") {
		t.Errorf("the log does not say re-authentication is needed")
	}
	if err := os.WriteFile(tok, []byte("00Dfake!renewed"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery with the new token", 60*time.Second, func() bool { return logged() >= matched+15 })
	stopDaemon(t, cmd, filepath.Join(dir, "run3.log"))
	checkOnce(matched + 15)
	if b, _ := os.ReadFile(filepath.Join(dir, "run3.log")); strings.Contains(string(b), salesforcetest.Token) || strings.Contains(string(b), "00Dfake!renewed") {
		t.Errorf("a token appears in the log")
	}
	if t.Failed() {
		for _, f := range []string{"run1.log", "run2.log", "run3.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, f))
			t.Logf("%s:\n%s", f, b)
		}
	}
}
