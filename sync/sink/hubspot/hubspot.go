// Package hubspot is a CRM adapter for HubSpot (CRM v3 objects, v4
// associations). It is a sink.Sink that logs each message as one email
// engagement associated with the matched contact, company and open deal,
// a matcher.Directory that finds contacts by e-mail address and companies
// by domain through the search API, a sink.Unlinker (an email engagement
// deleted in HubSpot unlinks the message) and a sink.Checker (token valid,
// scopes granted, key property defined).
//
// Idempotency: every engagement carries the message's key in a custom
// email property (key_property, default mailsync_key). Before creating a
// batch the adapter searches for the batch's keys in one search call, so
// a message redelivered after a crash or a lost state file is not logged
// twice. HubSpot's search index lags writes by a few seconds; within one
// process an in-memory map of created keys covers that window, and across
// a restart the settle wait (settle.go) does.
package hubspot

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/sync/sink"
)

func init() {
	sink.Register("hubspot", sink.Adapter{
		Parse: func(section map[string]any) (any, error) { return ParseSettings(section) },
		Open: func(_ context.Context, cfg any, deps sink.Deps) (sink.Sink, error) {
			return New(cfg.(Config), deps)
		},
		Shared: true,
		Login:  login,
	})
}

// Health implements sink.Health: whether HubSpot refused the OAuth2
// grant (a private-app token that stops working shows as delivery errors).
func (c *Client) Health() string {
	if a, ok := c.auth.(*oauthAuth); ok {
		return a.health()
	}
	return ""
}

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("hubspot sink is closed")

// Client is the HubSpot adapter. It is safe for concurrent use.
type Client struct {
	cfg  Config
	hc   *http.Client
	auth auth
	log  *slog.Logger
	kv   sink.KV
	pace *pacer
	m    *metrics

	locks  keyLocks
	known  knownKeys
	settle *settle
	closed atomic.Bool
}

var (
	_ sink.Sink         = (*Client)(nil)
	_ sink.Unlinker     = (*Client)(nil)
	_ sink.Checker      = (*Client)(nil)
	_ sink.Health       = (*Client)(nil)
	_ matcher.Directory = (*Client)(nil)
)

// New reads the credentials and builds the client. deps must be filled
// (sink.Open fills what is missing).
func New(cfg Config, deps sink.Deps) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, hc: deps.HTTP, log: deps.Logger, kv: deps.KV, pace: newPacer(cfg), m: newMetrics(deps.Metrics)}
	if c.hc == nil {
		c.hc = sink.NewHTTPClient(cfg.Timeout)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.kv == nil {
		c.kv = &sink.MemoryKV{}
	}
	st, err := newSettle(c.kv, cfg.SearchLag, time.Now)
	if err != nil {
		return nil, err
	}
	c.settle = st
	switch {
	case cfg.OAuth2 != nil:
		a, err := newOAuth(cfg.OAuth2, c.hc, deps.Tokens)
		if err != nil {
			return nil, err
		}
		c.auth = a
	default:
		tok, err := secret("token", cfg.TokenFile, cfg.TokenEnv)
		if err != nil {
			return nil, err
		}
		c.auth = staticAuth{tok: tok}
	}
	return c, nil
}

// String names the portal's API host for logs.
func (c *Client) String() string { return "hubspot:" + c.cfg.BaseURL }

// Close makes later calls fail. A second Close returns nil.
func (c *Client) Close() error {
	if !c.closed.Swap(true) {
		c.hc.CloseIdleConnections()
	}
	return nil
}

func (c *Client) open() error {
	if c.closed.Load() {
		return ErrClosed
	}
	return nil
}
