package imapconn_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailsync/mailsync/sync/dovecottest"
	"github.com/mailsync/mailsync/sync/imapconn"
)

// TestStartTLSRefusedByRealServer: in starttls mode against a Dovecot that
// does not offer STARTTLS, Dial refuses before any credential is sent (the
// server's log shows no authentication attempt).
func TestStartTLSRefusedByRealServer(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithoutStartTLS())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := imapconn.Dial(ctx, imapconn.Options{
		Host: srv.Host(), Port: srv.Port(), TLS: "starttls", Username: dovecottest.DefaultUser,
		Auth: imapconn.Password(func() (string, error) { return dovecottest.DefaultPassword, nil }),
	})
	if !errors.Is(err, imapconn.ErrNoStartTLS) {
		t.Fatalf("Dial() error = %v, want ErrNoStartTLS", err)
	}
	time.Sleep(200 * time.Millisecond) // let Dovecot write its disconnect line
	log := srv.LogTail(1000)
	if strings.Contains(log, "user=<alice>") || strings.Contains(log, "auth failed") || strings.Contains(log, "Login:") {
		t.Fatalf("the server saw an authentication attempt:\n%s", log)
	}
}

// TestStartTLSAndImplicitTLSWithRealServer: both TLS modes verify the
// server against the configured CA and log in.
func TestStartTLSAndImplicitTLSWithRealServer(t *testing.T) {
	srv := dovecottest.Start(t, dovecottest.WithTLS())
	for _, tc := range []struct {
		mode string
		port int
	}{{"starttls", srv.Port()}, {"implicit", srv.TLSPort()}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := imapconn.Dial(ctx, imapconn.Options{
			Host: srv.Host(), Port: tc.port, TLS: tc.mode, CAFile: srv.CAFile, Username: dovecottest.DefaultUser,
			Auth: imapconn.Password(func() (string, error) { return dovecottest.DefaultPassword, nil }),
		})
		cancel()
		if err != nil {
			t.Fatalf("%s: Dial() error = %v", tc.mode, err)
		}
		conn.Close()
		// Without the CA the certificate is refused.
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		_, err = imapconn.Dial(ctx, imapconn.Options{
			Host: srv.Host(), Port: tc.port, TLS: tc.mode, Username: dovecottest.DefaultUser,
			Auth: imapconn.Password(func() (string, error) { return dovecottest.DefaultPassword, nil }),
		})
		cancel()
		if !imapconn.IsTLSError(err) || !strings.Contains(err.Error(), "unknown authority") {
			t.Fatalf("%s without CA: error = %v, want an unknown-authority TLS error", tc.mode, err)
		}
	}
}
