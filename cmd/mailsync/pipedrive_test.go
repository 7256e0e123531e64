package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink/pipedrive/pipedrivetest"
)

// TestPipedriveThroughBinary drives the real binary against a real Dovecot
// and the spec-validated Pipedrive fake: a catch-up with capture: matched
// and the directory from Pipedrive, killed with SIGKILL midway; then a
// lost state file; then a 429 storm and 5xx answers; then a revoked token
// replaced in its file; then an activity deleted in Pipedrive. Every matched message must be in Pipedrive exactly
// once, linked to the person, organization and open deal; nothing else.
func TestPipedriveThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	fake := pipedrivetest.Start(t)
	org := fake.AddOrg("Contoso")
	ada := fake.AddPerson("Ada Liu", org, "ada@contoso.example")
	deal := fake.AddDeal("Renewal", "open", ada, 0)

	matched := seedCRMMail(t, srv)

	dir := t.TempDir()
	tok := filepath.Join(dir, "pipedrive.token")
	if err := os.WriteFile(tok, []byte(pipedrivetest.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := crmConfig(t, dir, srv, fmt.Sprintf("{type: pipedrive, pipedrive: {base_url: %q, api_token_file: %q, requests_per_second: 40}}", fake.URL, tok))
	logged := func() int { return len(fake.Markers()) }
	checkOnce := func(want int) {
		t.Helper()
		m := fake.Markers()
		for k, n := range m {
			if n != 1 {
				t.Errorf("key %s logged %d times", k, n)
			}
		}
		if len(m) != want {
			t.Errorf("%d messages logged, want %d", len(m), want)
		}
	}

	// 1. catch-up, killed midway, then finished.
	cmd := runDaemon(t, bin, cfg, filepath.Join(dir, "run1.log"))
	waitFor(t, "a first activities", 60*time.Second, func() bool { return logged() >= 15 })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	t.Logf("killed with %d messages logged", logged())
	cmd = runDaemon(t, bin, cfg, filepath.Join(dir, "run2.log"))
	waitFor(t, "the catch-up", 60*time.Second, func() bool { return logged() >= matched })
	time.Sleep(500 * time.Millisecond)
	stopDaemon(t, cmd, filepath.Join(dir, "run2.log"))
	checkOnce(matched)
	for _, a := range fake.Activities() {
		switch {
		case strings.Contains(a.Note, "ada@contoso.example"):
			if a.PersonID != ada || a.OrgID != org || a.DealID != deal || a.Type != "email" || !a.Done {
				t.Errorf("Ada's mail logged as %+v, want person %d, org %d, deal %d, done email", a, ada, org, deal)
			}
		case strings.Contains(a.Note, "bob@contoso.example"):
			if a.PersonID != 0 || a.OrgID != org {
				t.Errorf("Bob's mail logged as %+v, want org %d only", a, org)
			}
		default:
			t.Errorf("unexpected activity %+v", a)
		}
		if strings.Contains(a.Note, "<b>Alice</b>") {
			t.Errorf("note carries the message's HTML unescaped: %q", a.Note)
		}
	}

	// 2. lost state file: everything is seen again, nothing is logged twice.
	posts := fake.Calls("POST /activities")
	for _, f := range []string{"state.db"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	searches := fake.Calls("GET /activities")
	cmd = runDaemon(t, bin, cfg, filepath.Join(dir, "run3.log"))
	waitFor(t, "the day searches after the lost state", 60*time.Second, func() bool { return fake.Calls("GET /activities") >= searches+3 })
	waitFor(t, "the re-scan to settle", 60*time.Second, func() bool {
		n := fake.Calls("GET /activities")
		time.Sleep(2 * time.Second)
		return fake.Calls("GET /activities") == n
	})
	if got := fake.Calls("POST /activities"); got != posts {
		t.Errorf("after losing the state file: %d activities created, want 0", got-posts)
	}
	checkOnce(matched)

	// 3. a 429 storm and 5xx answers while new mail arrives: nothing lost.
	fake.FailNext(429, 429, 429, 429, 429, 429, 429, 429, 500, 502, 503, 429, 429)
	for i := 100; i < 110; i++ {
		srv.Append(t, dovecottest.DefaultUser, "INBOX", crmMail(i, "ada@contoso.example"))
	}
	waitFor(t, "the mail sent during the storm", 60*time.Second, func() bool { return logged() >= matched+10 })
	checkOnce(matched + 10)
	if fake.Limited() < 10 {
		t.Errorf("the fake sent %d 429s, want the scripted 10", fake.Limited())
	}

	// 4. a revoked token holds delivery; the new token in the file resumes it.
	fake.SetToken("rotated-" + strconv.Itoa(os.Getpid()))
	for i := 200; i < 205; i++ {
		srv.Append(t, dovecottest.DefaultUser, "INBOX", crmMail(i, "ada@contoso.example"))
	}
	time.Sleep(2 * time.Second)
	if got := logged(); got != matched+10 {
		t.Errorf("with a revoked token %d messages were logged, want none", got-matched-10)
	}
	if err := os.WriteFile(tok, []byte("rotated-"+strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery with the new token", 60*time.Second, func() bool { return logged() >= matched+15 })
	checkOnce(matched + 15)

	// 5. an activity deleted in Pipedrive unlinks its message: the logged
	// keyword leaves the mailbox copy.
	loggedInMailbox := func() int { return keywordCount(t, srv, "$CRMLogged") }
	waitFor(t, "the logged keyword on every logged copy", 30*time.Second, func() bool { return loggedInMailbox() == matched+15 })
	time.Sleep(1100 * time.Millisecond) // after the unlink poll's starting point (seconds)
	fake.DeleteActivity(fake.Activities()[0].ID)
	waitFor(t, "the unlinked copy to lose $CRMLogged", 30*time.Second, func() bool { return loggedInMailbox() == matched+14 })
	stopDaemon(t, cmd, filepath.Join(dir, "run3.log"))
	dumpLogsIfFailed(t, dir, "run1.log", "run2.log", "run3.log")
}
