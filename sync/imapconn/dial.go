package imapconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Dial connects, secures the connection per opts.TLS, checks the greeting
// and capabilities, logs in with opts.Auth and returns the connection.
//
// Every error names host:port and never a secret, and leaves nothing open.
// Failures to tell apart: IsAuthFailure (credentials refused: stop the
// account), IsTLSError (certificate problems), ErrNoStartTLS and ErrPreauth
// (refused before any credential was sent); the rest are transient.
func Dial(ctx context.Context, opts Options) (*Conn, error) {
	o := opts.withDefaults()
	addr := o.addr()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("imap %s: %w", addr, err)
	}
	cfg, err := o.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("imap %s: %w", addr, err)
	}
	if o.Auth == nil && o.TLS != TLSImplicit {
		return nil, fmt.Errorf("imap %s: no authenticator", addr)
	}
	var tr *tracer
	if o.Trace != nil {
		tr = newTracer(o.Trace)
	}

	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	raw, err := o.dial(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("imap %s: dial: %w", addr, err)
	}
	top, prefix, err := secure(ctx, dctx, raw, &o, cfg, tr)
	if err != nil {
		_ = raw.Close()
		var te *TLSError
		if errors.As(err, &te) {
			return nil, err
		}
		return nil, fmt.Errorf("imap %s: %w", addr, err)
	}

	w := newWire(top, raw, newScanner(o.MaxLineBytes, o.MaxLiteralBytes), tr, prefix)
	c := &Conn{
		addr: addr,
		client: imapclient.New(w, &imapclient.Options{
			UnilateralDataHandler: o.UnilateralDataHandler,
			WordDecoder:           o.WordDecoder,
		}),
		wire:       w,
		cmdTimeout: o.CommandTimeout,
		log:        o.Logger.With("addr", addr),
		sem:        make(chan struct{}, 1),
	}
	if err := c.setup(ctx, &o); err != nil {
		_ = c.Close()
		return nil, err
	}
	c.log.Debug("imap connected", "tls", o.TLS, "username", o.Username)
	return c, nil
}

// secure returns the connection to speak IMAP over, and bytes to serve
// before it (see stoodInGreeting).
func secure(ctx, dctx context.Context, raw net.Conn, o *Options, cfg *tls.Config, tr *tracer) (net.Conn, []byte, error) {
	switch o.TLS {
	case TLSImplicit:
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"imap"} // RFC 8314 ALPN id, as go-imap's DialTLS
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			return nil, nil, handshakeError(o, err)
		}
		tr.note("TLS established")
		return tc, nil, nil
	case TLSStartTLS:
		tc, err := startTLS(ctx, raw, o, tr, cfg)
		if err != nil {
			return nil, nil, err
		}
		return tc, []byte(stoodInGreeting), nil
	}
	return raw, nil, nil
}

// handshakeError explains certificate problems; other failures (timeouts,
// resets) stay plain errors.
func handshakeError(o *Options, err error) error {
	if te := tlsError(o.addr(), o.ServerName, o.Port, err, time.Now()); te != nil {
		return te
	}
	return fmt.Errorf("tls handshake: %w", err)
}

// setup waits for the greeting, logs in and reads the capabilities.
func (c *Conn) setup(ctx context.Context, o *Options) error {
	if err := c.Do(ctx, "greeting", func(cl *imapclient.Client) error { return cl.WaitGreeting() }); err != nil {
		return err
	}
	preauth := c.client.State() == imap.ConnStateAuthenticated
	if preauth && o.TLS != TLSImplicit {
		return c.wrap("greeting", ErrPreauth)
	}
	if err := c.fetchCaps(ctx); err != nil {
		return err
	}
	if preauth {
		c.log.Info("imap server pre-authenticated the connection; not logging in")
		return nil
	}
	if o.Auth == nil {
		return c.wrap("authenticate", errors.New("no authenticator"))
	}
	err := c.Do(ctx, "authenticate", func(cl *imapclient.Client) error {
		err := o.Auth.Authenticate(ctx, cl, o.Username)
		if err != nil && rejected(err) {
			return &authError{username: o.Username, err: err}
		}
		return err
	})
	if err != nil {
		return err
	}
	// LOGIN and AUTHENTICATE invalidate capabilities (RFC 9051 §6.2.2).
	return c.fetchCaps(ctx)
}

func (c *Conn) fetchCaps(ctx context.Context) error {
	return c.Do(ctx, "capability", func(cl *imapclient.Client) error {
		caps := cl.Caps()
		if caps == nil {
			return errors.New("server sent no capabilities")
		}
		c.caps = caps
		return nil
	})
}
