package outbound

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/sink"
)

var testRecords = []sink.Record{{Kind: "deal", ID: "D-42", Name: "Renewal"}, {Kind: "contact", ID: "C-7"}}

func sendBody(key string) map[string]any {
	return map[string]any{
		"to":              []string{"Bob <bob@customer.example>"},
		"cc":              []string{"carol@customer.example"},
		"bcc":             []string{"audit@acme.example"},
		"subject":         "Your renewal",
		"text":            "Hello Bob,\nhere is the offer.\n",
		"html":            "<p>Hello Bob,</p><p>here is the offer.</p>",
		"records":         testRecords,
		"idempotency_key": key,
	}
}

func TestSendDeliversOnceFilesSentAndRecordsLedger(t *testing.T) {
	r := newRig(t, rigOptions{})
	code, body := r.post(accountID, sendBody("crm-1"))
	if code != 200 {
		t.Fatalf("POST = %d %v, want 200", code, body)
	}
	if body["idempotent_replay"] != false {
		t.Errorf("idempotent_replay = %v on the first send, want false", body["idempotent_replay"])
	}
	mid, key := body["message_id"].(string), body["key"].(string)
	uid := imap.UID(body["uid"].(float64))

	// The SMTP peer got it exactly once, for every recipient, without Bcc.
	msgs := r.peer.messages()
	if len(msgs) != 1 {
		t.Fatalf("SMTP peer received %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if want := []string{"bob@customer.example", "carol@customer.example", "audit@acme.example"}; !slices.Equal(got.rcpts, want) {
		t.Errorf("RCPT TO = %v, want %v", got.rcpts, want)
	}
	if got.from != mailUser {
		t.Errorf("MAIL FROM = %q, want the account's address %q", got.from, mailUser)
	}
	if h := headerValue(got.data, "Message-Id"); h != "<"+mid+">" {
		t.Errorf("submitted Message-ID = %q, want <%s>", h, mid)
	}
	if !strings.HasSuffix(mid, "@acme.example") {
		t.Errorf("Message-ID %q is not at the sender's domain", mid)
	}
	if h := headerValue(got.data, "Bcc"); h != "" {
		t.Errorf("submitted message carries Bcc: %q", h)
	}

	// Sent holds one \Seen copy, at the UID the API reported, with Bcc.
	sent := r.sent()
	if len(sent) != 1 {
		t.Fatalf("Sent holds %d messages, want 1", len(sent))
	}
	flags, ok := sent[uid]
	if !ok || !hasFlag(flags, imap.FlagSeen) {
		t.Fatalf("Sent = %v, want uid %d with \\Seen", sent, uid)
	}
	if body["sent_folder"] != "Sent" {
		t.Errorf("sent_folder = %v, want Sent (the \\Sent SPECIAL-USE folder)", body["sent_folder"])
	}

	// The key: the worker's derivation on the copy Dovecot serves, and
	// ours on what the SMTP peer received, agree with the API's.
	if k := r.keyFromDovecot(uid); k != key {
		t.Errorf("key derived from the Sent copy's header = %s, API said %s", k, key)
	}
	if k := identify(got.data).key; k != key {
		t.Errorf("key derived from the submitted message = %s, API said %s", k, key)
	}

	// The ledger has exactly that entry, linked to the records and the copy.
	e, ok := r.ledger(key)
	if !ok {
		t.Fatalf("ledger has no entry for %s", key)
	}
	if e.Status != store.StatusDelivered || e.MessageID != mid || !reflect.DeepEqual(e.Records, testRecords) {
		t.Errorf("ledger entry = %+v, want delivered, %s, %v", e, mid, testRecords)
	}
	uv := r.dovecot.Status(t, mailUser, "Sent").UIDValidity
	wantProv := []sink.Provenance{{Account: accountID, Folder: "Sent", UIDValidity: uv, UID: uint32(uid)}}
	if !slices.Equal(e.Provenance, wantProv) {
		t.Errorf("provenance = %v, want %v", e.Provenance, wantProv)
	}
	if recs, err := r.store.ThreadRecords([]string{mid}); err != nil || len(recs) != len(testRecords) {
		t.Errorf("thread records for %s = %v, %v; want the request's records so replies link", mid, recs, err)
	}
	if keys := r.ledgerKeys(); !slices.Equal(keys, []string{key}) {
		t.Errorf("ledger keys = %v, want only %s", keys, key)
	}

	// The same request again: nothing is sent or filed twice.
	code, again := r.post(accountID, sendBody("crm-1"))
	if code != 200 || again["idempotent_replay"] != true {
		t.Fatalf("retry = %d %v, want 200 with idempotent_replay", code, again)
	}
	for _, f := range []string{"message_id", "key", "uid", "sent_folder"} {
		if again[f] != body[f] {
			t.Errorf("retry %s = %v, first answer had %v", f, again[f], body[f])
		}
	}
	if n := len(r.peer.messages()); n != 1 {
		t.Errorf("after the retry the SMTP peer has %d messages, want 1", n)
	}
	if n := len(r.sent()); n != 1 {
		t.Errorf("after the retry Sent holds %d messages, want 1", n)
	}

	// The same key for different mail is refused.
	other := sendBody("crm-1")
	other["subject"] = "Something else"
	if code, b := r.post(accountID, other); code != 422 {
		t.Errorf("reused key with another subject = %d %v, want 422", code, b)
	}
}

func TestSendAPIRefusals(t *testing.T) {
	r := newRig(t, rigOptions{})
	good := sendBody("refusals")
	tests := []struct {
		name    string
		account string
		auth    string
		body    any
		code    int
		field   string
	}{
		{"no token", accountID, "", good, 401, ""},
		{"wrong token", accountID, "Bearer nope", good, 401, ""},
		{"token of another scheme", accountID, "Basic " + apiToken, good, 401, ""},
		{"unknown account", "nobody", "Bearer " + apiToken, good, 404, ""},
		{"account cannot send", "nosmtp", "Bearer " + apiToken, good, 409, ""},
		{"missing idempotency key", accountID, "Bearer " + apiToken, without(good, "idempotency_key"), 400, "idempotency_key"},
		{"no recipients", accountID, "Bearer " + apiToken, without(good, "to", "cc", "bcc"), 400, "to"},
		{"no body", accountID, "Bearer " + apiToken, without(good, "text", "html"), 400, "text"},
		{"bad address", accountID, "Bearer " + apiToken, with(good, "cc", []string{"x@y.example", "not an address"}), 400, "cc[1]"},
		{"unknown field", accountID, "Bearer " + apiToken, with(good, "bc", []string{"x@y.example"}), 400, "bc"},
		{"wrong type", accountID, "Bearer " + apiToken, with(good, "to", "bob@customer.example"), 400, "to"},
		{"record without id", accountID, "Bearer " + apiToken, with(good, "records", []map[string]string{{"kind": "deal"}}), 400, "records[0].id"},
		{"raw and subject", accountID, "Bearer " + apiToken, with(good, "raw", []byte("From: a@b.example\r\n\r\nx")), 400, "subject"},
		{"not json", accountID, "Bearer " + apiToken, "{to:", 400, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := r.postAuth(tt.account, tt.body, tt.auth)
			if code != tt.code {
				t.Fatalf("POST = %d %v, want %d", code, body, tt.code)
			}
			if tt.field != "" && body["field"] != tt.field {
				t.Errorf("field = %v, want %q (error %v)", body["field"], tt.field, body["error"])
			}
			if tt.field != "" && !strings.HasPrefix(body["error"].(string), tt.field+":") {
				t.Errorf("error = %q, want it to start with the field name %q", body["error"], tt.field)
			}
		})
	}
	if n := len(r.peer.messages()); n != 0 {
		t.Errorf("SMTP peer received %d messages from refused requests, want 0", n)
	}
}

func TestSendWithoutTokenFileRefusesEverything(t *testing.T) {
	r := newRig(t, rigOptions{})
	orig := r.http
	defer func() { r.http = orig }()
	for _, path := range []string{"", r.dir + "/missing-token"} {
		r.http = httptest.NewServer(NewHandler(r.sender, path, testLogger(t)))
		code, body := r.post(accountID, sendBody("no-token-file"))
		r.http.Close()
		if code != 503 {
			t.Errorf("token file %q: POST = %d %v, want 503", path, code, body)
		}
	}
	if n := len(r.peer.messages()); n != 0 {
		t.Errorf("SMTP peer received %d messages, want 0", n)
	}
}

func TestSendSMTPRefusalLeavesNothingAndKeyCanBeRetried(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.peer.setDataReply(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "message refused by policy"})
	code, body := r.post(accountID, sendBody("refused-then-ok"))
	if code != 502 {
		t.Fatalf("POST = %d %v, want 502", code, body)
	}
	msg := body["error"].(string)
	for _, want := range []string{"smtp " + r.peer.addr, "550", "5.7.1 message refused by policy"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, r.peer.pass) || strings.Contains(msg, mailPass) {
		t.Errorf("error %q contains a password", msg)
	}
	if n := len(r.sent()); n != 0 {
		t.Errorf("Sent holds %d messages after a refusal, want 0", n)
	}
	if keys := r.ledgerKeys(); len(keys) != 0 {
		t.Errorf("ledger after a refusal = %v, want empty", keys)
	}

	r.peer.setDataReply(nil)
	code, body = r.post(accountID, sendBody("refused-then-ok"))
	if code != 200 || body["idempotent_replay"] != false {
		t.Fatalf("retry after the fix = %d %v, want 200 and a fresh send", code, body)
	}
	if n := len(r.peer.messages()); n != 1 {
		t.Errorf("SMTP peer accepted %d messages, want 1", n)
	}
	if n := len(r.sent()); n != 1 {
		t.Errorf("Sent holds %d messages, want 1", n)
	}
}

func TestSendRecipientRefusalSendsToNobody(t *testing.T) {
	r := newRig(t, rigOptions{smtpTLS: "starttls"})
	r.peer.setRcptReply("carol@customer.example", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	code, body := r.post(accountID, sendBody("rcpt-refused"))
	if code != 502 || !strings.Contains(body["error"].(string), "rcpt to <carol@customer.example>: 550 5.1.1 no such user") {
		t.Fatalf("POST = %d %v, want 502 naming the refused recipient", code, body)
	}
	if n := len(r.peer.messages()); n != 0 {
		t.Errorf("SMTP peer accepted %d messages, want 0", n)
	}
}

func TestSendAppendToSentFalse(t *testing.T) {
	r := newRig(t, rigOptions{smtpTLS: "none", smtpExtra: "      append_to_sent: false\n"})
	code, body := r.post(accountID, sendBody("server-files-sent"))
	if code != 200 {
		t.Fatalf("POST = %d %v, want 200", code, body)
	}
	if n := len(r.peer.messages()); n != 1 {
		t.Fatalf("SMTP peer received %d messages, want 1", n)
	}
	if n := len(r.sent()); n != 0 {
		t.Errorf("Sent holds %d messages with append_to_sent: false, want 0", n)
	}
	if body["uid"] != float64(0) {
		t.Errorf("uid = %v, want 0 (no copy filed)", body["uid"])
	}
	key := body["key"].(string)
	if k := identify(r.peer.messages()[0].data).key; k != key {
		t.Errorf("key from the submitted message = %s, API said %s", k, key)
	}
	e, ok := r.ledger(key)
	if !ok || e.Status != store.StatusDelivered || !reflect.DeepEqual(e.Records, testRecords) {
		t.Fatalf("ledger entry = %+v, %v; want delivered with the records", e, ok)
	}
	if len(e.Provenance) != 0 {
		t.Errorf("provenance = %v, want none until the worker syncs the server's copy", e.Provenance)
	}
}

func TestSendInterruptedInSubmitting(t *testing.T) {
	r := newRig(t, rigOptions{})
	// The peer takes the message but the reply never arrives: the
	// outcome is unknown, and the state stays submitting.
	r.peer.setDrop(true)
	code, body := r.post(accountID, sendBody("dropped"))
	if code != 409 || !strings.Contains(body["error"].(string), "outcome unknown") {
		t.Fatalf("POST with a dropped reply = %d %v, want 409 outcome unknown", code, body)
	}
	mid, _ := body["message_id"].(string)
	if mid == "" {
		t.Fatalf("409 answer has no message_id: %v", body)
	}
	r.peer.setDrop(false)
	code, body = r.post(accountID, sendBody("dropped"))
	if code != 409 || body["message_id"] != mid {
		t.Fatalf("retry = %d %v, want 409 for %s again", code, body, mid)
	}
	if n := len(r.peer.messages()); n != 1 {
		t.Fatalf("SMTP peer got %d messages, want 1: a retry must not resubmit", n)
	}

	// Once the copy is found in Sent (as a server that files sent mail
	// would), a retry finishes the send from it.
	copy := r.peer.messages()[0].data
	uid := r.dovecot.Append(t, mailUser, "Sent", copy, imap.FlagSeen)
	code, body = r.post(accountID, sendBody("dropped"))
	if code != 200 || body["idempotent_replay"] != true || body["uid"] != float64(uid) {
		t.Fatalf("retry with the copy in Sent = %d %v, want 200 replay at uid %d", code, body, uid)
	}
	if n := len(r.peer.messages()); n != 1 {
		t.Errorf("SMTP peer got %d messages, want 1", n)
	}
	if n := len(r.sent()); n != 1 {
		t.Errorf("Sent holds %d messages, want 1", n)
	}
	e, ok := r.ledger(body["key"].(string))
	if !ok || len(e.Provenance) != 1 || e.Provenance[0].UID != uint32(uid) {
		t.Errorf("ledger = %+v, %v; want the found copy as provenance", e, ok)
	}
	if k := r.keyFromDovecot(uid); k != body["key"] {
		t.Errorf("key of the copy = %s, API said %v", k, body["key"])
	}
}

func TestSendCrashStateSubmitting(t *testing.T) {
	r := newRig(t, rigOptions{})
	req := requestOf(t, sendBody("crashed"))
	st, copy := r.crashedState(req, stateSubmitting)
	code, body := r.post(accountID, sendBody("crashed"))
	if code != 409 || body["message_id"] != st.MessageID {
		t.Fatalf("POST after a crash in submitting = %d %v, want 409 for %s", code, body, st.MessageID)
	}
	if n := len(r.peer.messages()); n != 0 {
		t.Fatalf("SMTP peer got %d messages, want 0", n)
	}
	r.dovecot.Append(t, mailUser, "Sent", copy, imap.FlagSeen)
	code, body = r.post(accountID, sendBody("crashed"))
	if code != 200 || body["key"] != st.Key {
		t.Fatalf("POST with the copy in Sent = %d %v, want 200 with key %s", code, body, st.Key)
	}
	if n := len(r.peer.messages()); n != 0 {
		t.Errorf("SMTP peer got %d messages, want 0", n)
	}
}

func TestSendCrashStateSubmittedOnlyFiles(t *testing.T) {
	r := newRig(t, rigOptions{})
	req := requestOf(t, sendBody("crashed-after-smtp"))
	st, _ := r.crashedState(req, stateSubmitted)
	code, body := r.post(accountID, sendBody("crashed-after-smtp"))
	if code != 200 || body["idempotent_replay"] != true || body["message_id"] != st.MessageID {
		t.Fatalf("POST after a crash in submitted = %d %v, want 200 replay for %s", code, body, st.MessageID)
	}
	if n := len(r.peer.messages()); n != 0 {
		t.Errorf("SMTP peer got %d messages, want 0: submitted mail is not resent", n)
	}
	sent := r.sent()
	if len(sent) != 1 || !hasFlag(sent[imap.UID(body["uid"].(float64))], imap.FlagSeen) {
		t.Errorf("Sent = %v, want one \\Seen copy at uid %v", sent, body["uid"])
	}

	// Crashed after APPEND but before recording it: no second copy.
	req2 := requestOf(t, sendBody("crashed-after-append"))
	st2, copy2 := r.crashedState(req2, stateSubmitted)
	r.dovecot.Append(t, mailUser, "Sent", copy2, imap.FlagSeen)
	code, body = r.post(accountID, sendBody("crashed-after-append"))
	if code != 200 || body["message_id"] != st2.MessageID {
		t.Fatalf("POST = %d %v, want 200 for %s", code, body, st2.MessageID)
	}
	if n := len(r.sent()); n != 2 {
		t.Errorf("Sent holds %d messages, want 2 (one per send)", n)
	}
}

// crashedState composes req as Send would and leaves it in the state file
// as a crash at state would.
func (r *rig) crashedState(req Request, state string) (*sendState, []byte) {
	r.t.Helper()
	acct, _ := r.cfg.Account(accountID)
	out, err := compose(acct, &req, time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	id := identify(out.copy)
	st := &sendState{State: stateSubmitting, Fingerprint: req.fingerprint(), MessageID: id.messageID, Key: id.key,
		ContentHash: id.contentHash, Date: out.date, Records: req.Records, Created: time.Now(), Updated: time.Now()}
	if err := r.sender.begin(accountID, req.IdempotencyKey, st, out.copy); err != nil {
		r.t.Fatal(err)
	}
	if state == stateSubmitted {
		if err := r.sender.markSubmitted(accountID, req.IdempotencyKey, st); err != nil {
			r.t.Fatal(err)
		}
	}
	return st, out.copy
}

func TestSendConcurrentSameKeySendsOnce(t *testing.T) {
	r := newRig(t, rigOptions{smtpTLS: "none"})
	req := requestOf(t, sendBody("concurrent"))
	const n = 4
	errs := make(chan error, n)
	results := make(chan *Result, n)
	for range n {
		go func() {
			res, err := r.sender.Send(context.Background(), accountID, req)
			if err != nil {
				errs <- err
				return
			}
			results <- res
		}()
	}
	ok := 0
	for range n {
		select {
		case err := <-errs:
			if err != ErrInProgress {
				t.Errorf("concurrent Send error = %v, want ErrInProgress or success", err)
			}
		case <-results:
			ok++
		case <-time.After(2 * time.Minute):
			t.Fatal("concurrent sends did not return")
		}
	}
	if ok == 0 {
		t.Error("no concurrent Send succeeded")
	}
	if got := len(r.peer.messages()); got != 1 {
		t.Errorf("SMTP peer got %d messages, want 1", got)
	}
}

func requestOf(t *testing.T, body map[string]any) Request {
	t.Helper()
	b, _ := json.Marshal(body)
	var req Request
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	return req
}

func without(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}

func with(m map[string]any, key string, v any) map[string]any {
	out := without(m, key)
	out[key] = v
	return out
}

func TestCloseWaitsForSendsInProgress(t *testing.T) {
	r := newRig(t, rigOptions{smtpTLS: "none"})
	held, release := r.peer.holdData()
	defer release() // a failed test must not leave the peer's session blocked
	done := make(chan error, 1)
	go func() {
		_, err := r.sender.Send(context.Background(), accountID, requestOf(t, sendBody("in-flight")))
		done <- err
	}()
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the send never reached DATA")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := r.sender.Close(ctx)
	cancel()
	if err == nil {
		t.Fatal("Close() returned while a send was in progress")
	}
	if _, err := r.sender.Send(context.Background(), accountID, requestOf(t, sendBody("after-close"))); err != ErrClosed {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the send in progress failed: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.sender.Close(ctx); err != nil {
		t.Fatalf("Close() after the send finished = %v", err)
	}
	if n := len(r.peer.messages()); n != 1 {
		t.Errorf("SMTP peer got %d messages, want 1", n)
	}
}

func TestSendWrongSMTPPasswordNamesServerNotSecret(t *testing.T) {
	r := newRig(t, rigOptions{})
	pwFile := r.dir + "/smtp.pw"
	const wrong = "Wr0ng-Pa55-visible?"
	if err := os.WriteFile(pwFile, []byte(wrong+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := r.post(accountID, sendBody("bad-password"))
	msg, _ := body["error"].(string)
	if code != 502 || !strings.Contains(msg, "smtp "+r.peer.addr+": auth: 535") {
		t.Fatalf("POST = %d %v, want 502 naming the server's auth refusal", code, body)
	}
	if strings.Contains(msg, wrong) || strings.Contains(msg, r.peer.pass) {
		t.Errorf("error %q contains a password", msg)
	}
	if err := os.WriteFile(pwFile, []byte(r.peer.pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := r.post(accountID, sendBody("bad-password")); code != 200 {
		t.Fatalf("retry with the right password = %d %v, want 200", code, body)
	}
}
