// Package demo runs the built-in IMAP server behind `mailsync demo`: an
// in-memory go-imap server on loopback with two mailboxes seeded with
// realistic mail from mailgen, and optional live delivery of new mail.
//
// It speaks plaintext IMAP with LOGIN allowed, which is only acceptable
// because it listens on loopback and holds generated mail.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/mailsync/mailsync/sync/mailgen"
)

// Mailbox names every demo user has.
const (
	Inbox = "INBOX"
	// Sent is created with the \Sent special-use attribute (RFC 6154),
	// but imapmemserver v2.0.0-beta.8 ignores it, so LIST does not show
	// it: configurations must name this folder literally.
	Sent = "Sent"
)

// closeTimeout bounds how long Close waits for the server's goroutines.
const closeTimeout = 5 * time.Second

// Options configures Start. The zero value is usable.
type Options struct {
	// Addr is the listen address. Default "127.0.0.1:0", a free port.
	Addr string
	// Seed makes the seeded mail reproducible. Default 1.
	Seed int64
	// Generation numbers a run that reuses the state file of earlier ones
	// (demo --dir): its mailboxes get a UIDVALIDITY above theirs, as a
	// server's recreated mailbox would (RFC 9051 §2.3.1.1), so the daemon
	// rescans them instead of taking its old cursors for this server's.
	// Default 0: the first run.
	Generation int
	// Inbox and Sent are how many messages each user's INBOX and Sent
	// start with. Defaults 40 and 15.
	Inbox, Sent int
	// Logger receives server diagnostics. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock that dates mail. Default time.Now.
	Now func() time.Time
}

// account is one demo user.
type account struct {
	addr     mail.Address
	password string
	user     *imapmemserver.User
}

// Server is a running demo IMAP server. Its methods are safe for
// concurrent use.
type Server struct {
	ln       net.Listener
	imap     *imapserver.Server
	accounts []*account
	dir      []byte
	logger   *slog.Logger
	now      func() time.Time
	stopCtx  func() bool

	mu     sync.Mutex // guards gen, rng, closed and wg.Add
	gen    *mailgen.Generator
	rng    *mathrand.Rand
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Start seeds the mailboxes and serves IMAP until ctx is done or Close is
// called.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start demo server: %w", err)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Inbox <= 0 {
		opts.Inbox = 40
	}
	if opts.Sent <= 0 {
		opts.Sent = 15
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		logger: opts.Logger.With("component", "demo-imap"),
		now:    opts.Now,
		rng:    mathrand.New(mathrand.NewPCG(uint64(opts.Seed), 0xde)),
		done:   make(chan struct{}),
	}
	mem := imapmemserver.New()
	for _, a := range []mail.Address{
		{Name: "Acme Sales", Address: "sales@acme.example"},
		{Name: "Acme Support", Address: "support@acme.example"},
	} {
		acct, err := newAccount(a, opts.Generation)
		if err != nil {
			return nil, err
		}
		mem.AddUser(acct.user)
		s.accounts = append(s.accounts, acct)
	}
	owners := make([]mail.Address, len(s.accounts))
	for i, a := range s.accounts {
		owners[i] = a.addr
	}
	s.gen = mailgen.New(opts.Seed, mailgen.Options{
		Owners: owners,
		End:    opts.Now().Add(-time.Hour),
		Window: 30 * 24 * time.Hour,
		Count:  len(owners)*(opts.Inbox+opts.Sent) + 10,
	})
	s.dir = s.gen.Directory()
	if err := s.seed(opts.Inbox, opts.Sent); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("start demo server: %w", err)
	}
	s.ln = ln
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		// Plaintext LOGIN: the server only holds generated mail and the
		// default address is loopback.
		InsecureAuth: true,
		Logger:       printfLogger{s.logger},
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.imap.Serve(ln); err != nil && !s.isClosed() {
			s.logger.Error("imap serve stopped", "err", err)
		}
	}()
	s.stopCtx = context.AfterFunc(ctx, func() { _ = s.Close() })
	s.logger.Info("demo imap server listening", "addr", ln.Addr().String(), "users", len(s.accounts))
	return s, nil
}

func newAccount(a mail.Address, generation int) (*account, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generate password for %s: %w", a.Address, err)
	}
	acct := &account{addr: a, password: base64.RawURLEncoding.EncodeToString(b[:])}
	acct.user = imapmemserver.NewUser(a.Address, acct.password)
	// The memory server numbers UIDVALIDITY per user, one per CREATE; a
	// created and deleted mailbox per generation moves it past earlier
	// runs' (two mailboxes each).
	for i := 0; i < 2*generation; i++ {
		if err := acct.user.Create("generation", nil); err != nil {
			return nil, fmt.Errorf("demo generation %d for %s: %w", generation, a.Address, err)
		}
		if err := acct.user.Delete("generation"); err != nil {
			return nil, fmt.Errorf("demo generation %d for %s: %w", generation, a.Address, err)
		}
	}
	for _, mb := range []struct {
		name string
		use  []imap.MailboxAttr
	}{{Inbox, nil}, {Sent, []imap.MailboxAttr{imap.MailboxAttrSent}}} {
		if err := acct.user.Create(mb.name, &imap.CreateOptions{SpecialUse: mb.use}); err != nil {
			return nil, fmt.Errorf("create %s for %s: %w", mb.name, a.Address, err)
		}
		if err := acct.user.Subscribe(mb.name); err != nil {
			return nil, fmt.Errorf("subscribe %s for %s: %w", mb.name, a.Address, err)
		}
	}
	return acct, nil
}

// Addr returns the listen address as host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Users returns the login names (the mailbox addresses), sorted.
func (s *Server) Users() []string {
	users := make([]string, len(s.accounts))
	for i, a := range s.accounts {
		users[i] = a.addr.Address
	}
	slices.Sort(users)
	return users
}

// Password returns the password generated for user in this run, or ""
// for an unknown user. Callers must not log it.
func (s *Server) Password(user string) string {
	if a := s.account(user); a != nil {
		return a.password
	}
	return ""
}

// Directory returns the CRM directory CSV matching the generated mail;
// the format is documented at mailgen's (*Generator).Directory.
func (s *Server) Directory() []byte { return bytes.Clone(s.dir) }

func (s *Server) account(user string) *account {
	for _, a := range s.accounts {
		if strings.EqualFold(a.addr.Address, user) {
			return a
		}
	}
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the listener, open connections and live delivery, and
// waits for the server's goroutines, at most a few seconds. It is safe to
// call more than once; later calls return the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopCtx()
		s.mu.Lock()
		s.closed = true
		close(s.done)
		s.mu.Unlock()
		// imapserver only closes listeners that Serve has registered, so
		// close ours too in case Serve has not started yet.
		err := s.imap.Close()
		if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) {
			err = errors.Join(err, lerr)
		}
		waited := make(chan struct{})
		go func() { s.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(closeTimeout):
			err = errors.Join(err, fmt.Errorf("close demo server: goroutines still running after %v", closeTimeout))
		}
		if err != nil {
			s.closeErr = fmt.Errorf("close demo server: %w", err)
		}
		s.logger.Info("demo imap server stopped")
	})
	return s.closeErr
}

// printfLogger routes imapserver's diagnostics to slog. Most are client
// disconnects, hence debug level; panics are errors.
type printfLogger struct{ l *slog.Logger }

func (p printfLogger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	level := slog.LevelDebug
	if strings.HasPrefix(msg, "panic") {
		level = slog.LevelError
	}
	p.l.Log(context.Background(), level, "imap server", "detail", msg)
}
