package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/mtatest"
)

// sendRig is the whole sending path on real servers: the mailsync binary
// whose account alice submits through a private Postfix, which delivers
// into Dovecot over LMTP, where alice (the account) and bob (the
// recipient) have mailboxes.
type sendRig struct {
	t       *testing.T
	bin     string
	dir     string
	cfgPath string
	admin   string // http://127.0.0.1:port
	token   string
	dc      *dovecottest.Server
	mta     *mtatest.Server
	daemon  *exec.Cmd
	exited  chan error
	logPath string
	runs    int
	// front is the SMTP front's address; empty unless asked for.
	front string
}

const rigToken = "t0ken-for-the-send-api"

// frontSecret is alice's credential on the SMTP front.
const frontSecret = "front-s3cret"

// newSendRig builds the rig; with front, the daemon also serves the SMTP
// front (STARTTLS with the Dovecot instance's certificate for 127.0.0.1,
// at most 3 recipients, 64 KiB, 5 messages a minute).
func newSendRig(t *testing.T, front bool) *sendRig {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and runs Dovecot and Postfix; skipped in -short mode")
	}
	r := &sendRig{t: t, bin: buildBinary(t), dir: t.TempDir(), token: rigToken}
	r.dc = dovecottest.Start(t, dovecottest.WithLMTP(), dovecottest.WithTLS(),
		dovecottest.WithUsers(map[string]string{dovecottest.DefaultUser: dovecottest.DefaultPassword, "bob": "bob-pass"}))
	r.mta = mtatest.Start(t, mtatest.Options{LMTP: r.dc.LMTPAddr()})
	for name, v := range map[string]string{"imap.password": dovecottest.DefaultPassword, "token": rigToken + "\n",
		"front.credentials": "# account-id:secret\nalice:" + frontSecret + "\n"} {
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r.admin = "http://" + adminAddr
	extra := ""
	if front {
		r.front = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		extra = fmt.Sprintf(`smtp_front:
  listen: %q
  tls: starttls
  cert_file: %s
  key_file: %s
  credentials_file: front.credentials
  max_recipients: 3
  max_message_bytes: 65536
  rate_per_account: 5
`, r.front, filepath.Join(r.dc.Dir(), "server.pem"), filepath.Join(r.dc.Dir(), "server.key"))
	}
	cfg := fmt.Sprintf(`state: state.db
sink: {type: jsonl, jsonl: {path: messages.jsonl}}
log: {level: info}
admin: {listen: %q, token_file: token}
sync: {retry_min: 100ms, retry_max: 1s, batch_size: 32, shutdown_grace: 5s, command_timeout: 20s}
matcher:
  own_domains: [acme.example]
  keep: {internal: true, bulk: true, auto_replies: true, bounces: true}
accounts:
  - id: alice
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password_file: imap.password
    start: all
    folders: [inbox, sent]
    matcher: {capture: all}
    smtp: {host: 127.0.0.1, port: %d, tls: none, from: "Alice <alice@acme.example>"}
%s`, adminAddr, r.dc.Port(), dovecottest.DefaultUser, r.mta.Port(), extra)
	r.cfgPath = filepath.Join(r.dir, "mailsync.yaml")
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if r.daemon != nil {
			_ = r.daemon.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(r.logPath)
			t.Logf("daemon log (last run):\n%s", tail(string(b), 60))
		}
	})
	return r
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs the daemon and waits until /readyz answers 200.
func (r *sendRig) start() {
	r.t.Helper()
	r.runs++
	r.logPath = filepath.Join(r.dir, fmt.Sprintf("run-%d.log", r.runs))
	logf, err := os.Create(r.logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.bin, "run", "--config", r.cfgPath)
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.daemon, r.exited = cmd, make(chan error, 1)
	go func() { r.exited <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(r.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-r.exited:
			r.daemon = nil
			b, _ := os.ReadFile(r.logPath)
			r.t.Fatalf("daemon exited at start: %v\n%s", err, b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	r.t.Fatalf("daemon not ready within 30s")
}

// stop ends the daemon with SIGTERM (graceful) or SIGKILL.
func (r *sendRig) stop(sig syscall.Signal) {
	r.t.Helper()
	_ = r.daemon.Process.Signal(sig)
	select {
	case err := <-r.exited:
		if sig == syscall.SIGTERM && err != nil {
			r.t.Errorf("daemon exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Fatalf("daemon still running 30s after %v", sig)
	}
	r.daemon = nil
}

// post sends body to the send API as a CRM would, with the bearer token.
func (r *sendRig) post(body string) (int, map[string]any) {
	r.t.Helper()
	return r.postAuth(body, "Bearer "+r.token)
}

func (r *sendRig) postAuth(body, auth string) (int, map[string]any) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.admin+"/v1/accounts/alice/send", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("POST send: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		r.t.Fatalf("POST send: %d, not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// messageIDs returns the Message-IDs in user's folder, and each one's flags.
func messageIDs(t *testing.T, dc *dovecottest.Server, user, folder string) ([]string, [][]imap.Flag) {
	t.Helper()
	c := dc.Dial(t, user)
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("examine %s/%s: %v", user, folder, err)
	}
	if sel.NumMessages == 0 {
		return nil, nil
	}
	var all imap.UIDSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{Envelope: true, Flags: true}).Collect()
	if err != nil {
		t.Fatalf("fetch %s/%s: %v", user, folder, err)
	}
	var ids []string
	var flags [][]imap.Flag
	for _, m := range msgs {
		ids = append(ids, m.Envelope.MessageID)
		flags = append(flags, m.Flags)
	}
	return ids, flags
}

// waitCount waits until user's folder holds n messages and returns their
// Message-IDs and flags.
func waitCount(t *testing.T, dc *dovecottest.Server, user, folder string, n int, within time.Duration) ([]string, [][]imap.Flag) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ids, flags := messageIDs(t, dc, user, folder)
		if len(ids) == n {
			return ids, flags
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s holds %d messages (%q) after %v, want %d", user, folder, len(ids), ids, within, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertOnce checks the end state for one sent message: bob has it once,
// alice's Sent has one \Seen copy, and the state file, once the daemon is
// stopped, records it delivered with that copy's provenance while the sink
// got no activity of its own for it.
func (r *sendRig) assertOnce(msgID string) {
	r.t.Helper()
	t := r.t
	ids, _ := waitCount(t, r.dc, "bob", "INBOX", 1, 20*time.Second)
	if ids[0] != msgID {
		t.Fatalf("bob's INBOX holds <%s>, want <%s>", ids[0], msgID)
	}
	ids, flags := waitCount(t, r.dc, dovecottest.DefaultUser, "Sent", 1, 20*time.Second)
	if ids[0] != msgID || !slices.Contains(flags[0], imap.FlagSeen) {
		t.Fatalf("alice's Sent holds <%s> with %v, want <%s> \\Seen", ids[0], flags[0], msgID)
	}
	// A second delivery, by a resubmission or a Postfix retry, would come
	// within a queue run (1 s).
	time.Sleep(1500 * time.Millisecond)
	if ids, _ := messageIDs(t, r.dc, "bob", "INBOX"); len(ids) != 1 {
		t.Fatalf("bob's INBOX holds %q, want one message", ids)
	}
	if n := strings.Count(r.mta.Log(), "status=sent"); n != 1 {
		t.Errorf("postfix delivered %d times, want 1\n%s", n, r.mta.LogTail(30))
	}
}

// assertLedger runs with the daemon stopped: the message is in the ledger
// as delivered (sent for the CRM) with the Sent copy as provenance, the
// Sent folder's cursor has passed it, and the sink has no line for it.
func (r *sendRig) assertLedger(key string) {
	r.t.Helper()
	t := r.t
	st, err := store.Open(filepath.Join(r.dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var e store.LedgerEntry
	var ok bool
	var sent store.FolderState
	_ = st.View(func(tx *store.Tx) error {
		e, ok, err = tx.Ledger(key)
		if err == nil {
			sent, err = tx.Folder("alice", "Sent")
		}
		return err
	})
	if err != nil || !ok {
		t.Fatalf("ledger entry %s: ok=%v err=%v", key, ok, err)
	}
	if e.Status != store.StatusDelivered || len(e.Provenance) != 1 || e.Provenance[0].Folder != "Sent" {
		t.Errorf("ledger entry = %+v, want delivered with one Sent provenance", e)
	}
	if sent.LastUID < 1 {
		t.Errorf("the Sent folder was never synced (last uid %d): the test proves nothing about double logging", sent.LastUID)
	}
	keys := map[string]int{}
	if _, err := os.Stat(filepath.Join(r.dir, "messages.jsonl")); err == nil {
		readKeys(t, filepath.Join(r.dir, "messages.jsonl"), keys)
	}
	for k, n := range keys {
		if strings.HasPrefix(k, key) {
			t.Errorf("sink holds %d line(s) with key %s for mail sent from the CRM, want none", n, k)
		}
	}
	if err := st.Check(); err != nil {
		t.Errorf("state file inconsistent: %v", err)
	}
}

const sendBody = `{"to":["Bob <bob@acme.example>"],"subject":"Quote","text":"Hello Bob","records":[{"kind":"deal","id":"D-42"}],"idempotency_key":%q}`

// TestSendAPIThroughPostfix drives the send API of the running binary the
// way a CRM (or an admin with curl) does: the mail reaches bob's mailbox
// through Postfix, alice's Sent has one \Seen copy, the sink gets no second
// activity when the Sent folder is synced, and a retried POST sends nothing.
func TestSendAPIThroughPostfix(t *testing.T) {
	r := newSendRig(t, false)
	r.start()

	if code, m := r.postAuth(fmt.Sprintf(sendBody, "k1"), ""); code != 401 {
		t.Fatalf("POST without a token = %d %v, want 401", code, m)
	}
	if code, m := r.postAuth(fmt.Sprintf(sendBody, "k1"), "Bearer wrong"); code != 401 {
		t.Fatalf("POST with a wrong token = %d %v, want 401", code, m)
	}
	code, res := r.post(fmt.Sprintf(sendBody, "k1"))
	if code != 200 {
		t.Fatalf("POST = %d %v, want 200", code, res)
	}
	msgID, _ := res["message_id"].(string)
	key, _ := res["key"].(string)
	if res["sent_folder"] != "Sent" || res["uid"] == float64(0) || msgID == "" || res["idempotent_replay"] != false {
		t.Fatalf("result = %v", res)
	}
	r.assertOnce(msgID)

	code, again := r.post(fmt.Sprintf(sendBody, "k1"))
	if code != 200 || again["idempotent_replay"] != true || again["message_id"] != msgID {
		t.Fatalf("retried POST = %d %v, want 200, the same message, idempotent_replay", code, again)
	}
	r.assertOnce(msgID)

	// `mailsync send` talks to the same daemon.
	out, err := exec.Command(r.bin, "send", "--config", r.cfgPath, "--account", "alice", "--to", "bob@acme.example",
		"--subject", "From the CLI", "--text", "hi", "--idempotency-key", "cli-1").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("copy in \"Sent\"")) {
		t.Fatalf("mailsync send: %v\n%s", err, out)
	}
	waitCount(t, r.dc, "bob", "INBOX", 2, 20*time.Second)
	time.Sleep(1500 * time.Millisecond) // let the Sent folder sync
	r.stop(syscall.SIGTERM)
	r.assertLedger(key)
}

// TestSendAPIMTADown: with Postfix down the request is refused clearly
// (502, nothing sent, the key free to retry), and the retry once Postfix is
// back sends the mail exactly once.
func TestSendAPIMTADown(t *testing.T) {
	r := newSendRig(t, false)
	r.start()
	r.mta.Stop(t)
	code, m := r.post(fmt.Sprintf(sendBody, "down-1"))
	if errText, _ := m["error"].(string); code != 502 || !strings.Contains(errText, "connect") || m["sent"] == true {
		t.Fatalf("POST with Postfix down = %d %v, want 502 naming the connect failure, not sent", code, m)
	}
	if ids, _ := messageIDs(t, r.dc, dovecottest.DefaultUser, "Sent"); len(ids) != 0 {
		t.Fatalf("Sent holds %q after a refused send", ids)
	}
	r.mta.Restart(t)
	code, res := r.post(fmt.Sprintf(sendBody, "down-1"))
	if code != 200 {
		t.Fatalf("retried POST with Postfix back = %d %v", code, res)
	}
	r.assertOnce(res["message_id"].(string))
	r.stop(syscall.SIGTERM)
	r.assertLedger(res["key"].(string))
}

// TestSendAPIKill9BetweenSubmitAndAppend: the daemon is killed after
// Postfix accepted the mail and before the Sent copy was appended (Dovecot
// is frozen with SIGSTOP, so the APPEND cannot happen). After the restart
// the daemon finishes the send by itself: one Sent copy, one delivery, and
// the client's retry is answered without sending.
func TestSendAPIKill9BetweenSubmitAndAppend(t *testing.T) {
	r := newSendRig(t, false)
	r.start()
	pid := r.dc.Pid()
	frozen := false
	thaw := func() {
		if frozen {
			_ = syscall.Kill(-pid, syscall.SIGCONT)
			frozen = false
		}
	}
	defer thaw()
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen = true

	type answer struct {
		code int
		m    map[string]any
	}
	answered := make(chan answer, 1)
	go func() {
		// The POST dies with the daemon; its answer does not matter.
		req, _ := http.NewRequest(http.MethodPost, r.admin+"/v1/accounts/alice/send", strings.NewReader(fmt.Sprintf(sendBody, "crash-1")))
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{}
			return
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		answered <- answer{resp.StatusCode, m}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(r.logPath)
		if bytes.Contains(b, []byte("message submitted")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no submission within 20s\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.stop(syscall.SIGKILL)
	if a := <-answered; a.code != 0 {
		t.Fatalf("POST answered %d %v before the kill; the test did not crash between submission and APPEND", a.code, a.m)
	}
	thaw()
	if ids, _ := messageIDs(t, r.dc, dovecottest.DefaultUser, "Sent"); len(ids) != 0 {
		t.Fatalf("Sent holds %q before the restart: the kill came after the APPEND", ids)
	}

	r.start()
	ids, _ := waitCount(t, r.dc, dovecottest.DefaultUser, "Sent", 1, 20*time.Second)
	r.assertOnce(ids[0])
	code, res := r.post(fmt.Sprintf(sendBody, "crash-1"))
	if code != 200 || res["idempotent_replay"] != true || res["message_id"] != ids[0] {
		t.Fatalf("client retry after the restart = %d %v, want the first result replayed", code, res)
	}
	r.assertOnce(ids[0])
	b, _ := os.ReadFile(r.logPath)
	if !bytes.Contains(b, []byte("unfinished send finished")) {
		t.Errorf("the daemon did not say it finished the interrupted send\n%s", tail(string(b), 30))
	}
	time.Sleep(1500 * time.Millisecond)
	r.stop(syscall.SIGTERM)
	r.assertLedger(res["key"].(string))
}

// TestSendAPISentCopyFinishedByTheDaemon: Dovecot is down when the mail has
// gone out, so the Sent copy fails (502, "sent": true). Once Dovecot is
// back the daemon files the copy itself, without the client retrying: one
// Sent copy, one delivery, and a later retry is a replay.
func TestSendAPISentCopyFinishedByTheDaemon(t *testing.T) {
	r := newSendRig(t, false)
	r.start()
	r.dc.Stop(t)
	code, m := r.post(fmt.Sprintf(sendBody, "copy-1"))
	msgID, _ := m["message_id"].(string)
	if code != 502 || m["sent"] != true || msgID == "" {
		t.Fatalf("POST with Dovecot down = %d %v, want 502 with sent: true", code, m)
	}
	r.dc.Restart(t)
	r.assertOnce(msgID)
	code, res := r.post(fmt.Sprintf(sendBody, "copy-1"))
	if code != 200 || res["idempotent_replay"] != true || res["message_id"] != msgID {
		t.Fatalf("retry after the daemon finished = %d %v, want a replay", code, res)
	}
	time.Sleep(1500 * time.Millisecond)
	r.stop(syscall.SIGTERM)
	r.assertLedger(res["key"].(string))
}
