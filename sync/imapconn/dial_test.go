package imapconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func password(p string) Authenticator {
	return Password(func() (string, error) { return p, nil })
}

// exercise appends a message, selects INBOX and fetches the message back.
func exercise(t *testing.T, c *Conn) {
	t.Helper()
	ctx := context.Background()
	msg := "From: bob@example.com\r\nSubject: hello\r\n\r\nbody text\r\n"
	err := c.Do(ctx, "append", func(cl *imapclient.Client) error {
		cmd := cl.Append("INBOX", int64(len(msg)), nil)
		if _, err := cmd.Write([]byte(msg)); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	var body []byte
	err = c.Do(ctx, "fetch", func(cl *imapclient.Client) error {
		if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
			return err
		}
		section := &imap.FetchItemBodySection{}
		msgs, err := cl.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return err
		}
		if len(msgs) != 1 {
			return errors.New("no message")
		}
		body = msgs[0].FindBodySection(section)
		return nil
	})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got, want := string(body), msg; got != want {
		t.Fatalf("fetched body = %q, want %q", got, want)
	}
}

func TestDialPlainLoopback(t *testing.T) {
	host, port := memServer(t, nil, false)
	c, err := Dial(context.Background(), Options{Host: host, Port: port, TLS: TLSNone, Username: testUser, Auth: password(testPassword)})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if !c.Caps().Has(imap.CapIMAP4rev1) {
		t.Fatalf("Caps() = %v, want IMAP4rev1", c.Caps())
	}
	exercise(t, c)
	if err := c.Logout(context.Background()); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	select {
	case <-c.Closed():
	default:
		t.Fatal("Closed() not closed after Logout")
	}
	if err := c.Do(context.Background(), "noop", func(cl *imapclient.Client) error { return cl.Noop().Wait() }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after close = %v, want ErrClosed", err)
	}
}

func TestDialImplicitTLS(t *testing.T) {
	ca := newTestCA(t)
	host, port := memServer(t, ca.serverConfig(t), true)
	c, err := Dial(context.Background(), Options{Host: host, Port: port, CAFile: ca.caFile, Username: testUser, Auth: password(testPassword)})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	exercise(t, c)
}

func TestDialStartTLS(t *testing.T) {
	ca := newTestCA(t)
	host, port := memServer(t, ca.serverConfig(t), false)
	var trace bytes.Buffer
	c, err := Dial(context.Background(), Options{Host: host, Port: port, TLS: TLSStartTLS, CAFile: ca.caFile, Username: testUser, Auth: password(testPassword), Trace: &trace})
	if err != nil {
		t.Fatalf("Dial: %v\ntrace:\n%s", err, trace.String())
	}
	defer c.Close()
	exercise(t, c)
	if !strings.Contains(trace.String(), "C: P2 STARTTLS") || !strings.Contains(trace.String(), "-- TLS established") {
		t.Fatalf("trace lacks the STARTTLS exchange:\n%s", trace.String())
	}
}

func TestDialImplicitTLSUnknownAuthority(t *testing.T) {
	ca := newTestCA(t)
	host, port := memServer(t, ca.serverConfig(t), true)
	_, err := Dial(context.Background(), Options{Host: host, Port: port, Username: testUser, Auth: password(testPassword)})
	if !IsTLSError(err) {
		t.Fatalf("Dial error = %v, want a TLS error", err)
	}
	if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("error %q does not say unknown authority", err)
	}
	if IsAuthFailure(err) {
		t.Fatalf("IsAuthFailure(%v) = true", err)
	}
}

// tlsOnly accepts TLS connections with cert and completes handshakes only.
func tlsOnly(t *testing.T, cfg *tls.Config) (string, int) {
	t.Helper()
	fs := startFake(t, func(c *fakeConn) {
		tc := tls.Server(c.Conn, cfg)
		_ = tc.Handshake()
	})
	return fs.host, fs.port
}

func TestDialTLSCertificateMessages(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	expired := ca.leaf(t, []string{"localhost"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	wrongName := ca.leaf(t, []string{"mail.example.net", "127.0.0.2"}, now.Add(-time.Hour), now.Add(time.Hour))
	tests := []struct {
		name       string
		cfg        *tls.Config
		serverName string
		want       string
	}{
		{"expired", &tls.Config{Certificates: []tls.Certificate{expired}}, "localhost", "certificate for localhost expired on " + now.Add(-24*time.Hour).UTC().Format(time.DateOnly)},
		{"wrong name", &tls.Config{Certificates: []tls.Certificate{wrongName}}, "imap.example.com", "certificate is valid for mail.example.net, 127.0.0.2, not imap.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, port := tlsOnly(t, tt.cfg)
			_, err := Dial(context.Background(), Options{Host: host, Port: port, ServerName: tt.serverName, CAFile: ca.caFile, Username: testUser, Auth: password(testPassword)})
			if !IsTLSError(err) {
				t.Fatalf("Dial error = %v, want a TLS error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), net.JoinHostPort(host, strconv.Itoa(port))) {
				t.Fatalf("error %q does not name the address", err)
			}
		})
	}
}

func TestDialWrongPassword(t *testing.T) {
	host, port := memServer(t, nil, false)
	const wrong = "not-the-Password-42"
	_, err := Dial(context.Background(), Options{Host: host, Port: port, TLS: TLSNone, Username: testUser, Auth: password(wrong)})
	if err == nil {
		t.Fatal("Dial succeeded with a wrong password")
	}
	if !IsAuthFailure(err) {
		t.Fatalf("IsAuthFailure(%v) = false, want true", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Fatalf("error %q contains the password", err)
	}
	if IsTLSError(err) {
		t.Fatalf("IsTLSError(%v) = true", err)
	}
}

func TestDialSecretError(t *testing.T) {
	host, port := memServer(t, nil, false)
	auth := Password(func() (string, error) { return "", errors.New("keyring locked") })
	_, err := Dial(context.Background(), Options{Host: host, Port: port, TLS: TLSNone, Username: testUser, Auth: auth})
	if err == nil || !strings.Contains(err.Error(), "keyring locked") {
		t.Fatalf("Dial error = %v, want the secret error", err)
	}
	if IsAuthFailure(err) {
		t.Fatalf("IsAuthFailure(%v) = true for a secret store error", err)
	}
}

func TestDialTLSNoneRefusedForRemoteHost(t *testing.T) {
	for _, host := range []string{"192.0.2.1", "imap.example.com", "10.0.0.1", "::2"} {
		dialed := false
		opts := Options{Host: host, Port: 143, TLS: TLSNone, Username: testUser, Auth: password("x")}
		opts.dial = func(context.Context, string, string) (net.Conn, error) {
			dialed = true
			return nil, errors.New("test: must not dial")
		}
		_, err := Dial(context.Background(), opts)
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Fatalf("Dial(%s, none) error = %v, want loopback refusal", host, err)
		}
		if dialed {
			t.Fatalf("Dial(%s, none) dialed before refusing", host)
		}
	}
	for _, host := range []string{"127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost", "LocalHost"} {
		if !isLoopback(host) {
			t.Fatalf("isLoopback(%q) = false", host)
		}
	}
}

func TestTraceRedactsLogin(t *testing.T) {
	host, port := memServer(t, nil, false)
	var trace bytes.Buffer
	c, err := Dial(context.Background(), Options{Host: host, Port: port, TLS: TLSNone, Username: testUser, Auth: password(testPassword), Trace: &trace})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	_ = c.Close()
	out := trace.String()
	if strings.Contains(out, testPassword) || strings.Contains(out, "s3cret") {
		t.Fatalf("trace contains the password:\n%s", out)
	}
	if strings.Contains(out, testUser) {
		t.Fatalf("trace contains the LOGIN arguments:\n%s", out)
	}
	for _, want := range []string{"LOGIN [redacted]", "C: [redacted]", "S: * OK", "S: T1 OK"} {
		if !strings.Contains(out, want) {
			t.Fatalf("trace lacks %q:\n%s", want, out)
		}
	}
}

func TestTracerRedactsAuthenticate(t *testing.T) {
	var buf bytes.Buffer
	tr := newTracer(&buf)
	tr.fromClient([]byte("T1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\nT"))
	tr.fromServer([]byte("+ \r\n"))
	tr.fromClient([]byte("2 more-secret\r\n"))
	tr.fromServer([]byte("T1 OK done\r\n"))
	tr.fromClient([]byte("T3 SELECT INBOX\r\n"))
	out := buf.String()
	want := "C: T1 AUTHENTICATE PLAIN [redacted]\nS: + \nC: [redacted]\nS: T1 OK done\nC: T3 SELECT INBOX\n"
	if out != want {
		t.Fatalf("trace =\n%s\nwant\n%s", out, want)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{Host: "imap.example.com"}.withDefaults()
	if o.TLS != TLSImplicit || o.Port != 993 || o.CommandTimeout != DefaultCommandTimeout || o.MaxLineBytes != DefaultMaxLineBytes {
		t.Fatalf("defaults = %+v", o)
	}
	if got := (Options{Host: "h", TLS: "STARTTLS"}).withDefaults().Port; got != 143 {
		t.Fatalf("starttls default port = %d, want 143", got)
	}
	o = Options{Host: "h", TLS: "ssl"}.withDefaults()
	if err := o.validate(); err == nil {
		t.Fatal("validate accepted tls mode ssl")
	}
}
