package odoo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/odootest"
	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/odoo"
)

func TestMain(m *testing.M) {
	odootest.Main(m, odootest.Instance{Name: "adapter-c", Base: 27110})
}

// world is a small CRM: Acme (company, website acme.example) with Jane and
// her open deal, a won and a lost deal, and a lead for Lou.
type world struct {
	o                         *odootest.Odoo
	acme, jane, dealOpen, lou int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{o: odootest.Reset(t)}
	w.o.Call(t, "res.partner", "create", []any{map[string]any{"name": "Acme", "is_company": true, "website": "https://www.acme.example"}}, nil, &w.acme)
	w.o.Call(t, "res.partner", "create", []any{map[string]any{"name": "Jane Roe", "email": "Jane@Acme.example", "parent_id": w.acme}}, nil, &w.jane)
	w.o.Call(t, "crm.lead", "create", []any{map[string]any{"name": "Acme renewal", "type": "opportunity", "partner_id": w.jane}}, nil, &w.dealOpen)
	var won, lost int
	w.o.Call(t, "crm.lead", "create", []any{map[string]any{"name": "Acme 2024", "type": "opportunity", "partner_id": w.jane}}, nil, &won)
	w.o.Call(t, "crm.lead", "action_set_won", []any{[]int{won}}, nil, nil)
	w.o.Call(t, "crm.lead", "create", []any{map[string]any{"name": "Acme lost", "type": "opportunity", "partner_id": w.jane}}, nil, &lost)
	w.o.Call(t, "crm.lead", "action_set_lost", []any{[]int{lost}}, nil, nil)
	w.o.Call(t, "crm.lead", "create", []any{map[string]any{"name": "Lou's enquiry", "type": "lead", "email_from": "lou@prospect.example"}}, nil, &w.lou)
	return w
}

func (w *world) open(t *testing.T, kv sink.KV) *odoo.Sink {
	t.Helper()
	cfg, err := odoo.ParseSettings(map[string]any{"url": w.o.URL, "database": w.o.Database, "username": w.o.Login, "api_key_file": w.o.APIKeyFile()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := odoo.Open(context.Background(), cfg, sink.Deps{KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type mailMessage struct {
	ID        int    `json:"id"`
	Model     string `json:"model"`
	ResID     int    `json:"res_id"`
	Type      string `json:"message_type"`
	Subject   string `json:"subject"`
	Body      string `json:"body"`
	MessageID string `json:"message_id"`
	EmailFrom string `json:"email_from"`
	Date      string `json:"date"`
	Atts      []int  `json:"attachment_ids"`
}

func (w *world) logged(t *testing.T, mid string) []mailMessage {
	t.Helper()
	var out []mailMessage
	w.o.Call(t, "mail.message", "search_read", []any{[]any{[]any{"message_id", "=", mid}}},
		map[string]any{"fields": []string{"model", "res_id", "message_type", "subject", "body", "message_id", "email_from", "date", "attachment_ids"}, "order": "id"}, &out)
	return out
}

func TestDirectory(t *testing.T) {
	w := newWorld(t)
	s := w.open(t, nil)
	ctx := context.Background()
	got, err := s.LookupEmails(ctx, []string{"jane@acme.example", "lou@prospect.example", "nobody@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	jane := got["jane@acme.example"]
	if len(jane) != 1 || jane[0].Kind != sink.KindContact || jane[0].ID != strconv.Itoa(w.jane) || jane[0].Company != strconv.Itoa(w.acme) {
		t.Fatalf("jane = %+v", jane)
	}
	if len(jane[0].Deals) != 1 || jane[0].Deals[0].ID != strconv.Itoa(w.dealOpen) || !jane[0].Deals[0].Open {
		t.Errorf("jane's deals = %+v, want only the open one %d", jane[0].Deals, w.dealOpen)
	}
	if jane[0].Via == "" {
		t.Error("no Via")
	}
	if lou := got["lou@prospect.example"]; len(lou) != 1 || lou[0].Kind != sink.KindLead || lou[0].ID != strconv.Itoa(w.lou) {
		t.Errorf("lou = %+v", lou)
	}
	if n := got["nobody@acme.example"]; len(n) != 0 {
		t.Errorf("unknown address found %+v", n)
	}
	doms, err := s.LookupDomains(ctx, []string{"acme.example", "cme.example", "other.example"})
	if err != nil {
		t.Fatal(err)
	}
	if a := doms["acme.example"]; len(a) != 1 || a[0].Kind != sink.KindCompany || a[0].ID != strconv.Itoa(w.acme) || len(a[0].Deals) != 1 {
		t.Errorf("acme.example = %+v", a)
	}
	if len(doms["cme.example"]) != 0 || len(doms["other.example"]) != 0 {
		t.Errorf("substring or unknown domain matched: %+v", doms)
	}
}

func rawMail(mid, subject, body string) []byte {
	return []byte("From: Jane Roe <jane@acme.example>\r\nTo: sales@us.example\r\nSubject: " + subject +
		"\r\nMessage-ID: " + mid + "\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n" + body)
}

func (w *world) message(key, mid, subject string) *sink.Message {
	return &sink.Message{
		Key: key, Event: sink.EventMessage, MessageID: mid, Subject: subject,
		Date: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC),
		From: []sink.Address{{Name: "Jane Roe", Email: "jane@acme.example"}},
		Body: rawMail(mid, subject, "Hello <b>there</b>\nline two"),
		Match: &sink.Match{Records: []sink.Record{
			{Kind: sink.KindContact, ID: strconv.Itoa(w.jane)},
			{Kind: sink.KindCompany, ID: strconv.Itoa(w.acme)},
			{Kind: sink.KindDeal, ID: strconv.Itoa(w.dealOpen)},
		}},
	}
}

func TestDeliverExactlyOnce(t *testing.T) {
	w := newWorld(t)
	kv := &sink.MemoryKV{}
	s := w.open(t, kv)
	ctx := context.Background()
	var followersBefore int
	w.o.Call(t, "mail.followers", "search_count", []any{[]any{}}, nil, &followersBefore)
	ms := []*sink.Message{w.message("k1", "<m1@acme.example>", "Renewal"), w.message("k2", "<m2@acme.example>", "Invoice")}
	res := s.Deliver(ctx, ms)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("message %d: %v", i, r.Err)
		}
	}
	got := w.logged(t, "<m1@acme.example>")
	if len(got) != 2 {
		t.Fatalf("m1 logged %d times, want on jane and the deal: %+v", len(got), got)
	}
	want := map[string]bool{fmt.Sprintf("res.partner/%d", w.jane): true, fmt.Sprintf("crm.lead/%d", w.dealOpen): true}
	for _, m := range got {
		if !want[fmt.Sprintf("%s/%d", m.Model, m.ResID)] {
			t.Errorf("logged on %s/%d", m.Model, m.ResID)
		}
		if m.Type != "email" || m.Subject != "Renewal" || m.Date != "2026-11-02 10:00:00" || !strings.Contains(m.EmailFrom, "jane@acme.example") {
			t.Errorf("logged message = %+v", m)
		}
		if !strings.Contains(m.Body, "Hello &lt;b&gt;there&lt;/b&gt;<br>line two") {
			t.Errorf("body not escaped text: %q", m.Body)
		}
	}
	if act := res[0].Receipt.Activity; len(strings.Split(act, ",")) != 2 {
		t.Errorf("activity = %q", act)
	}
	// A retry, and a second adapter with an empty KV (the state file lost):
	// nothing new is posted, and the same activity ids come back.
	for _, again := range []*odoo.Sink{s, w.open(t, nil)} {
		res2 := again.Deliver(ctx, ms)
		if res2[0].Err != nil || res2[0].Receipt.Activity != res[0].Receipt.Activity {
			t.Errorf("redelivery = %+v, want activity %q", res2[0], res[0].Receipt.Activity)
		}
	}
	if got := w.logged(t, "<m2@acme.example>"); len(got) != 2 {
		t.Errorf("m2 logged %d times after redelivery, want 2", len(got))
	}
	// Nobody was e-mailed and nobody started following.
	var mails, followers int
	w.o.Call(t, "mail.mail", "search_count", []any{[]any{}}, nil, &mails)
	w.o.Call(t, "mail.followers", "search_count", []any{[]any{}}, nil, &followers)
	if mails != 0 || followers != followersBefore {
		t.Errorf("mail.mail = %d (want 0), followers %d -> %d", mails, followersBefore, followers)
	}
}

func TestDeliverCompanyOnlyAndNoMessageID(t *testing.T) {
	w := newWorld(t)
	s := w.open(t, nil)
	m := w.message("acct/INBOX/42", "", "Colleague")
	m.Match.Records = []sink.Record{{Kind: sink.KindCompany, ID: strconv.Itoa(w.acme)}}
	for range 2 {
		if r := s.Deliver(context.Background(), []*sink.Message{m}); r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
	}
	got := w.logged(t, "<acct/INBOX/42@mailsync.invalid>")
	if len(got) != 1 || got[0].Model != "res.partner" || got[0].ResID != w.acme {
		t.Errorf("logged = %+v, want once on the company", got)
	}
}

func TestAttachmentsWithinCap(t *testing.T) {
	w := newWorld(t)
	cfg, _ := odoo.ParseSettings(map[string]any{"url": w.o.URL, "database": "crm", "username": "admin", "api_key_file": w.o.APIKeyFile(), "attachments_max_bytes": 1000})
	s, err := odoo.Open(context.Background(), cfg, sink.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	m := w.message("ka", "<att@acme.example>", "Files")
	m.Match.Records = m.Match.Records[:1]
	m.Body = []byte("From: jane@acme.example\r\nSubject: Files\r\nMessage-ID: <att@acme.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee files\r\n" +
		"--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=small.txt\r\n\r\nsmall file\r\n" +
		"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n\r\n" + strings.Repeat("x", 2000) + "\r\n--B--\r\n")
	if r := s.Deliver(context.Background(), []*sink.Message{m}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	got := w.logged(t, "<att@acme.example>")
	if len(got) != 1 || len(got[0].Atts) != 1 || !strings.Contains(got[0].Body, "big.bin") {
		t.Fatalf("logged = %+v, want small.txt attached and big.bin named", got)
	}
	var names []struct {
		Name string `json:"name"`
	}
	w.o.Call(t, "ir.attachment", "read", []any{got[0].Atts, []string{"name"}}, nil, &names)
	if len(names) != 1 || names[0].Name != "small.txt" {
		t.Errorf("attachments = %+v", names)
	}
}

func TestCreateIntentsSearchFirst(t *testing.T) {
	w := newWorld(t)
	s := w.open(t, nil)
	m := &sink.Message{Key: "kc", Event: sink.EventMessage, MessageID: "<new@x.example>", Subject: "Hi",
		From: []sink.Address{{Email: "newbie@newco.example"}}, Body: rawMail("<new@x.example>", "Hi", "hello"),
		Match: &sink.Match{Intents: []sink.Intent{{Action: "create", Kind: sink.KindLead, Fields: map[string]string{"email": "newbie@newco.example", "name": "Newbie"}}}}}
	r1 := s.Deliver(context.Background(), []*sink.Message{m})
	r2 := w.open(t, nil).Deliver(context.Background(), []*sink.Message{m})
	if r1[0].Err != nil || r2[0].Err != nil {
		t.Fatal(r1[0].Err, r2[0].Err)
	}
	if len(r1[0].Receipt.Created) != 1 || r1[0].Receipt.Created[0].Kind != sink.KindLead || r1[0].Receipt.Created[0].ID != r2[0].Receipt.Created[0].ID {
		t.Errorf("created %+v then %+v, want one lead", r1[0].Receipt.Created, r2[0].Receipt.Created)
	}
	var n int
	w.o.Call(t, "crm.lead", "search_count", []any{[]any{[]any{"email_normalized", "=", "newbie@newco.example"}}}, nil, &n)
	if n != 1 {
		t.Errorf("%d leads for newbie, want 1", n)
	}
	if got := w.logged(t, "<new@x.example>"); len(got) != 1 || got[0].Model != "crm.lead" {
		t.Errorf("logged = %+v, want once on the new lead", got)
	}
}

func TestRetractAndUnlink(t *testing.T) {
	w := newWorld(t)
	kv := &sink.MemoryKV{}
	s := w.open(t, kv)
	ctx := context.Background()
	ms := []*sink.Message{w.message("k1", "<r1@acme.example>", "One"), w.message("k2", "<r2@acme.example>", "Two")}
	for _, r := range s.Deliver(ctx, ms) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	// Private: the retract removes both copies of k1.
	if r := s.Deliver(ctx, []*sink.Message{{Key: "k1:retract", Event: sink.EventRetract, MessageID: "<r1@acme.example>"}}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if got := w.logged(t, "<r1@acme.example>"); len(got) != 0 {
		t.Errorf("retracted message still in Odoo: %+v", got)
	}
	if keys, err := s.Unlinked(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("Unlinked after retract = %v, %v; want none", keys, err)
	}
	// An admin deletes one copy of k2: still linked. Then the other: unlinked.
	got := w.logged(t, "<r2@acme.example>")
	w.o.Call(t, "mail.message", "unlink", []any{[]int{got[0].ID}}, nil, nil)
	if keys, _ := s.Unlinked(ctx); len(keys) != 0 {
		t.Errorf("one copy left, Unlinked = %v", keys)
	}
	w.o.Call(t, "mail.message", "unlink", []any{[]int{got[1].ID}}, nil, nil)
	keys, err := s.Unlinked(ctx)
	if err != nil || len(keys) != 1 || keys[0] != "k2" {
		t.Fatalf("Unlinked = %v, %v; want [k2]", keys, err)
	}
	if err := s.AckUnlinked(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.Unlinked(ctx); len(keys) != 0 {
		t.Errorf("after ack Unlinked = %v", keys)
	}
}

func TestCheckAndErrors(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if err := w.open(t, nil).Check(ctx); err != nil {
		t.Fatalf("Check as admin: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("not-the-key\n"), 0o600)
	cases := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"wrong key", map[string]any{"api_key_file": bad}, "refused the login"},
		{"wrong user", map[string]any{"username": "nobody"}, "refused the login"},
		{"wrong database", map[string]any{"database": "nosuch"}, "nosuch"},
		{"not odoo", map[string]any{"url": w.o.URL + "/nothing"}, "HTTP 404"},
		{"down", map[string]any{"url": "http://127.0.0.1:1"}, "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := map[string]any{"url": w.o.URL, "database": "crm", "username": "admin", "api_key_file": w.o.APIKeyFile(), "timeout": "5s"}
			for k, v := range tc.settings {
				set[k] = v
			}
			cfg, err := odoo.ParseSettings(set)
			if err != nil {
				t.Fatal(err)
			}
			s, err := odoo.Open(ctx, cfg, sink.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Check(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), w.o.APIKey(t)) {
				t.Fatal("the API key is in the error")
			}
			// Delivery: transient (the cursor is held) unless Odoo refused the data.
			r := s.Deliver(ctx, []*sink.Message{w.message("k", "<e@x>", "x")})
			if r[0].Err == nil {
				t.Fatal("delivery succeeded")
			}
			if tc.name == "down" && sink.IsPermanent(r[0].Err) {
				t.Errorf("Odoo down is permanent: %v", r[0].Err)
			}
		})
	}
	// A plain internal user may not read leads: Check names the model.
	var gid int
	w.o.Call(t, "ir.model.data", "check_object_reference", []any{"base", "group_user"}, nil, &[]any{nil, &gid})
	var uid int
	w.o.Call(t, "res.users", "create", []any{map[string]any{"name": "Pat", "login": "pat", "password": "pat-pass-1", "groups_id": []any{[]any{6, 0, []int{gid}}}}}, nil, &uid)
	pw := filepath.Join(t.TempDir(), "pat.key")
	os.WriteFile(pw, []byte("pat-pass-1"), 0o600)
	cfg, _ := odoo.ParseSettings(map[string]any{"url": w.o.URL, "database": "crm", "username": "pat", "api_key_file": pw})
	s, _ := odoo.Open(ctx, cfg, sink.Deps{})
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), `user "pat" may not`) {
		t.Errorf("Check as a plain user = %v, want a rights error", err)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		set  map[string]any
		want string
	}{
		{map[string]any{}, "sink.odoo.url: is required"},
		{map[string]any{"url": "ftp://x"}, "sink.odoo.url:"},
		{map[string]any{"url": "http://x"}, "sink.odoo.database: is required"},
		{map[string]any{"url": "http://x", "database": "d"}, "sink.odoo.username: is required"},
		{map[string]any{"url": "http://x", "database": "d", "username": "u"}, "sink.odoo.api_key_file:"},
		{map[string]any{"url": "http://x", "database": "d", "username": "u", "api_key_env": "A", "bogus": 1}, "sink.odoo.bogus: unknown key"},
		{map[string]any{"url": "http://x", "database": "d", "username": "u", "api_key_env": "A", "timeout": "soon"}, "sink.odoo.timeout"},
	} {
		_, err := odoo.ParseSettings(tc.set)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSettings(%v) = %v, want %q", tc.set, err, tc.want)
		}
	}
}
