package imapconn

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

const (
	testUser     = "alice"
	testPassword = "s3cret-pässwörd" // non-ASCII: go-imap sends it as a literal
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailsync test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, caFile: caFile}
}

// leaf issues a server certificate for names, valid from notBefore to
// notAfter.
func (ca *testCA) leaf(t *testing.T, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) serverConfig(t *testing.T) *tls.Config {
	cert := ca.leaf(t, []string{"localhost", "127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// listen opens a listener on 127.0.0.1 closed at test end.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func hostPort(t *testing.T, ln net.Listener) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, p
}

// memServer runs go-imap's in-memory server with one user and an empty
// INBOX. tlsCfg, if set, enables STARTTLS, or implicit TLS when implicit.
func memServer(t *testing.T, tlsCfg *tls.Config, implicit bool) (string, int) {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(testUser, testPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: tlsCfg == nil,
		Logger:       discardLogger{},
	}
	if !implicit {
		opts.TLSConfig = tlsCfg
	}
	srv := imapserver.New(opts)
	ln := listen(t)
	host, port := hostPort(t, ln)
	if implicit {
		ln = tls.NewListener(ln, tlsCfg)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return host, port
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// fakeServer accepts connections on 127.0.0.1 and runs handle on each,
// recording every byte the client sent. All goroutines end by test end.
type fakeServer struct {
	host string
	port int

	mu    sync.Mutex
	got   bytes.Buffer
	conns []net.Conn
}

func startFake(t *testing.T, handle func(c *fakeConn)) *fakeServer {
	t.Helper()
	ln := listen(t)
	fs := &fakeServer{}
	fs.host, fs.port = hostPort(t, ln)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fs.mu.Lock()
			fs.conns = append(fs.conns, c)
			fs.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fc := &fakeConn{Conn: c, fs: fs}
				fc.br = bufio.NewReader(fc.recorder())
				handle(fc)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		fs.mu.Lock()
		for _, c := range fs.conns {
			_ = c.Close()
		}
		fs.mu.Unlock()
		wg.Wait()
	})
	return fs
}

// received returns everything clients sent so far.
func (fs *fakeServer) received() string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.got.String()
}

// fakeConn is one client connection seen by a fake server.
type fakeConn struct {
	net.Conn
	fs *fakeServer
	br *bufio.Reader
}

type recordReader struct{ fc *fakeConn }

func (r recordReader) Read(p []byte) (int, error) {
	n, err := r.fc.Conn.Read(p)
	r.fc.fs.mu.Lock()
	r.fc.fs.got.Write(p[:n])
	r.fc.fs.mu.Unlock()
	return n, err
}

func (fc *fakeConn) recorder() recordReader { return recordReader{fc} }

func (fc *fakeConn) send(s string) bool {
	_, err := fc.Write([]byte(s))
	return err == nil
}

// next reads a client command line and returns its tag and upper-cased
// command name and the rest.
func (fc *fakeConn) next() (tag, cmd, rest string, ok bool) {
	line, err := fc.br.ReadString('\n')
	if err != nil {
		return "", "", "", false
	}
	line = strings.TrimRight(line, "\r\n")
	tag, rest, _ = strings.Cut(line, " ")
	cmd, rest, _ = strings.Cut(rest, " ")
	return tag, strings.ToUpper(cmd), rest, true
}

// serveBasic answers CAPABILITY, LOGIN and SELECT like a minimal server
// and hands any other command to other; it returns when the client goes
// away or other returns false.
func (fc *fakeConn) serveBasic(other func(tag, cmd, rest string) bool) {
	for range 100 {
		tag, cmd, rest, ok := fc.next()
		if !ok {
			return
		}
		var reply string
		switch cmd {
		case "CAPABILITY":
			reply = "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + " OK done\r\n"
		case "LOGIN":
			reply = tag + " OK logged in\r\n"
		case "SELECT":
			reply = "* 1 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n" + tag + " OK [READ-WRITE] selected\r\n"
		default:
			if other == nil || !other(tag, cmd, rest) {
				return
			}
			continue
		}
		if !fc.send(reply) {
			return
		}
	}
}
