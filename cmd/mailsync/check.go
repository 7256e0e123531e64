package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/worker"
)

// checkAccountTimeout bounds every check of one account together.
const checkAccountTimeout = 90 * time.Second

// checkAuthenticator builds the login for accounts whose auth is not
// "password" (OAuth2 sets it); nil means such accounts fail the login check.
var checkAuthenticator func(acct *config.Account) (imapconn.Authenticator, error)

func (m *Main) checkCommand() *cobra.Command {
	var (
		cfgPath  string
		account  string
		sinkTest bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the config, the IMAP accounts and the sink",
		Long: `Check validates the config file, then for every account connects, verifies
TLS, logs in, lists the server's capabilities and resolves each configured
folder; finally it checks the sink (jsonl: the file is writable; webhook: the
endpoint is reachable). It prints one PASS, WARN or FAIL line per check and
exits non-zero if any check failed. It never prints a secret.

--sink-test also sends one signed test delivery to a webhook sink (event
"test", key mailsync-check-...). The receiver should accept and ignore it.`,
		Example: `  mailsync check --config /etc/mailsync/config.yaml
  mailsync check -a sales
  mailsync check --sink-test`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := &checkReport{w: m.Stdout}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				var ce *config.Error
				if !errors.As(err, &ce) {
					r.usageFail("config", "%v", err)
					return r.result()
				}
				for _, p := range ce.Problems {
					r.usageFail("config", "%s: %v", cfgPath, p)
				}
				return r.result()
			}
			accounts := cfg.Accounts
			if account != "" {
				a, ok := cfg.Account(account)
				if !ok {
					return &exitError{code: exitUsage, err: fmt.Errorf("--account %s: no such account in %s", account, cfgPath)}
				}
				accounts = []config.Account{*a}
			}
			r.pass("config", "%s is valid (%s, sink %s)", cfgPath, plural(len(cfg.Accounts), "account"), cfg.Sink.Type)
			checkDescriptors(r, cfg)
			// What run would refuse, from the function run calls.
			skip := map[string]bool{}
			for _, f := range preflight(cfg, daemonAnswers(cmd.Context(), cfg)) {
				switch {
				case f.warn:
					r.warn(f.subject, "%v", f.err)
				case f.usage:
					r.usageFail(f.subject, "%v", f.err)
				default:
					r.fail(f.subject, "%v", f.err)
				}
				if !f.warn {
					skip[f.subject] = true // its own check would say it again
				}
			}
			for i := range accounts {
				if !skip[accounts[i].ID] {
					checkAccount(cmd.Context(), r, cfg, &accounts[i])
				}
				checkSMTP(cmd.Context(), r, &accounts[i])
			}
			hasDir := false
			if subj := "sink " + cfg.Sink.Type; !skip[subj] {
				hasDir = checkSink(cmd.Context(), r, cfg, sinkTest)
			}
			for _, w := range directoryWarnings(cfg, hasDir) {
				r.warn("matcher", "%v", w)
			}
			for _, n := range startNowNotes(cfg) {
				r.note(n.account, "%s", n.text)
			}
			checkSMTPFront(r, cfg)
			return r.result()
		},
	}
	configFlag(cmd, &cfgPath, "configuration file")
	cmd.Flags().StringVarP(&account, "account", "a", "", "check only this account")
	cmd.Flags().BoolVar(&sinkTest, "sink-test", false, "send a signed test delivery to a webhook sink")
	return cmd
}

// checkReport prints result lines and counts failures.
type checkReport struct {
	w             io.Writer
	checks, fails int
	// usage: a failure is the config's fault (exit 2, as run's).
	usage bool
}

func (r *checkReport) line(verdict, subject, format string, args ...any) {
	r.checks++
	fmt.Fprintf(r.w, "%-4s  %s: %s\n", verdict, subject, oneLine(fmt.Sprintf(format, args...)))
}

func (r *checkReport) pass(subject, format string, args ...any) {
	r.line("PASS", subject, format, args...)
}

// warn is a finding that works but not as well as it could; not a failure.
func (r *checkReport) warn(subject, format string, args ...any) {
	r.line("WARN", subject, format, args...)
}

func (r *checkReport) fail(subject, format string, args ...any) {
	r.fails++
	r.line("FAIL", subject, format, args...)
}

// usageFail is a failure of the config itself: run refuses it with exit 2.
func (r *checkReport) usageFail(subject, format string, args ...any) {
	r.usage = true
	r.fail(subject, format, args...)
}

// note says what a setting will do; it is not a check.
func (r *checkReport) note(subject, format string, args ...any) {
	fmt.Fprintf(r.w, "%-4s  %s: %s\n", "NOTE", subject, oneLine(fmt.Sprintf(format, args...)))
}

func (r *checkReport) result() error {
	if r.fails == 0 {
		return nil
	}
	code := exitFailure
	if r.usage {
		code = exitUsage
	}
	return &exitError{code: code, err: fmt.Errorf("%d of %s failed", r.fails, plural(r.checks, "check"))}
}

// probeAuth wraps the real login to learn how far Dial got: Dial calls it
// only after the TLS handshake and the greeting succeeded.
type probeAuth struct {
	imapconn.Authenticator
	reached bool
}

func (p *probeAuth) Authenticate(ctx context.Context, c *imapclient.Client, username string) error {
	p.reached = true
	return p.Authenticator.Authenticate(ctx, c, username)
}

// checkAccount connects, verifies TLS, logs in, reports capabilities and
// resolves the folders, one line each; it stops at the first step that
// makes the rest impossible.
func checkAccount(ctx context.Context, r *checkReport, cfg *config.Config, acct *config.Account) {
	ctx, cancel := context.WithTimeout(ctx, checkAccountTimeout)
	defer cancel()
	subj := acct.ID
	auth, err := accountAuth(acct)
	if err != nil {
		r.fail(subj, "%v", err)
		return
	}
	if auth == nil {
		// Connect and verify TLS anyway; stop before logging in.
		auth = stopBeforeLogin{}
	}
	probe := &probeAuth{Authenticator: auth}
	opts := imapconn.Options{
		Host: acct.Host, Port: acct.Port, TLS: acct.TLS, CAFile: acct.CAFile,
		Username: acct.Username, Auth: probe,
		CommandTimeout: min(cfg.Sync.CommandTimeout, 30*time.Second),
		DialTimeout:    10 * time.Second,
	}
	conn, err := imapconn.Dial(ctx, opts)
	if !reportDial(r, subj, acct, probe.reached, err) {
		return
	}
	defer conn.Logout(ctx)
	reportCaps(r, subj, conn.Caps(), cfg)
	boxes, err := worker.ListMailboxes(ctx, conn)
	if err != nil {
		r.fail(subj, "list folders: %v", err)
		return
	}
	for _, entry := range acct.Folders {
		name, _, err := worker.ResolveFolder(entry, boxes)
		if err != nil {
			r.fail(subj, "%v", err)
			continue
		}
		n, err := folderMessages(ctx, conn, name)
		if err != nil {
			r.fail(subj, "folder %s: status: %v", describeEntry(entry, name), err)
			continue
		}
		r.pass(subj, "folder %s: found, %s", describeEntry(entry, name), plural(int(n), "message"))
	}
}

func accountAuth(acct *config.Account) (imapconn.Authenticator, error) {
	if acct.Auth == "password" {
		// Read now so a missing secret is its own line, naming its source.
		if _, err := acct.Password(); err != nil {
			return nil, err
		}
		return imapconn.Password(acct.Password), nil
	}
	if checkAuthenticator == nil {
		return nil, nil
	}
	return checkAuthenticator(acct)
}

// errLoginNotChecked ends a Dial for an account whose login check cannot
// log in from outside the daemon.
var errLoginNotChecked = errors.New("login not checked")

// stopBeforeLogin is the Authenticator of such accounts: Dial has verified
// TLS and read the greeting by the time it is called.
type stopBeforeLogin struct{}

func (stopBeforeLogin) Authenticate(context.Context, *imapclient.Client, string) error {
	return errLoginNotChecked
}

// reportDial turns Dial's outcome into connect, TLS and login lines and
// says whether the account is logged in.
func reportDial(r *checkReport, subj string, acct *config.Account, reachedLogin bool, err error) bool {
	mode := map[string]string{imapconn.TLSImplicit: "implicit TLS", imapconn.TLSStartTLS: "STARTTLS", imapconn.TLSNone: "no TLS"}[acct.TLS]
	var te *imapconn.TLSError
	switch {
	case err == nil || reachedLogin:
		r.pass(subj, "connect: %s (%s)", acct.Addr(), mode)
		if acct.TLS == imapconn.TLSNone {
			r.warn(subj, "tls: none; the password crosses the network in clear text (allowed to loopback only)")
		} else {
			r.pass(subj, "tls: certificate verified")
		}
	case errors.As(err, &te):
		r.pass(subj, "connect: %s (%s)", acct.Addr(), mode)
		r.fail(subj, "tls: %s", te.Msg)
		return false
	case imapconn.IsTLSError(err):
		r.pass(subj, "connect: %s (%s)", acct.Addr(), mode)
		r.fail(subj, "tls: %v", err)
		return false
	case errors.Is(err, imapconn.ErrNoStartTLS), errors.Is(err, imapconn.ErrPreauth):
		r.pass(subj, "connect: %s (%s)", acct.Addr(), mode)
		r.fail(subj, "tls: %v", err)
		return false
	default:
		r.fail(subj, "connect: %s", plainConnectError(err))
		return false
	}
	if err == nil {
		r.pass(subj, "login: logged in as %s", acct.Username)
		return true
	}
	if errors.Is(err, errLoginNotChecked) {
		r.warn(subj, "login: not checked for auth %s (its tokens live in the daemon's state file; `mailsync status` shows whether it logs in), nor the folders", acct.Auth)
		return false
	}
	var ie *imap.Error
	switch {
	case imapconn.IsAuthFailure(err) && errors.As(err, &ie):
		refusal := string(ie.Code)
		if ie.Text != "" {
			refusal = strings.TrimSpace(refusal + " " + ie.Text)
		}
		r.fail(subj, "login refused: %s (username %s)", refusal, acct.Username)
	case imapconn.IsAuthFailure(err):
		r.fail(subj, "login refused: %v", err)
	default:
		r.fail(subj, "login: %v", err)
	}
	return false
}

// plainConnectError keeps the dial error but says what it usually means.
func plainConnectError(err error) string {
	s := err.Error()
	if p := plainError(s); p != s && !strings.HasPrefix(p, "TLS") {
		return p + " (" + s + ")"
	}
	return s
}

// checkCaps are the extensions the sync uses when offered, with what
// their absence costs.
var checkCaps = []struct {
	cap  imap.Cap
	lack string
}{
	{imap.CapIdle, "no push: folders are polled"},
	{imap.CapCondStore, "flag changes are found by full scans"},
	{imap.CapQResync, "expunges are found by full scans"},
	{imap.CapMove, ""},
	{imap.CapSpecialUse, "folder roles fall back to common names"},
	{imap.CapUIDPlus, ""},
}

func reportCaps(r *checkReport, subj string, caps imap.CapSet, cfg *config.Config) {
	var have, missing []string
	for _, c := range checkCaps {
		if caps.Has(c.cap) {
			have = append(have, string(c.cap))
		} else {
			missing = append(missing, string(c.cap))
		}
	}
	line := "capabilities: " + strings.Join(have, " ")
	if len(missing) > 0 {
		line += " (missing: " + strings.Join(missing, " ") + ")"
	}
	r.pass(subj, "%s", line)
	for _, c := range checkCaps {
		if !caps.Has(c.cap) && c.cap == imap.CapIdle {
			r.warn(subj, "no IDLE: new mail is seen by polling every %s, not at once", cfg.Sync.PollInterval)
		}
	}
}

// mailbox is a LIST entry with its SPECIAL-USE attributes.
func describeEntry(entry, name string) string {
	if entry == name {
		return "'" + name + "'"
	}
	return fmt.Sprintf("%s is '%s'", entry, name)
}

// folderMessages asks STATUS for the folder's message count, which also
// proves the account may open it.
func folderMessages(ctx context.Context, conn *imapconn.Conn, name string) (uint32, error) {
	var data *imap.StatusData
	err := conn.Do(ctx, "status", func(c *imapclient.Client) error {
		var err error
		data, err = c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
		return err
	})
	if err != nil {
		return 0, err
	}
	if data.NumMessages == nil {
		return 0, errors.New("server sent no message count")
	}
	return *data.NumMessages, nil
}
