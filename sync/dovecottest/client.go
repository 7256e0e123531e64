package dovecottest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// helperTimeout bounds one helper session (Append, Flags, ...): when it
// passes the connection is closed, so a wedged server fails the test instead
// of hanging it.
const helperTimeout = time.Minute

// Dial returns a client logged in as user on the plain port. It is logged
// out and closed in t.Cleanup.
func (s *Server) Dial(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	return s.DialOptions(t, user, nil)
}

// DialOptions is Dial with client options, e.g. an UnilateralDataHandler to
// watch IDLE updates.
func (s *Server) DialOptions(t testing.TB, user string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := s.login(user, opts)
	if err != nil {
		t.Fatalf("dovecottest: %v", err)
	}
	t.Cleanup(func() { closeClient(c) })
	return c
}

// TLSConfig returns a client TLS configuration that trusts the instance's CA
// and verifies the name 127.0.0.1; nil without WithTLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.CACertPEM == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CACertPEM)
	return &tls.Config{RootCAs: pool, ServerName: s.Host(), MinVersion: tls.VersionTLS12}
}

func (s *Server) login(user string, opts *imapclient.Options) (*imapclient.Client, error) {
	pass, ok := s.opts.users[user]
	if !ok {
		return nil, fmt.Errorf("unknown user %q", user)
	}
	c, err := imapclient.DialInsecure(s.Addr(), opts)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.Addr(), err)
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	return c, nil
}

// closeClient logs out politely but never waits long for it.
func closeClient(c *imapclient.Client) {
	stop := time.AfterFunc(5*time.Second, func() { c.Close() })
	defer stop.Stop()
	_ = c.Logout().Wait()
	c.Close()
}

// session runs fn on a fresh connection for user, bounded by helperTimeout.
func (s *Server) session(user string, fn func(c *imapclient.Client) error) error {
	c, err := s.login(user, nil)
	if err != nil {
		return err
	}
	timer := time.AfterFunc(helperTimeout, func() { c.Close() })
	defer timer.Stop()
	defer closeClient(c)
	return fn(c)
}

// Append stores raw in folder for user and returns its UID. The folder is
// created first if the server answers TRYCREATE.
func (s *Server) Append(t testing.TB, user, folder string, raw []byte, flags ...imap.Flag) imap.UID {
	t.Helper()
	var uid imap.UID
	err := s.session(user, func(c *imapclient.Client) error {
		data, err := appendOnce(c, folder, raw, flags)
		var ierr *imap.Error
		if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeTryCreate {
			if err := c.Create(folder, nil).Wait(); err != nil {
				return fmt.Errorf("create %q: %w", folder, err)
			}
			data, err = appendOnce(c, folder, raw, flags)
		}
		if err != nil {
			return err
		}
		uid = data.UID
		return nil
	})
	if err != nil {
		t.Fatalf("dovecottest: append to %s/%q: %v", user, folder, err)
	}
	if uid == 0 {
		t.Fatalf("dovecottest: append to %s/%q: server returned no APPENDUID", user, folder)
	}
	return uid
}

func appendOnce(c *imapclient.Client, folder string, raw []byte, flags []imap.Flag) (*imap.AppendData, error) {
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		return nil, fmt.Errorf("write literal: %w", err)
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("close literal: %w", err)
	}
	return cmd.Wait()
}

// CreateFolder creates folder (and missing parents) for user; an existing
// folder is fine.
func (s *Server) CreateFolder(t testing.TB, user, name string) {
	t.Helper()
	err := s.session(user, func(c *imapclient.Client) error { return createIfMissing(c, name) })
	if err != nil {
		t.Fatalf("dovecottest: create %s/%q: %v", user, name, err)
	}
}

func createIfMissing(c *imapclient.Client, name string) error {
	err := c.Create(name, nil).Wait()
	var ierr *imap.Error
	if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodeAlreadyExists {
		return nil
	}
	return err
}

// Status returns STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)
// of folder for user.
func (s *Server) Status(t testing.TB, user, folder string) *imap.StatusData {
	t.Helper()
	var data *imap.StatusData
	err := s.session(user, func(c *imapclient.Client) error {
		var err error
		data, err = c.Status(folder, &imap.StatusOptions{
			NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, HighestModSeq: true,
		}).Wait()
		return err
	})
	if err != nil {
		t.Fatalf("dovecottest: status %s/%q: %v", user, folder, err)
	}
	return data
}

// Flags returns the flags of every message in folder, read with EXAMINE so
// nothing (not even \Recent) changes. \Recent is left out of the result: it
// depends on which session looked first, not on the message.
func (s *Server) Flags(t testing.TB, user, folder string) map[imap.UID][]imap.Flag {
	t.Helper()
	out := make(map[imap.UID][]imap.Flag)
	err := s.session(user, func(c *imapclient.Client) error {
		sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("examine: %w", err)
		}
		if sel.NumMessages == 0 {
			return nil
		}
		var all imap.UIDSet
		all.AddRange(1, 0) // 1:*
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			return fmt.Errorf("fetch flags: %w", err)
		}
		for _, m := range msgs {
			flags := make([]imap.Flag, 0, len(m.Flags))
			for _, f := range m.Flags {
				if f != "\\Recent" {
					flags = append(flags, f)
				}
			}
			out[m.UID] = flags
		}
		return nil
	})
	if err != nil {
		t.Fatalf("dovecottest: flags of %s/%q: %v", user, folder, err)
	}
	return out
}
