package outbound

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpPeer is a real SMTP submission server on 127.0.0.1 (go-smtp's
// server package) that records what it accepts. It requires AUTH PLAIN
// before MAIL.
type smtpPeer struct {
	addr   string
	port   int
	caFile string // PEM of the CA that signed its certificate
	user   string
	pass   string

	srv  *smtp.Server
	done chan struct{}

	mu        stdsync.Mutex
	received  []received
	dataReply *smtp.SMTPError // answer to DATA instead of accepting
	rcptReply map[string]*smtp.SMTPError
	drop      bool          // read the data, then hang up without replying
	hold      chan struct{} // if set, DATA waits for it to close before answering
	holding   chan struct{} // receives when a DATA is held
}

type received struct {
	from  string
	rcpts []string
	data  []byte
}

// startSMTPPeer starts a peer; tlsMode is implicit, starttls or none.
func startSMTPPeer(t testing.TB, tlsMode string) *smtpPeer {
	t.Helper()
	p := &smtpPeer{user: "smtp-user", pass: "smtp-s3cret", done: make(chan struct{}), rcptReply: map[string]*smtp.SMTPError{}}
	cert, caPEM := testCert(t)
	p.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p.caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	p.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &peerSession{p: p, conn: c}, nil
	}))
	p.srv.Domain = "peer.test"
	p.srv.ReadTimeout, p.srv.WriteTimeout = 30*time.Second, 30*time.Second
	p.srv.MaxMessageBytes = 30 << 20
	p.srv.ErrorLog = discardLogger{}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch tlsMode {
	case "implicit":
		l = tls.NewListener(l, tlsCfg)
	case "starttls":
		p.srv.TLSConfig = tlsCfg
	case "none":
		p.srv.AllowInsecureAuth = true
	default:
		t.Fatalf("unknown tls mode %q", tlsMode)
	}
	p.addr = l.Addr().String()
	p.port = l.Addr().(*net.TCPAddr).Port
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(l)
	}()
	t.Cleanup(func() {
		p.srv.Close()
		<-p.done
	})
	return p
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// messages returns a copy of what was accepted (or, with drop, read).
func (p *smtpPeer) messages() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]received(nil), p.received...)
}

func (p *smtpPeer) setDataReply(e *smtp.SMTPError) {
	p.mu.Lock()
	p.dataReply = e
	p.mu.Unlock()
}

func (p *smtpPeer) setRcptReply(rcpt string, e *smtp.SMTPError) {
	p.mu.Lock()
	if e == nil {
		delete(p.rcptReply, rcpt)
	} else {
		p.rcptReply[rcpt] = e
	}
	p.mu.Unlock()
}

// holdData makes the next DATA wait until release is called; held
// receives once the DATA has arrived.
func (p *smtpPeer) holdData() (held <-chan struct{}, release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold, p.holding = make(chan struct{}), make(chan struct{}, 1)
	hold := p.hold
	return p.holding, stdsync.OnceFunc(func() { close(hold) })
}

func (p *smtpPeer) setDrop(v bool) {
	p.mu.Lock()
	p.drop = v
	p.mu.Unlock()
}

type peerSession struct {
	p      *smtpPeer
	conn   *smtp.Conn
	authed bool
	from   string
	rcpts  []string
}

func (s *peerSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *peerSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.p.user || password != s.p.pass {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *peerSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *peerSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.p.mu.Lock()
	e := s.p.rcptReply[to]
	s.p.mu.Unlock()
	if e != nil {
		return e
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *peerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.p.mu.Lock()
	hold, holding := s.p.hold, s.p.holding
	s.p.mu.Unlock()
	if hold != nil {
		holding <- struct{}{}
		<-hold
	}
	s.p.mu.Lock()
	reply, drop := s.p.dataReply, s.p.drop
	if reply == nil {
		s.p.received = append(s.p.received, received{from: s.from, rcpts: append([]string(nil), s.rcpts...), data: b})
	}
	s.p.mu.Unlock()
	if drop {
		// The message is queued, but the reply never reaches the client:
		// the one case where the client cannot know the outcome.
		s.conn.Conn().Close()
		return errors.New("dropped")
	}
	if reply != nil {
		return reply
	}
	return nil
}

func (s *peerSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *peerSession) Logout() error { return nil }

// testCert returns a server certificate for 127.0.0.1 signed by a fresh
// CA, and the CA's PEM.
func testCert(t testing.TB) (tls.Certificate, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outbound test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}
