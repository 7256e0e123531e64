package smtpfront

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/outbound"
	"github.com/mailsync/mailsync/sync/sink"
)

// slowSender answers after release is closed, and says when it started.
type slowSender struct {
	started chan struct{}
	release chan struct{}
}

func (s *slowSender) SendRaw(ctx context.Context, _ string, m outbound.RawMail) (*outbound.Result, error) {
	close(s.started)
	select {
	case <-s.release:
		return &outbound.Result{MessageID: outbound.RawMessageID(m.Data), SentFolder: "Sent"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stop lets a message being sent finish and does not wait for an idle
// connection.
func TestStopDrainsSendsNotIdleConnections(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	if err := os.WriteFile(creds, []byte("sales:pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	snd := &slowSender{started: make(chan struct{}), release: make(chan struct{})}
	srv, err := Listen(config.SMTPFront{Listen: "127.0.0.1:0", TLS: "none", CredentialsFile: creds,
		MaxMessageBytes: 1 << 20, MaxRecipients: 10, RatePerAccount: 10}, Deps{Sender: snd})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := smtp.Dial(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.Hello("idle.example"); err != nil {
		t.Fatal(err)
	}

	c, err := smtp.Dial(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "sales", "pw")); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		msg := []byte("From: a@b.example\r\nTo: c@d.example\r\nMessage-ID: <m1@b.example>\r\n\r\nhi\r\n")
		sent <- submitPlain(c, msg)
	}()
	<-snd.started
	stopped := make(chan struct{})
	go func() { srv.Stop(5 * time.Second); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a message was being sent")
	case <-time.After(200 * time.Millisecond):
	}
	close(snd.release)
	if err := <-sent; err != nil {
		t.Fatalf("the message being sent at Stop failed: %v", err)
	}
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("Stop waits for an idle connection")
	}
}

func submitPlain(c *smtp.Client, msg []byte) error {
	if err := c.Mail("a@b.example", nil); err != nil {
		return err
	}
	if err := c.Rcpt("c@d.example", nil); err != nil {
		return err
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

type recordingSender struct{ got chan outbound.RawMail }

func (s recordingSender) SendRaw(_ context.Context, _ string, m outbound.RawMail) (*outbound.Result, error) {
	s.got <- m
	return &outbound.Result{MessageID: outbound.RawMessageID(m.Data)}, nil
}

type fakeLinker struct{ asked chan string }

func (l fakeLinker) LinkSent(_ context.Context, account, messageID string) ([]sink.Record, error) {
	l.asked <- account + " " + messageID
	return []sink.Record{{Kind: sink.KindDeal, ID: "D-42"}}, nil
}

// The sink's SentLinker names the records of each message, by Message-ID,
// and they reach the Sender with the envelope recipients.
func TestLinkerRecordsReachTheSender(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("sales:pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	snd, lk := recordingSender{got: make(chan outbound.RawMail, 1)}, fakeLinker{asked: make(chan string, 1)}
	srv, err := Listen(config.SMTPFront{Listen: "127.0.0.1:0", TLS: "none", CredentialsFile: creds,
		MaxMessageBytes: 1 << 20, MaxRecipients: 10, RatePerAccount: 10}, Deps{Sender: snd, Linker: lk})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(time.Second)
	c, err := smtp.Dial(srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "sales", "pw")); err != nil {
		t.Fatal(err)
	}
	if err := submitPlain(c, []byte("From: a@b.example\r\nMessage-ID: <m2@b.example>\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := <-lk.asked; got != "sales m2@b.example" {
		t.Errorf("LinkSent asked for %q", got)
	}
	m := <-snd.got
	if len(m.Records) != 1 || m.Records[0].ID != "D-42" || len(m.Rcpts) != 1 || m.Rcpts[0] != "c@d.example" {
		t.Errorf("SendRaw got records %v, rcpts %v", m.Records, m.Rcpts)
	}
}
