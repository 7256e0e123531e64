package main

import (
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

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink/hubspot/hubspottest"
)

// hubspotRun is one run of the binary against the HubSpot fake.
type hubspotRun struct {
	cmd *exec.Cmd
	log string
}

func startHubSpot(t *testing.T, bin, cfg, log string) *hubspotRun {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); f.Close() })
	return &hubspotRun{cmd: cmd, log: log}
}

func (r *hubspotRun) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGTERM)
	if err := r.cmd.Wait(); err != nil {
		b, _ := os.ReadFile(r.log)
		t.Fatalf("mailsync exited with %v\n%s", err, b)
	}
}

// hubspotMessage is message i of the catch-up: i%4 picks the sender: a
// contact with company and open deal, an unknown person at that company's
// domain, a stranger (not logged under capture: matched), a contact
// without company.
func hubspotMessage(i int) []byte {
	from := []string{"Jane Doe <jane@acme-customer.example>", "Bob <bob@acme-customer.example>",
		"Stranger <someone@elsewhere.example>", "Solo <solo@gmail.example>"}[i%4]
	date := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return []byte(fmt.Sprintf("Message-ID: <hs-%d@test.example>\r\nDate: %s\r\nFrom: %s\r\nTo: Alice <alice@acme.example>\r\n"+
		"Subject: order %d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, about order %d.\r\n",
		i, date.Format(time.RFC1123Z), from, i, i))
}

// TestHubSpotThroughBinary drives the real binary against Dovecot and the
// spec-validated HubSpot fake: a catch-up with capture: matched and the
// directory from HubSpot, killed with SIGKILL in the middle, then resumed
// through a 429 storm and 503s, then run again after the state file was
// lost. Every matched message must be one email engagement with the right
// associations, nothing else logged, and the pace must stay within
// HubSpot's documented limit (100 requests per 10 s, 5 searches a second).
func TestHubSpotThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs Dovecot; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	const total = 600
	msgs := make([][]byte, total)
	for i := range msgs {
		msgs[i] = hubspotMessage(i)
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)

	// The index lag makes the kill -9 below a real test of the restart
	// window; search_lag in the config covers it.
	fake := hubspottest.New(t, hubspottest.Options{PerTenSeconds: 100, SearchPerSecond: 5, SearchLag: 700 * time.Millisecond})
	acme := fake.AddCompany("Acme Customer GmbH", "acme-customer.example")
	jane := fake.AddContact("jane@acme-customer.example", "Jane", "Doe", acme)
	solo := fake.AddContact("solo@gmail.example", "Solo", "", "")
	deal := fake.AddDeal("Renewal", false, time.Now(), []string{jane}, []string{acme})
	fake.AddDeal("Lost", true, time.Now().Add(time.Hour), []string{jane}, []string{acme})

	dir := t.TempDir()
	tok := filepath.Join(dir, "hubspot.token")
	pw := filepath.Join(dir, "imap.password")
	os.WriteFile(tok, []byte(fake.Token()), 0o600)
	os.WriteFile(pw, []byte(dovecottest.DefaultPassword), 0o600)
	cfg := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state: state.db
sink: {type: hubspot, hubspot: {base_url: %q, token_file: %s, search_lag: 1s, owners: {alice: 4242}}}
log: {level: info}
sync: {retry_min: 200ms, retry_max: 3s, batch_size: 20, shutdown_grace: 5s}
matcher:
  own_domains: [acme.example]
accounts:
  - id: alice
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password_file: %s
    start: all
    folders: [inbox]
    matcher: {capture: matched}
`, fake.URL(), tok, srv.Port(), dovecottest.DefaultUser, pw)), 0o600)

	defer dumpLogsIfFailed(t, dir, "run1.log", "run2.log", "run3.log")
	const matched = total * 3 / 4
	logged := func() int { return len(fake.KeyCounts()) }
	waitFor := func(what string, n int, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for logged() < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := logged(); got < n {
			t.Fatalf("%s: %d emails logged, want %d", what, got, n)
		}
	}

	// 1. Kill -9 in the middle of the catch-up.
	r := startHubSpot(t, bin, cfg, filepath.Join(dir, "run1.log"))
	waitFor("before the kill", matched/3, 60*time.Second)
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.cmd.Wait()
	t.Logf("killed with %d of %d emails logged", logged(), matched)

	// 2. Resume through a 429 storm and 503s.
	fake.Storm(15, 2*time.Second)
	fake.Fail("/crm/v3/objects/emails/batch/create", 503, 3)
	start, before := time.Now(), logged()
	r = startHubSpot(t, bin, cfg, filepath.Join(dir, "run2.log"))
	waitFor("after the restart", matched, 120*time.Second)
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond) // let the last commit land
	r.stop(t)
	t.Logf("resumed %d emails in %s through 15x429 and 3x503 (%.0f msgs/s)", matched-before, took.Round(time.Millisecond), float64(matched-before)/took.Seconds())

	checkLogged := func(phase string) {
		t.Helper()
		counts := fake.KeyCounts()
		if len(counts) != matched {
			t.Errorf("%s: %d distinct emails logged, want %d", phase, len(counts), matched)
		}
		for k, n := range counts {
			if n != 1 {
				t.Errorf("%s: key %s logged %d times", phase, k, n)
			}
		}
		subjects := map[string]int{}
		for _, e := range fake.Emails() {
			s := e.Properties["hs_email_subject"]
			subjects[s]++
			var i int
			fmt.Sscanf(s, "order %d", &i)
			want := map[int][]string{}
			switch i % 4 {
			case 0:
				want = map[int][]string{hubspottest.EmailToContact: {jane}, hubspottest.EmailToCompany: {acme}, hubspottest.EmailToDeal: {deal}}
			case 1:
				want = map[int][]string{hubspottest.EmailToCompany: {acme}, hubspottest.EmailToDeal: {deal}}
			case 2:
				t.Errorf("%s: a message from a stranger was logged: %s", phase, s)
			case 3:
				want = map[int][]string{hubspottest.EmailToContact: {solo}}
			}
			if o := e.Properties["hubspot_owner_id"]; o != "4242" {
				t.Errorf("%s: %s logged for owner %q, want 4242 (owners: {alice: 4242})", phase, s, o)
			}
			if fmt.Sprint(e.Associations) != fmt.Sprint(want) {
				t.Errorf("%s: %q associated with %v, want %v", phase, s, e.Associations, want)
			}
			if e.Properties["hs_email_direction"] != "INCOMING_EMAIL" || !strings.Contains(e.Properties["hs_email_text"], "about order") {
				t.Errorf("%s: %q has properties %v", phase, s, e.Properties)
			}
		}
		for s, n := range subjects {
			if n != 1 {
				t.Errorf("%s: %q logged %d times", phase, s, n)
			}
		}
	}
	checkLogged("after kill -9 and faults")

	// 3. The state file is lost: the catch-up runs again, finds every
	// email in HubSpot by its key and creates none.
	os.Remove(filepath.Join(dir, "state.db"))
	calls := len(fake.Calls())
	r = startHubSpot(t, bin, cfg, filepath.Join(dir, "run3.log"))
	searches := func() int {
		n := 0
		for _, c := range fake.Calls()[calls:] {
			if c.Op == "POST /crm/v3/objects/emails/search" && c.Status == 200 {
				n++
			}
		}
		return n
	}
	// Every batch of 20 holds 15 matched messages: one search each.
	deadline := time.Now().Add(120 * time.Second)
	for searches() < total/20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	r.stop(t)
	for _, c := range fake.Calls()[calls:] {
		if strings.HasSuffix(c.Op, "/batch/create") {
			t.Errorf("after the lost state file: %s was called", c.Op)
		}
	}
	if got := searches(); got < total/20 {
		t.Errorf("after the lost state file: %d email searches, want %d", got, total/20)
	}
	checkLogged("after the lost state file")

	// The pace: no 429 but the 15 injected, and never more than the
	// documented 100 requests in a 10 s window or 5 searches in a second.
	all := fake.Calls()
	n429 := 0
	for i, c := range all {
		if c.Status == 429 {
			n429++
		}
		win, swin := 0, 0
		for _, d := range all[i:] {
			if d.At.Sub(c.At) < 10*time.Second {
				win++
			}
			if d.At.Sub(c.At) < time.Second && strings.HasSuffix(d.Op, "/search") {
				swin++
			}
		}
		if win > 100 || swin > 5 {
			t.Fatalf("%d requests within 10 s and %d searches within 1 s from %s: over HubSpot's limit", win, swin, c.At)
		}
	}
	if n429 != 15 {
		t.Errorf("%d answers were 429, want only the 15 injected", n429)
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("spec violations: %v", v)
	}
}

// TestHubSpotExpiredTokenThroughBinary: with oauth2, an access token that
// expires mid catch-up is refreshed once and nothing is lost; when the
// refresh token is refused too, the binary reports that re-authorization
// is needed and holds the cursor: nothing is logged, nothing is
// dead-lettered. On the way, an email deleted in HubSpot unlinks its
// message: the mailbox copy loses the logged keyword.
func TestHubSpotExpiredTokenThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs Dovecot; skipped in -short mode")
	}
	bin := buildBinary(t)
	srv := dovecottest.Start(t)
	const total = 200
	msgs := make([][]byte, total)
	for i := range msgs {
		msgs[i] = hubspotMessage(4 * i) // all from the known contact
	}
	srv.SeedMaildir(t, dovecottest.DefaultUser, "INBOX", msgs)
	fake := hubspottest.New(t, hubspottest.Options{OAuth: true})
	acme := fake.AddCompany("Acme Customer GmbH", "acme-customer.example")
	fake.AddContact("jane@acme-customer.example", "Jane", "Doe", acme)

	dir := t.TempDir()
	sec, rt, pw := filepath.Join(dir, "client.secret"), filepath.Join(dir, "refresh.token"), filepath.Join(dir, "imap.password")
	os.WriteFile(sec, []byte(hubspottest.ClientSecret), 0o600)
	os.WriteFile(rt, []byte(fake.RefreshToken()), 0o600)
	os.WriteFile(pw, []byte(dovecottest.DefaultPassword), 0o600)
	cfg := filepath.Join(dir, "mailsync.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state: state.db
sink:
  type: hubspot
  hubspot: {base_url: %q, search_lag: 1s, oauth2: {client_id: %s, client_secret_file: %s, refresh_token_file: %s}}
log: {level: info}
sync: {retry_min: 200ms, retry_max: 2s, batch_size: 20, shutdown_grace: 5s, poll_interval: 1s}
matcher:
  own_domains: [acme.example]
accounts:
  - id: alice
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password_file: %s
    start: all
    folders: [inbox]
    matcher: {capture: matched}
`, fake.URL(), hubspottest.ClientID, sec, rt, srv.Port(), dovecottest.DefaultUser, pw)), 0o600)

	logged := func() int { return len(fake.KeyCounts()) }
	wait := func(n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for logged() < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if logged() < n {
			t.Fatalf("%d emails logged, want %d", logged(), n)
		}
	}
	log := filepath.Join(dir, "run.log")
	r := startHubSpot(t, bin, cfg, log)
	wait(total / 4)
	fake.ExpireToken()
	wait(total)
	if n := fake.Refreshes(); n != 2 {
		t.Errorf("%d token refreshes, want 2 (at start, after the expiry)", n)
	}

	// A user deletes one logged email in HubSpot: its mailbox copy loses
	// the logged keyword (the message is kept).
	victim := fake.Emails()[0]
	var order int
	fmt.Sscanf(victim.Properties["hs_email_subject"], "order %d", &order)
	uid := imap.UID(order/4 + 1) // seeded in order
	hasLogged := func() bool {
		return slices.Contains(srv.Flags(t, dovecottest.DefaultUser, "INBOX")[uid], imap.Flag("$CRMLogged"))
	}
	if !hasLogged() {
		t.Fatalf("uid %d lacks $CRMLogged before the unlink", uid)
	}
	fake.Archive(victim.ID)
	deadline := time.Now().Add(30 * time.Second)
	for hasLogged() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if hasLogged() {
		t.Errorf("uid %d still has $CRMLogged after its email was deleted in HubSpot", uid)
	}

	fake.RevokeRefresh()
	fake.ExpireToken()
	for i := range 5 {
		srv.Append(t, dovecottest.DefaultUser, "INBOX", hubspotMessage(4*(total+i)))
	}
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), "re-authorization needed") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.stop(t)
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), "re-authorization needed") {
		t.Errorf("the log does not say that re-authorization is needed:\n%s", b)
	}
	if strings.Contains(string(b), "dead-letter") {
		t.Errorf("a message was dead-lettered for a refused token:\n%s", b)
	}
	if strings.Contains(string(b), fake.RefreshToken()) || strings.Contains(string(b), hubspottest.ClientSecret) {
		t.Error("the log shows a secret")
	}
	if got := logged(); got != total-1 {
		t.Errorf("%d emails live, want %d (none after the refused refresh)", got, total-1)
	}
}
