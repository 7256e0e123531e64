// Package smtpfront is mailsync's SMTP submission front (RFC 6409) for CRMs
// that can use a custom outgoing mail server but not the JSON send API. A
// CRM logs in with AUTH PLAIN as an account id; every message it submits
// is handed to the outbound Sender, which submits it through that
// account's own SMTP server, files a \Seen copy in Sent and records it in
// the ledger as sent from the CRM, idempotent by Message-ID (see
// outbound.Sender.SendRaw). The SMTP reply says what happened: 250 sent
// (or sent earlier), 4xx try again later, 5xx do not retry.
package smtpfront

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	stdsync "sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/outbound"
)

// Sender is what the front hands messages to; *outbound.Sender is the
// implementation.
type Sender interface {
	SendRaw(ctx context.Context, account string, m outbound.RawMail) (*outbound.Result, error)
}

// Deps are what a Server needs besides its configuration.
type Deps struct {
	Sender Sender
	// Linker, if set, names the CRM records of each message (the sink's
	// outbound.SentLinker capability).
	Linker outbound.SentLinker
	Logger *slog.Logger
}

// Timeouts. sendTimeout bounds handing one message on (the upstream SMTP
// server may take 10 minutes to answer its data, RFC 5321 §4.5.3.2.6);
// linkTimeout bounds asking the CRM which records a message belongs to.
const (
	ioTimeout   = 5 * time.Minute
	sendTimeout = 15 * time.Minute
	linkTimeout = 10 * time.Second
	replyGrace  = 200 * time.Millisecond
)

// Server is a listening SMTP front. It owns one accept goroutine between
// Listen and Stop.
type Server struct {
	cfg   config.SMTPFront
	deps  Deps
	log   *slog.Logger
	creds *Credentials
	rate  *limiter
	srv   *smtp.Server
	ln    net.Listener
	done  chan struct{}
	once  stdsync.Once
	// ctx is cancelled by Stop after the grace period: sends still
	// running then are cut (and resolved by their resubmission).
	ctx    context.Context
	cancel context.CancelFunc
	// busy counts messages being handed on (session.Data); busyMu orders
	// its Adds before Stop's Wait, and stopping refuses new ones.
	busyMu   stdsync.Mutex
	stopping bool
	busy     stdsync.WaitGroup
}

// Listen binds cfg.Listen (so a taken port fails the start), loads the
// certificate and the credentials, and starts serving.
func Listen(cfg config.SMTPFront, deps Deps) (*Server, error) {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "smtp_front")
	creds, err := LoadCredentials(cfg.CredentialsFile)
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if cfg.TLS != "none" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("smtp_front.cert_file, key_file: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s := &Server{cfg: cfg, deps: deps, log: log, creds: creds, rate: newLimiter(cfg.RatePerAccount, time.Minute), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	srv := smtp.NewServer(s)
	srv.Domain = cfg.Hostname
	if srv.Domain == "" {
		srv.Domain, _ = os.Hostname()
	}
	srv.TLSConfig = tlsCfg
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.ReadTimeout, srv.WriteTimeout = ioTimeout, ioTimeout
	// Config allows tls none only on loopback.
	srv.AllowInsecureAuth = cfg.TLS == "none"
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = slogLogger{log}
	s.srv = srv
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("smtp_front.listen: %w", err)
	}
	if cfg.TLS == "implicit" {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		// Stop closes ln first, which ends Serve with net.ErrClosed.
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("smtp front stopped", "err", err)
		}
	}()
	log.Info("smtp front listening", "addr", ln.Addr().String(), "tls", cfg.TLS)
	return s, nil
}

// Addr is where the front listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stop stops accepting, lets messages being handed on finish within
// grace, then closes every connection (an idle CRM connection does not
// hold up the shutdown) and returns when the server is down. Safe to call
// twice.
func (s *Server) Stop(grace time.Duration) {
	s.once.Do(func() {
		_ = s.ln.Close()
		s.busyMu.Lock()
		s.stopping = true
		s.busyMu.Unlock()
		drained := make(chan struct{})
		go func() { s.busy.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(grace):
			s.log.Warn("smtp front: messages still being sent at shutdown; their resubmission resolves them")
		}
		// go-smtp writes the reply after Data returns: give it a moment
		// before the connections close.
		time.Sleep(replyGrace)
		s.cancel() // sends still running return soon: their context ends
		_ = s.srv.Close()
		<-s.done
		select {
		case <-drained:
		case <-time.After(ioTimeout):
			s.log.Error("smtp front: a send ignored its cancelled context")
		}
	})
}

// enter registers a message being handed on; false once Stop began.
func (s *Server) enter() bool {
	s.busyMu.Lock()
	defer s.busyMu.Unlock()
	if s.stopping {
		return false
	}
	s.busy.Add(1)
	return true
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, remote: c.Conn().RemoteAddr().String()}, nil
}

// slogLogger carries go-smtp's internal errors into the daemon's log.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l slogLogger) Println(v ...any)               { l.log.Warn(fmt.Sprint(v...)) }
