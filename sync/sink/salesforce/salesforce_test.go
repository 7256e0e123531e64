package salesforce_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/salesforce"
	"github.com/mailsync/mailsync/sync/sink/salesforce/salesforcetest"
	"github.com/mailsync/mailsync/sync/sink/sinktest"
)

func open(t *testing.T, fake *salesforcetest.Server, kv sink.KV) (*salesforce.Client, string) {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(salesforcetest.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := sink.Open(context.Background(), "salesforce", map[string]any{
		"instance_url": fake.URL, "api_version": "59.0", "token_file": tok, "requests_per_second": 500,
	}, sink.Deps{KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*salesforce.Client), tok
}

// keys maps the fake's EmailMessages back to sinktest keys.
func keys(fake *salesforcetest.Server) map[string]int {
	out := map[string]int{}
	for id, n := range fake.Identifiers() {
		out[strings.TrimSuffix(strings.TrimPrefix(id, "<"), "@mail.example.com>")] += n
	}
	return out
}

func TestContract(t *testing.T) {
	sinktest.RunContract(t, func(t *testing.T) (sink.Sink, sinktest.Inspect) {
		fake := salesforcetest.Start(t)
		c, _ := open(t, fake, nil)
		return c, func(t *testing.T) map[string]int { return keys(fake) }
	})
}

func TestDirectoryAndRelations(t *testing.T) {
	fake := salesforcetest.Start(t)
	acct := fake.Add("Account", map[string]any{"Name": "Contoso", "Website": "https://www.contoso.example/"})
	fake.Add("Account", map[string]any{"Name": "Not Contoso", "Website": "notcontoso.example"})
	ada := fake.Add("Contact", map[string]any{"Name": "Ada Liu", "Email": "ada@contoso.example", "AccountId": acct})
	lead := fake.Add("Lead", map[string]any{"Name": "Lee", "Email": "lee@new.example", "Company": "New", "IsConverted": false})
	fake.Add("Lead", map[string]any{"Name": "Old", "Email": "old@new.example", "IsConverted": true})
	opp := fake.Add("Opportunity", map[string]any{"Name": "Renewal", "AccountId": acct, "IsClosed": false})
	fake.Add("Opportunity", map[string]any{"Name": "Won", "AccountId": acct, "IsClosed": true})
	c, _ := open(t, fake, nil)
	got, err := c.LookupEmails(t.Context(), []string{"ada@contoso.example", "lee@new.example", "old@new.example", "o'brien@x.example"})
	if err != nil {
		t.Fatal(err)
	}
	if r := got["ada@contoso.example"]; len(r) != 1 || r[0].ID != ada || r[0].Company != acct || r[0].CompanyName != "Contoso" || len(r[0].Deals) != 1 || r[0].Deals[0].ID != opp {
		t.Errorf("contact = %+v", r)
	}
	if r := got["lee@new.example"]; len(r) != 1 || r[0].Kind != sink.KindLead || r[0].ID != lead {
		t.Errorf("lead = %+v", r)
	}
	if _, ok := got["old@new.example"]; ok {
		t.Errorf("a converted lead was found")
	}
	doms, err := c.LookupDomains(t.Context(), []string{"contoso.example"})
	if err != nil {
		t.Fatal(err)
	}
	if d := doms["contoso.example"]; len(d) != 1 || d[0].ID != acct || len(d[0].Deals) != 1 {
		t.Errorf("LookupDomains = %+v", doms)
	}
	m := sinktest.Message("rel-1", 1<<10)
	m.Match = &sink.Match{Rule: "address", Records: []sink.Record{{Kind: sink.KindContact, ID: ada}, {Kind: sink.KindCompany, ID: acct}, {Kind: sink.KindDeal, ID: opp}}}
	r, err := sink.DeliverOne(t.Context(), c, m)
	if err != nil {
		t.Fatal(err)
	}
	ems := fake.Records("EmailMessage")
	if len(ems) != 1 || ems[0].Fields["RelatedToId"] != opp || ems[0].Fields["Incoming"] != true || ems[0].Fields["MessageIdentifier"] != "<rel-1@mail.example.com>" || ems[0].Fields["Id"] != r.Activity {
		t.Errorf("EmailMessage = %+v, receipt %q", ems, r.Activity)
	}
	rels := fake.Records("EmailMessageRelation")
	if len(rels) != 1 || rels[0].Fields["RelationId"] != ada || rels[0].Fields["EmailMessageId"] != r.Activity {
		t.Errorf("relations = %+v", rels)
	}
	if err := c.Check(t.Context()); err != nil {
		t.Errorf("Check() = %v", err)
	}
}

func TestLostStateAndBatches(t *testing.T) {
	fake := salesforcetest.Start(t)
	ms := sinktest.Messages("sf", 450, 512)
	c1, _ := open(t, fake, &sink.MemoryKV{})
	for i, r := range c1.Deliver(t.Context(), ms) {
		if r.Err != nil {
			t.Fatalf("message %d: %v", i, r.Err)
		}
	}
	if got := fake.Calls("POST /composite/sobjects"); got != 3 {
		t.Errorf("450 messages took %d collection calls, want 3 (200 a call)", got)
	}
	c2, _ := open(t, fake, &sink.MemoryKV{})
	for i, r := range c2.Deliver(t.Context(), ms) {
		if r.Err != nil {
			t.Fatalf("after lost state, message %d: %v", i, r.Err)
		}
	}
	if got := fake.Calls("POST /composite/sobjects"); got != 3 {
		t.Errorf("after lost state: %d more collection calls, want 0", got-3)
	}
	for k, n := range keys(fake) {
		if n != 1 {
			t.Errorf("key %s logged %d times", k, n)
		}
	}
}

// TestRelationsAfterKill: an EmailMessage whose relations were never
// created (the daemon died between the two calls) gets them on the
// redelivery, once, and the EmailMessage is not created again.
func TestRelationsAfterKill(t *testing.T) {
	fake := salesforcetest.Start(t)
	ada := fake.Add("Contact", map[string]any{"Name": "Ada Liu", "Email": "ada@contoso.example"})
	ms := sinktest.Messages("kill", 12, 256)
	for _, m := range ms {
		m.Match = &sink.Match{Rule: "address", Records: []sink.Record{{Kind: sink.KindContact, ID: ada, Email: "ada@contoso.example"}}}
	}
	deliver := func() {
		t.Helper()
		c, _ := open(t, fake, &sink.MemoryKV{}) // a lost state file each time
		for i, r := range c.Deliver(t.Context(), ms) {
			if r.Err != nil {
				t.Fatalf("message %d: %v", i, r.Err)
			}
		}
	}
	deliver()
	if n := fake.Drop("EmailMessageRelation"); n != len(ms) {
		t.Fatalf("%d relations after the first delivery, want %d", n, len(ms))
	}
	posts := fake.Calls("POST /composite/sobjects")
	deliver()
	if got := fake.Calls("POST /composite/sobjects") - posts; got != 1 {
		t.Errorf("the redelivery took %d collection calls, want 1 (the missing relations)", got)
	}
	deliver()
	if got := len(fake.Records("EmailMessageRelation")); got != len(ms) {
		t.Errorf("%d relations, want %d (one per message)", got, len(ms))
	}
	for k, n := range keys(fake) {
		if n != 1 {
			t.Errorf("key %s logged %d times", k, n)
		}
	}
}

func TestErrors(t *testing.T) {
	fake := salesforcetest.Start(t)
	c, tok := open(t, fake, nil)
	m := sinktest.Message("sferr", 512)
	fake.FailNext(403)
	if _, err := sink.DeliverOne(t.Context(), c, m); !isRetryAfter(err) {
		t.Errorf("on REQUEST_LIMIT_EXCEEDED: %v, want a RetryAfterError", err)
	}
	fake.FailNext(503)
	if _, err := sink.DeliverOne(t.Context(), c, m); err == nil || sink.IsPermanent(err) {
		t.Errorf("on 503: %v, want transient", err)
	}
	fake.SetToken("00Dfake!refreshed")
	if _, err := sink.DeliverOne(t.Context(), c, m); !errors.Is(err, salesforce.ErrReauth) || sink.IsPermanent(err) {
		t.Errorf("with an expired token: %v, want transient ErrReauth", err)
	}
	if err := os.WriteFile(tok, []byte("00Dfake!refreshed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.DeliverOne(t.Context(), c, m); err != nil {
		t.Errorf("after a new token was written: %v", err)
	}
	if got := keys(fake)["sferr"]; got != 1 {
		t.Errorf("sferr logged %d times", got)
	}
}

func isRetryAfter(err error) bool { _, ok := sink.RetryAfter(err); return ok }

// TestOAuth2RefreshOnce: an expired access token is refreshed once with
// the connected app's refresh token; when the refresh is refused too, the
// adapter reports that re-authentication is needed.
func TestOAuth2RefreshOnce(t *testing.T) {
	fake := salesforcetest.Start(t)
	var refreshes atomic.Int32
	refuse := atomic.Bool{}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refreshes.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if refuse.Load() || r.FormValue("grant_type") != "refresh_token" || r.FormValue("refresh_token") != "5Aep-refresh" {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"expired access/refresh token"}`)
			return
		}
		io.WriteString(w, `{"access_token":"00Dfake!refreshed","token_type":"Bearer","instance_url":"`+fake.URL+`"}`)
	}))
	defer idp.Close()
	dir := t.TempDir()
	tok, rt := filepath.Join(dir, "token"), filepath.Join(dir, "refresh")
	os.WriteFile(tok, []byte(salesforcetest.Token), 0o600)
	os.WriteFile(rt, []byte("5Aep-refresh"), 0o600)
	s, err := sink.Open(t.Context(), "salesforce", map[string]any{
		"instance_url": fake.URL, "token_file": tok, "requests_per_second": 500,
		"oauth2": map[string]any{"token_url": idp.URL, "client_id": "3MVG9-app", "refresh_token_file": rt},
	}, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fake.SetToken("00Dfake!refreshed")
	if _, err := sink.DeliverOne(t.Context(), s, sinktest.Message("oa-1", 512)); err != nil {
		t.Fatalf("after an expired token: %v, want a refresh and success", err)
	}
	if got := refreshes.Load(); got != 1 {
		t.Errorf("%d refreshes, want 1", got)
	}
	fake.SetToken("00Dfake!revoked")
	refuse.Store(true)
	if _, err := sink.DeliverOne(t.Context(), s, sinktest.Message("oa-2", 512)); !errors.Is(err, salesforce.ErrReauth) {
		t.Errorf("with the refresh refused: %v, want ErrReauth", err)
	}
	if got := refreshes.Load(); got != 2 {
		t.Errorf("%d refreshes, want 2 (once per 401)", got)
	}
}

// TestUnlinked: an EmailMessage deleted in Salesforce is reported once,
// through the spec-validated GET /sobjects/EmailMessage/deleted, after the
// first poll set the starting point; one deleted by someone else's tool
// (not logged by mailsync) is not.
func TestUnlinked(t *testing.T) {
	fake := salesforcetest.Start(t)
	kv := &sink.MemoryKV{}
	c, _ := open(t, fake, kv)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	salesforce.SetClock(c, func() time.Time { return time.Unix(0, clock.Load()) })
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	ms := sinktest.Messages("unl", 3, 256)
	for i, r := range c.Deliver(t.Context(), ms) {
		if r.Err != nil {
			t.Fatalf("message %d: %v", i, r.Err)
		}
	}
	if keys, err := c.Unlinked(t.Context()); err != nil || len(keys) != 0 {
		t.Fatalf("first poll = %v, %v; want the starting point only", keys, err)
	}
	ems := fake.Records("EmailMessage")
	fake.Delete("EmailMessage", ems[1].Fields["Id"].(string))
	other := fake.Add("EmailMessage", map[string]any{"MessageIdentifier": "<theirs@x>", "Status": "3"})
	fake.Delete("EmailMessage", other)
	if keys, err := c.Unlinked(t.Context()); err != nil || len(keys) != 0 {
		t.Errorf("within the same minute = %v, %v; want nothing yet (Salesforce counts minutes)", keys, err)
	}
	advance(2 * time.Minute)
	keys, err := c.Unlinked(t.Context())
	if err != nil || len(keys) != 1 || keys[0] != ms[1].Key {
		t.Fatalf("after a deletion = %v, %v; want [%s]", keys, err, ms[1].Key)
	}
	if again, _ := c.Unlinked(t.Context()); len(again) != 1 {
		t.Errorf("before the acknowledgement = %v, want the key again", again)
	}
	if err := c.AckUnlinked(t.Context(), keys); err != nil {
		t.Fatal(err)
	}
	advance(time.Minute)
	if again, err := c.Unlinked(t.Context()); err != nil || len(again) != 0 {
		t.Errorf("after the acknowledgement = %v, %v; want nothing", again, err)
	}
	if got := fake.Calls("GET /sobjects/EmailMessage/deleted"); got != 3 {
		t.Errorf("%d calls to the delete log, want 3", got)
	}
}
