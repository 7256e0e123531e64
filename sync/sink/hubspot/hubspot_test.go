package hubspot_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/hubspot"
	"github.com/mailsync/mailsync/sync/sink/hubspot/hubspottest"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// open opens the adapter through the registry, as the daemon does, with a
// private-app token from a file.
func open(t *testing.T, fake *hubspottest.Server, extra map[string]any) *hubspot.Client {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(fake.Token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	section := map[string]any{"base_url": fake.URL(), "token_file": tok, "requests_per_10s": 1000, "search_per_second": 50}
	for k, v := range extra {
		section[k] = v
	}
	s, err := sink.Open(context.Background(), "hubspot", section, sink.Deps{})
	if err != nil {
		t.Fatalf("sink.Open(hubspot): %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*hubspot.Client)
}

func TestContract(t *testing.T) {
	sinktest.RunContract(t, func(t *testing.T) (sink.Sink, sinktest.Inspect) {
		fake := hubspottest.New(t, hubspottest.Options{PerTenSeconds: 10000, SearchPerSecond: 1000})
		return open(t, fake, nil), func(t *testing.T) map[string]int { return fake.KeyCounts() }
	})
}

// world is a small CRM: a company with an open and a closed deal, a
// contact of it, and a contact without company.
type world struct {
	fake                          *hubspottest.Server
	acme, jane, solo, open, close string
}

func newWorld(t *testing.T, opts hubspottest.Options) world {
	f := hubspottest.New(t, opts)
	w := world{fake: f}
	w.acme = f.AddCompany("Acme GmbH", "acme-customer.example")
	w.jane = f.AddContact("Jane@Acme-Customer.example", "Jane", "Doe", w.acme)
	w.solo = f.AddContact("solo@gmail.example", "Solo", "", "")
	w.open = f.AddDeal("Renewal 2027", false, time.Now(), []string{w.jane}, []string{w.acme})
	w.close = f.AddDeal("Lost 2025", true, time.Now().Add(time.Hour), []string{w.jane}, []string{w.acme})
	return w
}

func TestDirectory(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	c := open(t, w.fake, nil)
	got, err := c.LookupEmails(ctx(t), []string{"jane@acme-customer.example", "solo@gmail.example", "nobody@x.example"})
	if err != nil {
		t.Fatal(err)
	}
	jane := got["jane@acme-customer.example"]
	if len(jane) != 1 || jane[0].ID != w.jane || jane[0].Company != w.acme || jane[0].Name != "Jane Doe" {
		t.Fatalf("jane = %+v", jane)
	}
	if len(jane[0].Deals) != 1 || jane[0].Deals[0].ID != w.open || !jane[0].Deals[0].Open {
		t.Errorf("jane's deals = %+v, want only the open deal %s", jane[0].Deals, w.open)
	}
	if len(got["solo@gmail.example"]) != 1 || len(got["nobody@x.example"]) != 0 {
		t.Errorf("LookupEmails = %+v", got)
	}
	doms, err := c.LookupDomains(ctx(t), []string{"acme-customer.example", "unknown.example"})
	if err != nil {
		t.Fatal(err)
	}
	if acme := doms["acme-customer.example"]; len(acme) != 1 || acme[0].ID != w.acme || len(acme[0].Deals) != 1 || acme[0].Deals[0].ID != w.open {
		t.Errorf("LookupDomains = %+v", doms)
	}
}

// matched is a message linked to jane, her company and the open deal.
func matched(w world, key string) *sink.Message {
	m := sinktest.Message(key, 8192)
	m.Match = &sink.Match{Rule: "contact", Records: []sink.Record{
		{Kind: sink.KindContact, ID: w.jane}, {Kind: sink.KindCompany, ID: w.acme}, {Kind: sink.KindDeal, ID: w.open},
		{Kind: sink.KindCompany, ID: "c-from-file"}, // not a HubSpot id: left out
	}}
	return m
}

func TestEngagement(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	c := open(t, w.fake, nil)
	m := matched(w, "msg_engagement")
	r, err := sink.DeliverOne(ctx(t), c, m)
	if err != nil {
		t.Fatal(err)
	}
	es := w.fake.Emails()
	if len(es) != 1 || es[0].ID != r.Activity {
		t.Fatalf("emails = %+v, receipt %q", es, r.Activity)
	}
	e := es[0]
	p := e.Properties
	if p["hs_email_direction"] != "INCOMING_EMAIL" || p["hs_email_subject"] != m.Subject || p["mailsync_key"] != m.Key ||
		p["hs_timestamp"] != "1741944413000" || !strings.Contains(p["hs_email_text"], "Angebot") || !strings.Contains(p["hs_email_html"], "<p") {
		t.Errorf("properties = %v", p)
	}
	if !strings.Contains(p["hs_email_headers"], `"email":"joerg@customer.example","firstName":"Jörg","lastName":"Müller"`) {
		t.Errorf("hs_email_headers = %s", p["hs_email_headers"])
	}
	for typ, id := range map[int]string{hubspottest.EmailToContact: w.jane, hubspottest.EmailToCompany: w.acme, hubspottest.EmailToDeal: w.open} {
		if got := e.Associations[typ]; len(got) != 1 || got[0] != id {
			t.Errorf("association %d = %v, want [%s]", typ, got, id)
		}
	}
	if len(r.Linked) != 3 {
		t.Errorf("receipt linked %+v, want the 3 HubSpot records", r.Linked)
	}
}

// TestLostState: a second adapter (a fresh process, no state) delivering
// the same keys finds them with one search per batch and creates nothing.
func TestLostState(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	ms := make([]*sink.Message, 150)
	for i := range ms {
		ms[i] = matched(w, "msg_lost_"+string(rune('a'+i/26))+string(rune('a'+i%26)))
	}
	first := open(t, w.fake, nil).Deliver(ctx(t), ms)
	before := len(w.fake.Calls())
	second := open(t, w.fake, nil).Deliver(ctx(t), ms)
	for i := range ms {
		if first[i].Err != nil || second[i].Err != nil || first[i].Receipt.Activity != second[i].Receipt.Activity {
			t.Fatalf("message %d: first %+v, second %+v", i, first[i], second[i])
		}
	}
	calls := w.fake.Calls()[before:]
	if len(calls) != 2 { // 150 keys: two searches, no create
		t.Errorf("redelivery made %d calls, want 2 searches: %+v", len(calls), calls)
	}
	for k, n := range w.fake.KeyCounts() {
		if n != 1 {
			t.Errorf("key %s logged %d times", k, n)
		}
	}
}

func TestRateLimitStorm(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	c := open(t, w.fake, nil)
	w.fake.Storm(3, time.Second)
	start := time.Now()
	if _, err := sink.DeliverOne(ctx(t), c, matched(w, "msg_storm")); err != nil {
		t.Fatalf("Deliver through a short 429 storm: %v", err)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("delivery took %s: Retry-After: 1 was not obeyed three times", took)
	}
	// A long Retry-After is handed back to the worker (cursor held).
	w.fake.Storm(1, time.Minute)
	_, err := sink.DeliverOne(ctx(t), c, matched(w, "msg_storm2"))
	if wait, ok := sink.RetryAfter(err); !ok || wait < 50*time.Second || sink.IsPermanent(err) {
		t.Errorf("long 429: error %v, want a RetryAfterError of about a minute", err)
	}
}

func TestServerErrorIsTransient(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	c := open(t, w.fake, nil)
	w.fake.Fail("/crm/v3/objects/emails/batch/create", 503, 1)
	ms := []*sink.Message{matched(w, "msg_5xx_a"), matched(w, "msg_5xx_b")}
	for _, r := range c.Deliver(ctx(t), ms) {
		if r.Err == nil || sink.IsPermanent(r.Err) {
			t.Fatalf("503: result %+v, want a transient error", r)
		}
	}
	for _, r := range c.Deliver(ctx(t), ms) {
		if r.Err != nil {
			t.Fatalf("after the 503: %v", r.Err)
		}
	}
	if n := w.fake.KeyCounts(); n["msg_5xx_a"] != 1 || n["msg_5xx_b"] != 1 {
		t.Errorf("counts %v", n)
	}
}

// TestRefusedInputIsolated: a batch HubSpot refuses for one input (an
// association to a deleted contact) dead-letters only that message, with
// HubSpot's message.
func TestRefusedInputIsolated(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	c := open(t, w.fake, nil)
	bad := matched(w, "msg_bad")
	bad.Match.Records = []sink.Record{{Kind: sink.KindContact, ID: "999999"}}
	res := c.Deliver(ctx(t), []*sink.Message{matched(w, "msg_ok1"), bad, matched(w, "msg_ok2")})
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("good messages failed: %+v", res)
	}
	if !sink.IsPermanent(res[1].Err) || !strings.Contains(res[1].Err.Error(), "No contacts with id 999999") {
		t.Errorf("bad message: %v, want a permanent error quoting HubSpot", res[1].Err)
	}
}

func TestUnlinked(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	c := open(t, w.fake, nil)
	r, err := sink.DeliverOne(ctx(t), c, matched(w, "msg_unlink"))
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := c.Unlinked(ctx(t)); err != nil || len(keys) != 0 {
		t.Fatalf("Unlinked before deletion = %v, %v", keys, err)
	}
	w.fake.Archive(r.Activity)
	keys, err := c.Unlinked(ctx(t))
	if err != nil || len(keys) != 1 || keys[0] != "msg_unlink" {
		t.Fatalf("Unlinked = %v, %v", keys, err)
	}
	if err := c.AckUnlinked(ctx(t), keys); err != nil {
		t.Fatal(err)
	}
	if keys, _ := c.Unlinked(ctx(t)); len(keys) != 0 {
		t.Errorf("acknowledged keys returned again: %v", keys)
	}
}

func TestRetractArchives(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	c := open(t, w.fake, nil)
	if _, err := sink.DeliverOne(ctx(t), c, matched(w, "msg_retract")); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.DeliverOne(ctx(t), c, &sink.Message{Key: "msg_retract:retract", Event: sink.EventRetract}); err != nil {
		t.Fatal(err)
	}
	if n := w.fake.KeyCounts()["msg_retract"]; n != 0 {
		t.Errorf("retracted email still live (%d)", n)
	}
}

func TestCheck(t *testing.T) {
	w := newWorld(t, hubspottest.Options{})
	c := open(t, w.fake, nil)
	if err := c.Check(ctx(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	w.fake.SetScopes("crm.objects.contacts.read")
	if err := c.Check(ctx(t)); err == nil || !strings.Contains(err.Error(), "crm.objects.deals.read") {
		t.Errorf("Check with missing scopes = %v", err)
	}
	noProp := hubspottest.New(t, hubspottest.Options{KeyProperty: "other_key"})
	if err := open(t, noProp, nil).Check(ctx(t)); err == nil || !strings.Contains(err.Error(), `no property "mailsync_key"`) {
		t.Errorf("Check without the key property = %v", err)
	}
	w.fake.ExpireToken()
	if err := c.Check(ctx(t)); !errors.Is(err, hubspot.ErrReauth) {
		t.Errorf("Check with a revoked token = %v", err)
	}
}

// TestOAuthRefresh: an expired access token is refreshed once and the
// call goes through; a refused refresh reports re-auth needed with the
// cursor held (not a dead letter).
func TestOAuthRefresh(t *testing.T) {
	w := newWorld(t, hubspottest.Options{OAuth: true})
	dir := t.TempDir()
	sec, rt := filepath.Join(dir, "secret"), filepath.Join(dir, "refresh")
	os.WriteFile(sec, []byte(hubspottest.ClientSecret), 0o600)
	os.WriteFile(rt, []byte(w.fake.RefreshToken()), 0o600)
	s, err := sink.Open(context.Background(), "hubspot", map[string]any{"base_url": w.fake.URL(),
		"oauth2": map[string]any{"client_id": hubspottest.ClientID, "client_secret_file": sec, "refresh_token_file": rt}}, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.(sink.Checker).Check(ctx(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := sink.DeliverOne(ctx(t), s, matched(w, "msg_oauth1")); err != nil {
		t.Fatal(err)
	}
	w.fake.ExpireToken()
	if _, err := sink.DeliverOne(ctx(t), s, matched(w, "msg_oauth2")); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := w.fake.Refreshes(); n != 2 {
		t.Errorf("refreshes = %d, want 2 (first token, one after expiry)", n)
	}
	w.fake.RevokeRefresh()
	w.fake.ExpireToken()
	_, err = sink.DeliverOne(ctx(t), s, matched(w, "msg_oauth3"))
	if !errors.Is(err, hubspot.ErrReauth) || sink.IsPermanent(err) {
		t.Fatalf("revoked refresh token: %v, want a transient re-auth error", err)
	}
	if _, ok := sink.RetryAfter(err); !ok {
		t.Errorf("re-auth error %v carries no wait", err)
	}
	if strings.Contains(err.Error(), w.fake.RefreshToken()) {
		t.Error("error shows the refresh token")
	}
}

func TestParseSettings(t *testing.T) {
	for _, tt := range []struct {
		section map[string]any
		want    string
	}{
		{map[string]any{}, "sink.hubspot.token_file: a private-app token"},
		{map[string]any{"token_file": "/t", "token_env": "X"}, "sink.hubspot: set one of"},
		{map[string]any{"token_file": "/t", "base_url": "http://crm.example.com"}, "sink.hubspot.base_url: http is only allowed"},
		{map[string]any{"token_file": "/t", "key_property": "Bad-Name"}, "sink.hubspot.key_property:"},
		{map[string]any{"token_file": "/t", "retries": 3}, "sink.hubspot"},
		{map[string]any{"oauth2": map[string]any{"client_id": "x", "client_secret_env": "S", "refresh_token_file": "/r", "refresh_token_env": "R"}}, "sink.hubspot.oauth2.refresh_token_file:"},
		{map[string]any{"oauth2": map[string]any{"client_id": "x", "client_secret_env": "S", "redirect_url": "https://crm.example.com/cb"}}, "sink.hubspot.oauth2.redirect_url:"},
	} {
		if _, err := hubspot.ParseSettings(tt.section); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseSettings(%v) = %v, want prefix %q", tt.section, err, tt.want)
		}
	}
	c, err := hubspot.ParseSettings(map[string]any{"token_env": "HS"})
	if err != nil || c.BaseURL != hubspot.DefaultBaseURL || c.RequestsPer10s != 90 || c.KeyProperty != "mailsync_key" {
		t.Errorf("defaults = %+v, %v", c, err)
	}
}

// TestRestartWithinSearchLag: a process that dies after HubSpot created a
// batch but before the daemon recorded it, and restarts while the search
// index does not show the new emails yet, must not create them again: it
// waits out search_lag (RetryAfter, cursor held), then finds them.
func TestRestartWithinSearchLag(t *testing.T) {
	fake := hubspottest.New(t, hubspottest.Options{PerTenSeconds: 10000, SearchPerSecond: 1000, SearchLag: 1500 * time.Millisecond})
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte(fake.Token()), 0o600)
	kv := &sink.MemoryKV{} // the state file, shared by both processes
	openWith := func() sink.Sink {
		s, err := sink.Open(t.Context(), "hubspot", map[string]any{"base_url": fake.URL(), "token_file": tok,
			"requests_per_10s": 1000, "search_per_second": 50, "search_lag": "2s"}, sink.Deps{KV: kv})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ms := sinktest.Messages("lag", 5, 256)
	for i, r := range openWith().Deliver(t.Context(), ms) {
		if r.Err != nil {
			t.Fatalf("message %d: %v", i, r.Err)
		}
	}
	// The "crash": the ledger never heard of it; a new process redelivers.
	second := openWith()
	res := second.Deliver(t.Context(), ms)
	d, ok := sink.RetryAfter(res[0].Err)
	if !ok || d <= 0 || d > 3*time.Second {
		t.Fatalf("redelivery within the search lag = %v, want a RetryAfter of at most 3s", res[0].Err)
	}
	time.Sleep(d)
	for i, r := range second.Deliver(t.Context(), ms) {
		if r.Err != nil {
			t.Fatalf("after the wait, message %d: %v", i, r.Err)
		}
	}
	for k, n := range fake.KeyCounts() {
		if n != 1 {
			t.Errorf("%s logged %d times", k, n)
		}
	}
	if n := len(fake.KeyCounts()); n != 5 {
		t.Errorf("%d emails, want 5", n)
	}
}

// TestOwners: an account mapped in owners logs its mail for that HubSpot
// user (hubspot_owner_id, checked against the spec); another account's
// mail carries no owner; a non-numeric id is refused by name.
func TestOwners(t *testing.T) {
	fake := hubspottest.New(t, hubspottest.Options{PerTenSeconds: 10000, SearchPerSecond: 1000})
	c := open(t, fake, map[string]any{"owners": map[string]any{"sales": 4242}})
	a, b := sinktest.Message("own-1", 256), sinktest.Message("own-2", 256)
	a.Provenance = []sink.Provenance{{Account: "sales", Folder: "INBOX", UIDValidity: 1, UID: 1}}
	b.Provenance = []sink.Provenance{{Account: "support", Folder: "INBOX", UIDValidity: 1, UID: 1}}
	for i, r := range c.Deliver(t.Context(), []*sink.Message{a, b}) {
		if r.Err != nil {
			t.Fatalf("message %d: %v", i, r.Err)
		}
	}
	owners := map[string]string{}
	for _, e := range fake.Emails() {
		owners[e.Properties[hubspottest.DefaultKeyProperty]] = e.Properties["hubspot_owner_id"]
	}
	if owners[a.Key] != "4242" || owners[b.Key] != "" {
		t.Errorf("owners = %v, want %s for sales' mail and none for support's", owners, "4242")
	}
	if _, err := hubspot.ParseSettings(map[string]any{"token_file": "/t", "owners": map[string]any{"sales": "jane"}}); err == nil || !strings.HasPrefix(err.Error(), "sink.hubspot.owners.sales:") {
		t.Errorf("a bad owner id: %v", err)
	}
}
