package outbound

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"go.etcd.io/bbolt"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/sink"
)

const (
	mailUser  = "alice@acme.example"
	mailPass  = "alice-pass"
	apiToken  = "test-token-0123456789"
	accountID = "sales"
)

// rig is a Sender against a real Dovecot and a real SMTP peer, served over
// HTTP as the daemon serves it.
type rig struct {
	t         testing.TB
	dir       string
	dovecot   *dovecottest.Server
	peer      *smtpPeer
	cfg       *config.Config
	statePath string
	store     *store.Store
	sender    *Sender
	http      *httptest.Server
}

type rigOptions struct {
	smtpTLS string // implicit (default), starttls, none
	// smtpExtra is added to the account's smtp section (indented YAML).
	smtpExtra string
	// acctExtra is added to account sales (indented YAML), topExtra to
	// the top level.
	acctExtra, topExtra string
	// dovecot reuses a running server instead of starting one.
	dovecot *dovecottest.Server
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	if o.smtpTLS == "" {
		o.smtpTLS = "implicit"
	}
	r := &rig{t: t, dir: t.TempDir()}
	r.dovecot = o.dovecot
	if r.dovecot == nil {
		r.dovecot = dovecottest.Start(t, dovecottest.WithUsers(map[string]string{mailUser: mailPass}))
	}
	r.peer = startSMTPPeer(t, o.smtpTLS)
	write := func(name, content string) string {
		p := filepath.Join(r.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	imapPW := write("imap.pw", mailPass+"\n")
	smtpPW := write("smtp.pw", r.peer.pass+"\n")
	write("token", apiToken+"\n")
	r.statePath = filepath.Join(r.dir, "state.db")
	yaml := fmt.Sprintf(`state: %s
sink: {type: jsonl, jsonl: {path: %s}}
sync: {command_timeout: 20s, retry_min: 50ms, retry_max: 1s, shutdown_grace: 5s}
%saccounts:
  - id: %s
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password_file: %s
%s    smtp:
      host: 127.0.0.1
      port: %d
      tls: %s
      ca_file: %s
      username: %s
      password_file: %s
%s  - id: nosmtp
    host: 127.0.0.1
    port: %d
    tls: none
    username: %s
    password_file: %s
`, r.statePath, filepath.Join(r.dir, "m.jsonl"), o.topExtra, accountID, r.dovecot.Port(), mailUser, imapPW, o.acctExtra,
		r.peer.port, o.smtpTLS, r.peer.caFile, r.peer.user, smtpPW, o.smtpExtra,
		r.dovecot.Port(), mailUser, imapPW)
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	r.cfg = cfg
	r.openStore()
	t.Cleanup(func() {
		if r.http != nil {
			r.http.Close()
		}
		if err := r.store.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		r.store.Close()
	})
	r.sender, err = New(cfg, Deps{Store: r.store, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r.http = httptest.NewServer(NewHandler(r.sender, filepath.Join(r.dir, "token"), testLogger(t)))
	return r
}

func (r *rig) openStore() { r.openStoreWith(store.Options{NoSync: true, Logger: testLogger(r.t)}) }

// openStoreSynced opens the state file with fsync on, as the daemon does.
func (r *rig) openStoreSynced() { r.openStoreWith(store.Options{Logger: testLogger(r.t)}) }

func (r *rig) openStoreWith(o store.Options) {
	st, err := store.Open(r.statePath, o)
	if err != nil {
		r.t.Fatalf("open store: %v", err)
	}
	r.store = st
	if r.sender != nil {
		r.sender.store = st
	}
}

// ledgerKeys lists every key in the ledger. The store has no iterator for
// it, so the file is closed, read with bbolt, and reopened.
func (r *rig) ledgerKeys() []string {
	r.t.Helper()
	if err := r.store.Close(); err != nil {
		r.t.Fatal(err)
	}
	db, err := bbolt.Open(r.statePath, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	var keys []string
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("ledger"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	})
	db.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	r.openStore()
	return keys
}

func (r *rig) ledger(key string) (store.LedgerEntry, bool) {
	r.t.Helper()
	var e store.LedgerEntry
	var ok bool
	err := r.store.View(func(tx *store.Tx) error {
		var err error
		e, ok, err = tx.Ledger(key)
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return e, ok
}

// post sends body to the send API with the token, and decodes the answer.
func (r *rig) post(account string, body any) (int, map[string]any) {
	r.t.Helper()
	return r.postAuth(account, body, "Bearer "+apiToken)
}

func (r *rig) postAuth(account string, body any, auth string) (int, map[string]any) {
	r.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(body); err != nil {
			r.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, r.http.URL+"/v1/accounts/"+account+"/send", bytes.NewReader(raw))
	if err != nil {
		r.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		r.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		r.t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

// sent returns UID → flags of the Sent folder.
func (r *rig) sent() map[imap.UID][]imap.Flag {
	r.t.Helper()
	return r.dovecot.Flags(r.t, mailUser, "Sent")
}

// keyFromDovecot fetches the header of the Sent copy with uid, as the folder
// worker does (BODY.PEEK[HEADER]), and derives its key as the worker does.
func (r *rig) keyFromDovecot(uid imap.UID) string {
	r.t.Helper()
	c := r.dovecot.Dial(r.t, mailUser)
	if _, err := c.Select("Sent", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		r.t.Fatal(err)
	}
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 1 {
		r.t.Fatalf("fetch header of uid %d: %d messages, %v", uid, len(msgs), err)
	}
	header := msgs[0].FindBodySection(section)
	msg, _ := matcher.ParseHeader(header)
	from := ""
	if len(msg.From) > 0 {
		from = msg.From[0].Email
	}
	return sink.KeyFor(msg.MessageID, from, msg.Date, header)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends log lines to t.Log, so they show only for failed tests.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool { return slices.Contains(flags, f) }

// headerValue returns the first value of a header field in msg.
func headerValue(msg []byte, name string) string {
	for _, line := range strings.Split(string(headerBlock(msg)), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
