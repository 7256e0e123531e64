package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/dovecottest"
)

// frontClient opens a session on the rig's SMTP front, upgraded with
// STARTTLS (verifying the certificate) and, with secret, logged in as alice.
func (r *sendRig) frontClient(secret string) *smtp.Client {
	r.t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(r.dc.CACertPEM)
	c, err := smtp.DialStartTLS(r.front, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		r.t.Fatalf("dial the smtp front with STARTTLS: %v", err)
	}
	r.t.Cleanup(func() { c.Close() })
	if secret != "" {
		if err := c.Auth(sasl.NewPlainClient("", "alice", secret)); err != nil {
			r.t.Fatalf("AUTH PLAIN: %v", err)
		}
	}
	return c
}

// frontMessage is a message as a CRM builds it; variant changes the Date
// and the body, as a CRM's rebuild of the same mail would.
func frontMessage(msgID string, variant int) []byte {
	return fmt.Appendf(nil, "From: Alice <alice@acme.example>\r\nTo: Bob <bob@acme.example>\r\nSubject: Your quote\r\n"+
		"Date: Thu, 3 Dec 2026 10:%02d:00 +0000\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+
		"Hello Bob (attempt %d)\r\n", variant, msgID, variant)
}

// submit runs MAIL, RCPT and DATA and returns the SMTP error, if any.
func submit(c *smtp.Client, rcpts []string, msg []byte) error {
	if err := c.Mail("bounce+42@crm.acme.example", nil); err != nil {
		return err
	}
	for _, rc := range rcpts {
		if err := c.Rcpt(rc, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// sentKey is the ledger key of the copy in alice's Sent with msgID,
// derived from its header as the folder worker derives it.
func (r *sendRig) sentKey(msgID string) string {
	r.t.Helper()
	c := r.dc.Dial(r.t, dovecottest.DefaultUser)
	if _, err := c.Select("Sent", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		r.t.Fatal(err)
	}
	var all imap.UIDSet
	all.AddRange(1, 0)
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	msgs, err := c.Fetch(all, &imap.FetchOptions{Envelope: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Envelope.MessageID == msgID {
			id, _ := store.Identify(m.FindBodySection(section))
			return id.Key
		}
	}
	r.t.Fatalf("no copy of <%s> in Sent", msgID)
	return ""
}

// TestSMTPFrontThroughPostfix is a CRM's SMTP session against the running
// binary's front: STARTTLS, AUTH PLAIN as the account, a message that
// reaches bob through Postfix with one \Seen copy in alice's Sent and no
// second activity in the sink; a resubmission of the same Message-ID (as a
// CRM rebuilds it) sends nothing; the limits answer with their codes; with
// Postfix down the CRM gets a 4xx and its retry sends once.
func TestSMTPFrontThroughPostfix(t *testing.T) {
	r := newSendRig(t, true)
	r.start()

	// In clear the front offers no AUTH (the credential would cross in
	// clear) and takes no mail.
	plain, err := smtp.Dial(r.front)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := plain.Extension("AUTH"); ok {
		t.Fatalf("the front offers AUTH before STARTTLS")
	}
	if err := plain.Auth(sasl.NewPlainClient("", "alice", frontSecret)); err == nil {
		t.Fatalf("AUTH before STARTTLS succeeded")
	}
	plain.Close()

	// Wrong credential, then no login at all.
	c := r.frontClient("")
	if err := c.Auth(sasl.NewPlainClient("", "alice", "wrong")); smtpCode(err) != 535 {
		t.Fatalf("AUTH with a wrong secret = %v, want 535", err)
	}
	if err := c.Mail("x@crm.example", nil); smtpCode(err) != 530 {
		t.Fatalf("MAIL without AUTH = %v, want 530", err)
	}
	c.Close()

	c = r.frontClient(frontSecret)
	if err := submit(c, []string{"bob@acme.example"}, frontMessage("front-1@acme.example", 1)); err != nil {
		t.Fatalf("submit through the front: %v", err)
	}
	r.assertOnce("front-1@acme.example")

	// The CRM did not get the reply and resubmits the mail, rebuilt.
	if err := submit(c, []string{"bob@acme.example"}, frontMessage("front-1@acme.example", 2)); err != nil {
		t.Fatalf("resubmit: %v", err)
	}
	r.assertOnce("front-1@acme.example")
	c.Quit()

	// Limits: recipients (3), size (64 KiB).
	c = r.frontClient(frontSecret)
	err = submit(c, []string{"bob@acme.example", "b2@acme.example", "b3@acme.example", "b4@acme.example"}, frontMessage("front-x@acme.example", 1))
	if smtpCode(err) != 452 {
		t.Fatalf("4 recipients = %v, want 452", err)
	}
	c.Reset()
	big := append(frontMessage("front-big@acme.example", 1), strings.Repeat("x", 70000)+"\r\n"...)
	// A client declares the size (RFC 1870) when the server offers SIZE, as
	// Python's smtplib (Odoo) does; the front refuses at MAIL.
	if err := c.Mail("bounce@crm.acme.example", &smtp.MailOptions{Size: int64(len(big))}); smtpCode(err) != 552 {
		t.Fatalf("MAIL SIZE=%d = %v, want 552", len(big), err)
	}
	c.Close()

	// Postfix down: a clear temporary refusal, nothing sent; the CRM's
	// retry once it is back sends the mail once.
	r.mta.Stop(t)
	c = r.frontClient(frontSecret)
	err = submit(c, []string{"bob@acme.example"}, frontMessage("front-2@acme.example", 1))
	if code := smtpCode(err); code < 400 || code > 499 || !strings.Contains(err.Error(), "nothing was sent") {
		t.Fatalf("submit with Postfix down = %v, want 4xx saying nothing was sent", err)
	}
	c.Close()
	r.mta.Restart(t)
	c = r.frontClient(frontSecret)
	if err := submit(c, []string{"bob@acme.example"}, frontMessage("front-2@acme.example", 1)); err != nil {
		t.Fatalf("retry with Postfix back: %v", err)
	}
	waitCount(t, r.dc, "bob", "INBOX", 2, 20*time.Second)
	waitCount(t, r.dc, dovecottest.DefaultUser, "Sent", 2, 20*time.Second)

	// Five MAIL commands taken so far this minute (the one refused for its
	// size never reached the account): the sixth is over the rate.
	if err := c.Mail("x@crm.example", nil); smtpCode(err) != 450 {
		t.Fatalf("6th MAIL within a minute = %v, want 450", err)
	}
	c.Close()

	time.Sleep(1500 * time.Millisecond) // let the Sent folder sync
	if n := strings.Count(r.mta.Log(), "status=sent"); n != 2 {
		t.Errorf("postfix delivered %d messages, want 2", n)
	}
	key := r.sentKey("front-1@acme.example")
	r.stop(syscall.SIGTERM)
	r.assertLedger(key)
	b, _ := os.ReadFile(r.logPath)
	if strings.Contains(string(b), frontSecret) {
		t.Errorf("the daemon log holds the front credential")
	}
}

// TestCheckSMTPFront: `mailsync check` loads the front's certificate and
// credentials and names accounts the file lists that cannot send.
func TestCheckSMTPFront(t *testing.T) {
	cfg := writeCheckConfig(t, checkAcct{port: freePort(t), tls: "none", password: "x", folders: "[inbox]"}, "")
	dir := filepath.Dir(cfg)
	if err := os.WriteFile(filepath.Join(dir, "creds"), []byte("alice:s3cr-one\nghost:s3cr-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "smtp_front: {listen: 127.0.0.1:2587, cert_file: missing.pem, key_file: missing.key, credentials_file: creds}\n")
	f.Close()
	out, _, code := runCLI(t, context.Background(), "check", "-c", cfg)
	for _, want := range []string{
		"FAIL  smtp_front: smtp_front.cert_file, key_file: open " + filepath.Join(dir, "missing.pem"),
		"FAIL  smtp_front: smtp_front.credentials_file names account alice, which has no smtp.host",
		"FAIL  smtp_front: smtp_front.credentials_file names account ghost, which is not configured",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || strings.Contains(out, "s3cr-") {
		t.Errorf("exit %d, or a secret shown:\n%s", code, out)
	}
}
