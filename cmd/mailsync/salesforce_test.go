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
// expired token replaced in its file, and an EmailMessage deleted in
// Salesforce (unlinked in the mailbox). Each matched message must be one
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

	matched := seedCRMMail(t, srv)

	dir := t.TempDir()
	tok := filepath.Join(dir, "salesforce.token")
	if err := os.WriteFile(tok, []byte(salesforcetest.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := crmConfig(t, dir, srv, fmt.Sprintf("{type: salesforce, salesforce: {instance_url: %q, api_version: \"59.0\", token_file: %q, requests_per_second: 40}}", fake.URL, tok))
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

	// An EmailMessage deleted in Salesforce unlinks its message: the copy
	// loses the logged keyword (the message stays) and is not logged
	// again. Salesforce's delete log counts minutes, so this is checked
	// at the end, after the other steps.
	waitFor(t, "the logged keyword on every logged copy", 30*time.Second, func() bool { return keywordCount(t, srv, "$CRMLogged") == matched })
	gone := fake.Records("EmailMessage")[0].Fields
	fake.Delete("EmailMessage", gone["Id"].(string))

	// 5xx while new mail arrives, then an expired token.
	fake.FailNext(500, 503, 500)
	for i := 100; i < 110; i++ {
		srv.Append(t, dovecottest.DefaultUser, "INBOX", crmMail(i, "ada@contoso.example"))
	}
	waitFor(t, "the mail sent during the 5xx", 60*time.Second, func() bool { return logged() >= matched+9 })
	fake.SetToken("00Dfake!renewed")
	for i := 200; i < 205; i++ {
		srv.Append(t, dovecottest.DefaultUser, "INBOX", crmMail(i, "ada@contoso.example"))
	}
	time.Sleep(2 * time.Second)
	if got := logged(); got != matched+9 {
		t.Errorf("with an expired token %d messages were logged, want none", got-matched-9)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "run3.log")); !strings.Contains(string(b), "re-authentication needed") {
		t.Errorf("the log does not say re-authentication is needed")
	}
	if err := os.WriteFile(tok, []byte("00Dfake!renewed"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery with the new token", 60*time.Second, func() bool { return logged() >= matched+14 })
	waitFor(t, "the unlinked copy to lose $CRMLogged", 90*time.Second, func() bool { return keywordCount(t, srv, "$CRMLogged") == matched+14 })
	stopDaemon(t, cmd, filepath.Join(dir, "run3.log"))
	checkOnce(matched + 14) // the deleted one is not logged again
	if n := fake.Identifiers()[gone["MessageIdentifier"].(string)]; n != 0 {
		t.Errorf("the message unlinked in Salesforce was logged again")
	}
	if got := len(srv.Flags(t, dovecottest.DefaultUser, "INBOX")); got != 95 {
		t.Errorf("the mailbox holds %d messages, want 95 (unlinking deletes no mail)", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "run3.log")); strings.Contains(string(b), salesforcetest.Token) || strings.Contains(string(b), "00Dfake!renewed") {
		t.Errorf("a token appears in the log")
	}
	dumpLogsIfFailed(t, dir, "run1.log", "run2.log", "run3.log")
}
