package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/sink"
	"github.com/mailsync/mailsync/sync/sink/jsonl"
	"github.com/mailsync/mailsync/sync/sink/webhook"
)

// checkSink checks the configured sink without delivering anything, unless
// sinkTest asks for a webhook test delivery.
// It reports whether the opened sink looks records up (matcher.Directory);
// a file or webhook sink is not opened here and has no directory.
func checkSink(ctx context.Context, r *checkReport, cfg *config.Config, sinkTest bool) (hasDirectory bool) {
	subj := "sink " + cfg.Sink.Type
	settings := cfg.SinkSettings()
	switch cfg.Sink.Type {
	case "jsonl":
		checkJSONL(r, subj, settings)
	case "webhook":
		checkWebhook(ctx, r, subj, settings, sinkTest)
	default:
		return checkCRM(ctx, r, subj, cfg)
	}
	return false
}

// checkJSONL proves the file can be appended to, or created, without
// writing to it: opening the sink itself would take its lock from a
// running daemon and index the whole file.
func checkJSONL(r *checkReport, subj string, settings map[string]any) {
	c, err := jsonl.ParseSettings(settings)
	if err != nil {
		r.fail(subj, "%v", err)
		return
	}
	fi, err := os.Stat(c.Path)
	switch {
	case err == nil && fi.IsDir():
		r.fail(subj, "%s is a directory", c.Path)
	case err == nil:
		f, err := os.OpenFile(c.Path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			r.fail(subj, "cannot append to %s: %v", c.Path, errors.Unwrap(err))
			return
		}
		f.Close()
		r.pass(subj, "%s is writable (%s)", c.Path, plural(int(fi.Size()), "byte"))
	case errors.Is(err, fs.ErrNotExist):
		// The sink creates missing directories: test the nearest one
		// that exists.
		dir := filepath.Dir(c.Path)
		for {
			if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
				break
			}
			dir = filepath.Dir(dir)
		}
		f, err := os.CreateTemp(dir, ".mailsync-check-*")
		if err != nil {
			r.fail(subj, "cannot create %s: %v", c.Path, err)
			return
		}
		f.Close()
		os.Remove(f.Name())
		r.pass(subj, "%s does not exist yet and can be created", c.Path)
	default:
		r.fail(subj, "%v", err)
	}
}

// checkWebhook reads the secret, reaches the endpoint (TCP, and TLS with
// certificate verification for https) and, with sinkTest, sends one signed
// test delivery. Only scheme and host are printed: the path or query may
// hold a token.
func checkWebhook(ctx context.Context, r *checkReport, subj string, settings map[string]any, sinkTest bool) {
	wc, err := webhook.ParseSettings(settings)
	if err != nil {
		r.fail(subj, "%v", err)
		return
	}
	client, err := webhook.New(wc)
	if err != nil {
		r.fail(subj, "%v", err)
		return
	}
	defer client.Close()
	r.pass(subj, "signing secret read")
	u, err := url.Parse(wc.URL)
	if err != nil {
		r.fail(subj, "url: not a valid URL")
		return
	}
	endpoint := u.Scheme + "://" + u.Host
	if err := reachEndpoint(ctx, u, wc.CAFile); err != nil {
		r.fail(subj, "%s: %v", endpoint, err)
		return
	}
	if u.Scheme == "https" {
		r.pass(subj, "%s reachable, certificate verified", endpoint)
	} else {
		r.pass(subj, "%s reachable (http, loopback only)", endpoint)
	}
	if !sinkTest {
		return
	}
	var id [8]byte
	rand.Read(id[:])
	msg := &sink.Message{
		Key:     "mailsync-check-" + hex.EncodeToString(id[:]),
		Event:   sink.EventType("test"),
		Date:    time.Now().UTC().Truncate(time.Second),
		Subject: "mailsync check: test delivery",
	}
	dctx, cancel := context.WithTimeout(ctx, wc.Timeout+5*time.Second)
	defer cancel()
	receipt, err := sink.DeliverOne(dctx, client, msg)
	if err != nil {
		r.fail(subj, "test delivery: %v", err)
		return
	}
	r.pass(subj, "signed test delivery %s accepted (receipt %s)", msg.Key, receipt.Activity)
}

// reachEndpoint opens a TCP connection to the webhook's host and, for
// https, completes a verified TLS handshake. Nothing is sent.
func reachEndpoint(ctx context.Context, u *url.URL, caFile string) error {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return errors.New(plainConnectError(err))
	}
	defer conn.Close()
	if u.Scheme != "https" {
		return nil
	}
	tc := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
		}
	}
	if err := tls.Client(conn, tc).HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls: %s", describeCertError(u.Hostname(), err))
	}
	return nil
}

// describeCertError says which certificate problem a handshake hit.
func describeCertError(name string, err error) string {
	var (
		ua x509.UnknownAuthorityError
		ci x509.CertificateInvalidError
		hn x509.HostnameError
	)
	switch {
	case errors.As(err, &ua):
		return "certificate signed by unknown authority (set sink.webhook.ca_file if it is a private CA)"
	case errors.As(err, &ci) && ci.Reason == x509.Expired && ci.Cert != nil && time.Now().After(ci.Cert.NotAfter):
		return fmt.Sprintf("certificate for %s expired on %s", name, ci.Cert.NotAfter.UTC().Format(time.DateOnly))
	case errors.As(err, &hn):
		return fmt.Sprintf("certificate is not valid for %s", name)
	}
	return err.Error()
}

// checkCRM parses the adapter's section as the daemon does and, for a CRM
// adapter, opens it and runs its own check: log in and verify the rights
// delivery needs.
func checkCRM(ctx context.Context, r *checkReport, subj string, cfg *config.Config) (hasDirectory bool) {
	if !sink.Shared(cfg.Sink.Type) {
		r.pass(subj, "config valid (check has no reachability test for this sink)")
		return false
	}
	log := newLogger(config.Log{Level: "error", Format: "text"}, os.Stderr)
	tokens, closeTokens, held, err := checkTokens(cfg)
	switch {
	case err != nil:
		r.fail(subj, "%v", err)
		return false
	case held:
		r.pass(subj, "config valid; its OAuth2 grant is in the state file, which the running mailsync holds: mailsync status shows whether the CRM accepts it")
		return false
	}
	defer closeTokens()
	s, err := openSink(ctx, cfg, log, &sink.MemoryKV{}, nil, tokens)
	if err != nil {
		r.fail(subj, "%v", err)
		return false
	}
	defer s.Close()
	_, hasDirectory = s.(matcher.Directory)
	what := "config valid"
	if c, ok := s.(sink.Checker); ok {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := c.Check(cctx); err != nil {
			r.fail(subj, "%v", err)
			return hasDirectory
		}
		what = "logged in, rights verified"
	}
	if hasDirectory {
		what += "; the matcher looks records up in it"
	}
	r.pass(subj, "%s", what)
	return hasDirectory
}

// checkTokens opens, for an adapter that keeps its grant in the state
// file, that file as the daemon would (the daemon is stopped), so check
// refreshes and stores exactly as run would; held reports that a running
// daemon holds it.
func checkTokens(cfg *config.Config) (tokens sink.TokenStore, closeFn func(), held bool, err error) {
	closeFn = func() {}
	lc, err := sinkLogin(cfg)
	if err != nil || lc == nil || !lc.Stored {
		return nil, closeFn, false, err
	}
	var st *store.Store
	if _, serr := os.Stat(cfg.State); serr == nil {
		st, err = store.Open(cfg.State, store.Options{Timeout: 200 * time.Millisecond})
		var iu *store.InUseError
		if errors.As(err, &iu) {
			return nil, closeFn, true, nil
		}
		if err != nil {
			return nil, closeFn, false, err
		}
		closeFn = func() { st.Close() }
	}
	t, err := sinkTokens(cfg, st) // without a state file: no grant yet, which the adapter says
	if err != nil {
		closeFn()
		return nil, func() {}, false, err
	}
	return tokenStore(t), closeFn, false, nil
}
