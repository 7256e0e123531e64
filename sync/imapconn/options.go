package imapconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// TLS modes for Options.TLS.
const (
	// TLSImplicit speaks TLS from the first byte (port 993, RFC 8314).
	TLSImplicit = "implicit"
	// TLSStartTLS upgrades a cleartext connection with STARTTLS (port 143).
	TLSStartTLS = "starttls"
	// TLSNone speaks cleartext; only allowed to a loopback host.
	TLSNone = "none"
)

// Defaults for zero Options fields.
const (
	DefaultCommandTimeout  = 60 * time.Second
	DefaultDialTimeout     = 15 * time.Second
	DefaultMaxLineBytes    = 1 << 20
	DefaultMaxLiteralBytes = 64 << 20
)

// Options configure Dial. The zero value of every field but Host, Username
// and Auth has a sane default.
type Options struct {
	// Host is the server name or IP address.
	Host string
	// Port defaults to 993 for implicit TLS and 143 otherwise.
	Port int
	// TLS is TLSImplicit (the default), TLSStartTLS or TLSNone. TLSNone is
	// refused unless Host is a loopback address or "localhost".
	TLS string
	// CAFile names a PEM file of extra trusted roots, added to the
	// system's. Certificates are always verified.
	CAFile string
	// ServerName is the name the certificate must be valid for; Host if
	// empty.
	ServerName string
	// Username is passed to Auth.
	Username string
	// Auth logs in; required unless the server pre-authenticates an
	// implicit-TLS connection.
	Auth Authenticator
	// CommandTimeout bounds Conn.Do and each step of Dial after the TCP and
	// TLS handshakes. Default 60 s.
	CommandTimeout time.Duration
	// DialTimeout bounds the TCP connect plus TLS handshake. Default 15 s.
	DialTimeout time.Duration
	// MaxLineBytes caps the bytes outside literals in one server response;
	// more closes the connection. Default 1 MiB.
	MaxLineBytes int
	// MaxLiteralBytes caps the size of a literal the server may announce;
	// a larger one closes the connection. Default 64 MiB.
	MaxLiteralBytes int64
	// UnilateralDataHandler receives EXISTS, EXPUNGE and FETCH updates.
	// Its functions run on the connection's reader goroutine: they must
	// not block and must not issue commands (that deadlocks); signal a
	// buffered channel instead.
	UnilateralDataHandler *imapclient.UnilateralDataHandler
	// WordDecoder decodes RFC 2047 words in envelopes; go-imap's basic
	// decoder if nil.
	WordDecoder *mime.WordDecoder
	// Trace, if set, receives the conversation as "C: "/"S: " lines with
	// LOGIN and AUTHENTICATE payloads redacted. For debugging only: it
	// includes message contents.
	Trace io.Writer
	// Logger receives connection events; discarded if nil.
	Logger *slog.Logger

	// dial replaces the network dialer in tests.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// withDefaults returns a copy of o with defaults filled in.
func (o Options) withDefaults() Options {
	if o.TLS == "" {
		o.TLS = TLSImplicit
	}
	o.TLS = strings.ToLower(o.TLS)
	if o.Port == 0 {
		o.Port = 143
		if o.TLS == TLSImplicit {
			o.Port = 993
		}
	}
	if o.ServerName == "" {
		o.ServerName = o.Host
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.MaxLiteralBytes <= 0 {
		o.MaxLiteralBytes = DefaultMaxLiteralBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.dial == nil {
		d := &net.Dialer{
			// Dead peers are otherwise noticed only when a command
			// times out; keepalive also finds them during IDLE.
			KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 15 * time.Second, Count: 4},
		}
		o.dial = d.DialContext
	}
	return o
}

// addr returns host:port.
func (o *Options) addr() string {
	return net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
}

// validate checks o after withDefaults, before any network use.
func (o *Options) validate() error {
	switch {
	case o.Host == "":
		return errors.New("host is empty")
	case o.Port < 1 || o.Port > 65535:
		return fmt.Errorf("port %d out of range", o.Port)
	}
	switch o.TLS {
	case TLSImplicit, TLSStartTLS:
	case TLSNone:
		if !isLoopback(o.Host) {
			return fmt.Errorf("tls: none is refused for %s: it is not a loopback address (127.0.0.0/8, ::1, localhost), and credentials and mail would cross the network in cleartext", o.Host)
		}
	default:
		return fmt.Errorf("tls mode %q unknown (want %s, %s or %s)", o.TLS, TLSImplicit, TLSStartTLS, TLSNone)
	}
	return nil
}

// isLoopback reports whether host names this machine without a DNS look-up:
// "localhost" or a loopback IP literal.
func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sessions is one TLS session cache for every connection of the process.
// Sessions are the server's, not the user's (IMAP logs in after the
// handshake), so 1,000 accounts on one server resume each other's: a
// resumed handshake skips the certificate signature and its verification,
// most of the handshake's CPU on both sides.
var sessions = tls.NewLRUClientSessionCache(256)

// pools caches the root pool built from a CA file's contents: every
// connection would otherwise hold its own copy of the system roots.
var pools struct {
	mu sync.Mutex
	m  map[string]*x509.CertPool // PEM contents -> system roots plus them
}

// tlsConfig builds the client TLS configuration: verification always on,
// system roots plus CAFile.
func (o *Options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         o.ServerName,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: sessions,
	}
	if o.CAFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read ca file: %w", err)
	}
	pools.mu.Lock()
	defer pools.mu.Unlock()
	if pool := pools.m[string(pem)]; pool != nil {
		cfg.RootCAs = pool
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s holds no PEM certificate", o.CAFile)
	}
	if pools.m == nil || len(pools.m) >= 64 { // a few CA files, bounded
		pools.m = map[string]*x509.CertPool{}
	}
	pools.m[string(pem)] = pool
	cfg.RootCAs = pool
	return cfg, nil
}
