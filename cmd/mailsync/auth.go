package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/oauth"
)

func (m *Main) authCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Log OAuth2 mailboxes in and show the state of their tokens",
		Long: `Auth manages the OAuth2 grants of accounts with auth: oauth2 (Gmail,
Microsoft 365). "auth login" runs the provider's device flow once per account:
open the URL it prints, enter the code, and the refresh token is stored
encrypted in the state file (tokens.key_file). "auth status" shows each
account's state, expiry and last refresh, never a token.`,
		Example: `  mailsync auth login -a support
  mailsync auth status
  mailsync auth status --json`,
	}
	cmd.AddCommand(m.authLoginCommand(), m.authStatusCommand())
	return cmd
}

// defaultLoginWait bounds how long login waits for a running daemon to
// release the state file once the person has signed in.
const defaultLoginWait = 2 * time.Minute

func (m *Main) authLoginCommand() *cobra.Command {
	var (
		cfgPath, account, rtFile string
		wait, signIn             time.Duration
		toSink                   bool
	)
	cmd := &cobra.Command{
		Use:   "login (--account ID | --sink)",
		Short: "Sign an OAuth2 mailbox (device code) or the CRM (browser) in and store the token",
		Long: `Login signs an auth: oauth2 account in with the OAuth 2.0 device authorization
grant: it prints a URL and a code, you open the URL on any device, sign in as
the mailbox owner and enter the code. The token is stored encrypted in the
state file (tokens.key_file). With --refresh-token-file it imports a refresh
token obtained elsewhere instead, checked by one refresh.

The state file is locked while mailsync runs. Login asks the identity
provider first, then saves: if the daemon holds the file, stop it (e.g.
systemctl stop mailsync) and login saves the token the moment it is free,
waiting up to --wait; then start mailsync again. Nothing is saved if the
wait runs out: run login again.

With --sink it signs the CRM in (HubSpot or Salesforce with an oauth2 section
and no refresh_token_file): it prints a URL to open in a browser, listens on
the section's redirect_url (http://localhost:8976/callback by default; on a
remote server forward it with ssh -L 8976:localhost:8976), and stores the
refresh token the CRM returns, encrypted, in the state file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case toSink && account != "":
				return &exitError{code: exitUsage, err: errors.New("give --account or --sink, not both")}
			case toSink:
				cfg, err := config.Load(cfgPath)
				if err != nil {
					return &exitError{code: exitUsage, err: err}
				}
				return m.loginSink(cmd.Context(), cmd.OutOrStdout(), cfg, rtFile, wait, signIn)
			case account == "":
				return &exitError{code: exitUsage, err: errors.New("give --account ID (a mailbox) or --sink (the CRM)")}
			}
			cfg, acct, err := loadOAuthAccount(cfgPath, account)
			if err != nil {
				return err
			}
			if acct.OAuth2.EffectiveGrant() == config.GrantClientCredentials {
				return &exitError{code: exitUsage, err: fmt.Errorf("account %s uses the client_credentials grant and needs no login: mailsync fetches its tokens with the client secret", acct.ID)}
			}
			// Refuse before the person signs in, not after.
			if _, err := cfg.Tokens.Key(); err != nil {
				return err
			}
			return m.login(cmd.Context(), cmd.OutOrStdout(), cfg, acct, rtFile, wait)
		},
	}
	configFlag(cmd, &cfgPath, "configuration file")
	cmd.Flags().StringVarP(&account, "account", "a", "", "id of the account to sign in (required)")
	cmd.Flags().BoolVar(&toSink, "sink", false, "sign the configured CRM in (authorization code in a browser)")
	cmd.Flags().StringVar(&rtFile, "refresh-token-file", "", "import the refresh token in this file instead of signing in")
	cmd.Flags().DurationVar(&wait, "wait", defaultLoginWait, "how long to wait for a running mailsync to release the state file")
	cmd.Flags().DurationVar(&signIn, "sign-in-timeout", 10*time.Minute, "with --sink: how long to wait for the browser sign-in")
	return cmd
}

func loadOAuthAccount(cfgPath, id string) (*config.Config, *config.Account, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, nil, &exitError{code: exitUsage, err: err}
	}
	acct, ok := cfg.Account(id)
	if !ok {
		return nil, nil, &exitError{code: exitUsage, err: fmt.Errorf("no account %q in %s", id, cfgPath)}
	}
	if acct.Auth != "oauth2" {
		return nil, nil, &exitError{code: exitUsage, err: fmt.Errorf("account %s uses auth: %s, not oauth2", id, acct.Auth)}
	}
	return cfg, acct, nil
}

func (m *Main) login(ctx context.Context, out io.Writer, cfg *config.Config, acct *config.Account, rtFile string, wait time.Duration) error {
	prov, err := oauth.NewProvider(acct, nil)
	if err != nil {
		return err
	}
	if pid, busy := stateInUse(cfg.State); busy {
		fmt.Fprintf(out, "Note: mailsync is running (%s) and holds the state file. Sign in now; the token is saved as soon as it stops.\n\n", pidText(pid))
	}
	var g *oauth.Grant
	if rtFile != "" {
		b, err := os.ReadFile(rtFile)
		if err != nil {
			return fmt.Errorf("--refresh-token-file: %w", err)
		}
		if g, err = prov.Refresh(ctx, strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("the refresh token does not work: %w", err)
		}
	} else {
		dc, err := prov.StartDevice(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "To sign in account %s (%s), open\n\n    %s\n\nand enter the code\n\n    %s\n\n", acct.ID, acct.Username, dc.VerificationURI, dc.UserCode)
		if dc.VerificationURIComplete != "" {
			fmt.Fprintf(out, "(or open %s, which includes the code)\n\n", dc.VerificationURIComplete)
		}
		if !dc.Expiry.IsZero() {
			fmt.Fprintf(out, "Waiting for you to sign in (the code expires in %s)...\n", time.Until(dc.Expiry).Round(time.Second))
		}
		if g, err = prov.WaitDevice(ctx, dc); err != nil {
			return err
		}
	}
	st, err := openStoreWaiting(ctx, out, cfg.State, wait)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := oauth.OpenVault(st, &cfg.Tokens)
	if err != nil {
		return err
	}
	if err := v.Login(acct, g); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed in: the token for account %s is stored", acct.ID)
	if v.Plaintext() {
		fmt.Fprint(out, " (unencrypted: tokens.allow_plaintext)")
	}
	fmt.Fprintf(out, ". Start or restart mailsync to use it.\n")
	return nil
}

// stateInUse reports whether another process holds the state file.
func stateInUse(path string) (pid int, busy bool) {
	st, err := store.Open(path, store.Options{Timeout: 200 * time.Millisecond, ReadOnly: true})
	var iu *store.InUseError
	if errors.As(err, &iu) {
		return iu.PID, true
	}
	if err == nil {
		_ = st.Close()
	}
	return 0, false
}

func pidText(pid int) string {
	if pid == 0 {
		return "pid unknown"
	}
	return fmt.Sprintf("pid %d", pid)
}

// openStoreWaiting opens the state file for writing, waiting up to wait
// for a running daemon to release it.
func openStoreWaiting(ctx context.Context, out io.Writer, path string, wait time.Duration) (*store.Store, error) {
	deadline := time.Now().Add(wait)
	told := false
	for {
		st, err := store.Open(path, store.Options{Timeout: time.Second})
		var iu *store.InUseError
		if !errors.As(err, &iu) {
			return st, err
		}
		if !told {
			fmt.Fprintf(out, "The state file %s is in use by mailsync (%s). Stop it (e.g. systemctl stop mailsync) to save the token; waiting up to %s...\n",
				path, pidText(iu.PID), wait)
			told = true
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the state file stayed in use for %s; the token was NOT saved: stop mailsync and run this command again: %w", wait, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the token was NOT saved: %w", context.Cause(ctx))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (m *Main) authStatusCommand() *cobra.Command {
	var (
		cfgPath string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the OAuth2 token state of every oauth2 account and of the CRM (never the tokens)",
		Long: `Status reads the state file and shows, per oauth2 account: the token state (ok,
expiring, reauth needed, missing, unreadable), when the access token expires,
when a token was last obtained and how old the refresh token is.

It reads the state file, which a running mailsync locks; while it runs, see
the mailsync_oauth_* metrics instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			statuses, err := readTokenStatus(cfg)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(statuses)
			}
			printTokenStatus(cmd.OutOrStdout(), statuses, time.Now())
			return nil
		},
	}
	configFlag(cmd, &cfgPath, "configuration file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func readTokenStatus(cfg *config.Config) ([]oauth.TokenStatus, error) {
	var st *store.Store
	if _, err := os.Stat(cfg.State); err == nil {
		st, err = store.Open(cfg.State, store.Options{ReadOnly: true, Timeout: time.Second})
		var iu *store.InUseError
		if errors.As(err, &iu) {
			return nil, fmt.Errorf("mailsync is running (%s) and holds the state file; token status is read from it, so stop mailsync first, or watch the mailsync_oauth_* metrics", pidText(iu.PID))
		}
		if err != nil {
			return nil, err
		}
		defer st.Close()
	}
	key, err := cfg.Tokens.Key()
	if err != nil {
		return nil, err
	}
	v, err := oauth.NewVault(st, key)
	if err != nil {
		return nil, err
	}
	out := []oauth.TokenStatus{}
	now := time.Now()
	for i := range cfg.Accounts {
		if cfg.Accounts[i].Auth == "oauth2" {
			out = append(out, v.Status(&cfg.Accounts[i], now))
		}
	}
	lc, err := sinkLogin(cfg)
	if err != nil {
		return nil, err
	}
	if lc != nil && lc.Stored {
		out = append(out, v.Sink(cfg.Sink.Type, lc.OAuth2.ClientID, lc.OAuth2.Endpoint.TokenURL).Status())
	}
	return out, nil
}

func printTokenStatus(w io.Writer, statuses []oauth.TokenStatus, now time.Time) {
	if len(statuses) == 0 {
		fmt.Fprintln(w, "No account uses auth: oauth2, and the sink keeps no OAuth2 grant.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tSTATE\tGRANT\tACCESS TOKEN EXPIRES\tLAST REFRESH\tREFRESH TOKEN AGE")
	for _, s := range statuses {
		age := "-"
		if !s.RefreshIssued.IsZero() {
			age = roughDuration(s.RefreshAge)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Account, s.State, s.Grant, relTime(s.AccessExpiry, now), relTime(s.LastRefresh, now), age)
	}
	_ = tw.Flush()
	for _, s := range statuses {
		if s.Detail != "" {
			fmt.Fprintf(w, "%s: %s\n", s.Account, s.Detail)
		}
	}
}

// relTime prints t with its distance from now: "2026-03-02 10:00 (in 42m)".
func relTime(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now)
	rel := "in " + roughDuration(d)
	if d < 0 {
		rel = roughDuration(-d) + " ago"
	}
	return t.Local().Format("2006-01-02 15:04") + " (" + rel + ")"
}

// roughDuration prints d to its two largest units: 3d4h, 42m, 15s.
func roughDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
