package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/oauth"
	"github.com/mailsync/mailsync/sync/sink"
)

// sinkLogin returns the configured adapter's sign-in settings, nil when it
// signs in otherwise (a static token, the JWT bearer flow, a file sink).
func sinkLogin(cfg *config.Config) (*sink.LoginConfig, error) {
	return sink.Login(cfg.Sink.Type, cfg.SinkSettings())
}

// sinkTokens returns the store a CRM adapter keeps its grant in, sealed in
// st with the tokens key; nil when the adapter keeps none (its refresh
// token is in a file, or it has no OAuth2 login).
func sinkTokens(cfg *config.Config, st *store.Store) (*oauth.SinkTokens, error) {
	lc, err := sinkLogin(cfg)
	if err != nil || lc == nil || !lc.Stored {
		return nil, err
	}
	v, err := oauth.OpenVault(st, &cfg.Tokens)
	if errors.Is(err, oauth.ErrNoKey) {
		return nil, fmt.Errorf("sink.%s.oauth2: the grant from mailsync auth login --sink is kept encrypted in the state file: %w", cfg.Sink.Type, err)
	}
	if err != nil {
		return nil, err
	}
	return v.Sink(cfg.Sink.Type, lc.OAuth2.ClientID, lc.OAuth2.Endpoint.TokenURL), nil
}

// readOnlyTokens lends a stored grant to a tool that cannot write the
// state file (mailsync match beside a stopped daemon, read-only): it may
// use the stored access token, but a refresh, whose result could not be
// kept, fails instead of leaving a rotated refresh token unsaved.
type readOnlyTokens struct{ *oauth.SinkTokens }

func (readOnlyTokens) SaveToken(*oauth2.Token) error {
	return errors.New("the state file is open read-only: start mailsync (or run mailsync check) to refresh the CRM grant")
}
func (readOnlyTokens) NeedsReauth(string) error { return nil }

// tokenStore converts a possibly nil *SinkTokens to the interface, so a
// nil pointer does not pass for a store.
func tokenStore(t *oauth.SinkTokens) sink.TokenStore {
	if t == nil {
		return nil
	}
	return t
}

// loginSink signs the configured CRM in with the authorization-code grant
// in a browser (or imports a refresh token from rtFile, checked by one
// refresh) and stores the grant, encrypted, in the state file.
func (m *Main) loginSink(ctx context.Context, out io.Writer, cfg *config.Config, rtFile string, wait, signIn time.Duration) error {
	lc, err := sinkLogin(cfg)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if lc == nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("sink %s has no OAuth2 sign-in: it uses a token file, the JWT bearer flow, or no CRM at all", cfg.Sink.Type)}
	}
	if !lc.Stored {
		return &exitError{code: exitUsage, err: fmt.Errorf("sink.%s.oauth2.refresh_token_file is set: the adapter reads its refresh token from that file; remove the key to keep the token from this login in the state file", cfg.Sink.Type)}
	}
	if _, err := cfg.Tokens.Key(); err != nil {
		return err // refuse before the person signs in, not after
	}
	if pid, busy := stateInUse(cfg.State); busy {
		fmt.Fprintf(out, "Note: mailsync is running (%s) and holds the state file. Sign in now; the token is saved as soon as it stops.\n\n", pidText(pid))
	}
	hc := sink.NewHTTPClient(sink.DefaultHTTPTimeout)
	var tok *oauth2.Token
	if rtFile != "" {
		b, err := os.ReadFile(rtFile)
		if err != nil {
			return fmt.Errorf("--refresh-token-file: %w", err)
		}
		tctx := context.WithValue(ctx, oauth2.HTTPClient, hc)
		if tok, err = lc.OAuth2.TokenSource(tctx, &oauth2.Token{RefreshToken: strings.TrimSpace(string(b))}).Token(); err != nil {
			return fmt.Errorf("the refresh token does not work: %w", oauth.Redact(err))
		}
		if tok.RefreshToken == "" {
			tok.RefreshToken = strings.TrimSpace(string(b))
		}
	} else {
		sctx, cancel := context.WithTimeout(ctx, signIn)
		defer cancel()
		tok, err = oauth.LoopbackLogin(sctx, lc.OAuth2, lc.PKCE, hc, func(u string) {
			fmt.Fprintf(out, "To sign %s in, open this URL in a browser and approve mailsync:\n\n    %s\n\n", cfg.Sink.Type, u)
			if lc.Hint != "" {
				fmt.Fprintf(out, "(%s)\n\n", lc.Hint)
			}
			fmt.Fprintf(out, "Waiting for the redirect to %s (up to %s)...\n", lc.OAuth2.RedirectURL, signIn)
		})
		if err != nil {
			return err
		}
	}
	st, err := openStoreWaiting(ctx, out, cfg.State, wait)
	if err != nil {
		return err
	}
	defer st.Close()
	t, err := sinkTokens(cfg, st)
	if err != nil {
		return err
	}
	if err := t.SaveToken(tok); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed in: the %s grant is stored encrypted in %s. Start or restart mailsync to use it.\n", cfg.Sink.Type, cfg.State)
	return nil
}
