package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/matcher"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/imapconn"
	"github.com/mailsync/mailsync/sync/sink"
)

func (m *Main) matchCommand() *cobra.Command {
	var (
		cfgPath, account, folder, role, since string
		keywords                              []string
		explain                               string
		dryRun, asJSON                        bool
	)
	cmd := &cobra.Command{
		Use:   "match",
		Short: "Explain or rehearse the matcher's decisions",
		Long: `match --explain FILE.eml prints what the matcher decides for one message and
why: direction, each participant and what the CRM directory returned, the
exclusions checked, the rule that fired, the records linked and the records
it would create.

match --dry-run --account ID --folder NAME [--since DATE] runs the rules over a
real folder without delivering anything and prints a summary table. DATE is
YYYY-MM-DD, an RFC 3339 time, or a number of days ago such as 90d.`,
		Example: `  mailsync match --explain message.eml -a sales
  mailsync match --explain message.eml --keyword '$CRMPrivate' --json
  mailsync match --dry-run -a sales --folder INBOX --since 90d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			switch {
			case explain != "" && dryRun:
				return &exitError{code: exitUsage, err: errors.New("use either --explain FILE or --dry-run, not both")}
			case explain != "":
				return m.matchExplain(cmd.Context(), cfg, explain, account, folder, role, keywords, asJSON)
			case dryRun:
				if account == "" || folder == "" {
					return &exitError{code: exitUsage, err: errors.New("--dry-run needs --account and --folder")}
				}
				return m.matchDryRun(cmd.Context(), cfg, account, folder, since, asJSON)
			}
			return &exitError{code: exitUsage, err: errors.New("give --explain FILE.eml or --dry-run")}
		},
	}
	f := cmd.Flags()
	configFlag(cmd, &cfgPath, "configuration file")
	f.StringVar(&explain, "explain", "", "explain the decision for this .eml file")
	f.BoolVar(&dryRun, "dry-run", false, "match a real folder without delivering")
	f.StringVarP(&account, "account", "a", "", "account whose policy applies (default: the first)")
	f.StringVar(&folder, "folder", "INBOX", "folder the message is in")
	f.StringVar(&role, "role", "", "folder role for --explain: inbox, sent, archive, junk, trash")
	f.StringSliceVar(&keywords, "keyword", nil, "IMAP keywords the message carries (e.g. $CRMPrivate)")
	f.StringVar(&since, "since", "", "with --dry-run: only messages on or after this date (YYYY-MM-DD, RFC 3339 or 90d)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// offlineMatcher builds the matcher as the daemon would. The state file
// gives the thread rule its memory; when the daemon holds it, the thread
// rule runs without it and the output says so. A CRM sink is opened for
// its directory (a file sink is left to the daemon).
func offlineMatcher(cfg *config.Config, w io.Writer) (*matcher.Matcher, func(), error) {
	log := newLogger(config.Log{Level: "error", Format: "text"}, os.Stderr)
	st, err := store.Open(cfg.State, store.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		fmt.Fprintf(w, "note: thread rule runs without the state file (%v)\n\n", err)
		st = nil
	}
	var crm sink.Sink
	if sink.Shared(cfg.Sink.Type) {
		s, err := openMatchSink(cfg, log, st)
		if err != nil {
			if st != nil {
				st.Close()
			}
			return nil, nil, err
		}
		crm = s
	}
	var threads matcher.ThreadIndex
	if st != nil {
		threads = threadIndex{st}
	}
	m, err := buildMatcherWith(cfg, threads, crm, log)
	closeFn := func() {
		if st != nil {
			st.Close()
		}
		if crm != nil {
			crm.Close()
		}
	}
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return m, closeFn, nil
}

// openMatchSink opens the CRM adapter for its directory, with its stored
// grant (read-only) when it keeps one in the state file.
func openMatchSink(cfg *config.Config, log *slog.Logger, st *store.Store) (sink.Sink, error) {
	lc, err := sinkLogin(cfg)
	if err != nil {
		return nil, err
	}
	var tokens sink.TokenStore
	if lc != nil && lc.Stored {
		if st == nil {
			return nil, fmt.Errorf("sink.%s: its OAuth2 grant is in the state file %s, which is not readable now (a running mailsync holds it): stop mailsync, or use a directory_file", cfg.Sink.Type, cfg.State)
		}
		t, err := sinkTokens(cfg, st)
		if err != nil {
			return nil, err
		}
		tokens = readOnlyTokens{t}
	}
	return openSink(context.Background(), cfg, log, &sink.MemoryKV{}, nil, tokens)
}

func pickAccount(cfg *config.Config, id string) (*config.Account, error) {
	if id == "" {
		return &cfg.Accounts[0], nil
	}
	a, ok := cfg.Account(id)
	if !ok {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("no account %q in the config", id)}
	}
	return a, nil
}

func (m *Main) matchExplain(ctx context.Context, cfg *config.Config, file, account, folder, role string, keywords []string, asJSON bool) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	acct, err := pickAccount(cfg, account)
	if err != nil {
		return err
	}
	mt, closeFn, err := offlineMatcher(cfg, m.Stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	header, body := splitMessage(raw)
	msg, _ := matcher.ParseHeader(header)
	policy := acct.Matcher
	d, err := mt.Match(ctx, matcher.Input{
		Msg: msg, Account: acct.ID, Policy: &policy, Folder: folder, FolderRole: role,
		Keywords: keywords, Body: body,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	return d.WriteText(m.Stdout)
}

// splitMessage cuts a raw message at the first empty line.
func splitMessage(raw []byte) (header, body []byte) {
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n")} {
		if i := bytes.Index(raw, sep); i >= 0 {
			return raw[:i+len(sep)], raw[i+len(sep):]
		}
	}
	return raw, nil
}

func (m *Main) matchDryRun(ctx context.Context, cfg *config.Config, account, folder, since string, asJSON bool) error {
	acct, err := pickAccount(cfg, account)
	if err != nil {
		return err
	}
	var sinceT time.Time
	if since != "" {
		if sinceT, err = parseDate(since, time.Now(), false); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("--since: %w", err)}
		}
	}
	mt, closeFn, err := offlineMatcher(cfg, m.Stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	conn, err := imapconn.Dial(ctx, imapconn.Options{
		Host: acct.Host, Port: acct.Port, TLS: acct.TLS, CAFile: acct.CAFile, Username: acct.Username,
		Auth: imapconn.Password(acct.Password), CommandTimeout: cfg.Sync.CommandTimeout,
	})
	if err != nil {
		return fmt.Errorf("account %s: %w", acct.ID, err)
	}
	defer conn.Close()
	var uids []imap.UID
	err = conn.Do(ctx, "select", func(c *imapclient.Client) error {
		if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return err
		}
		data, err := c.UIDSearch(&imap.SearchCriteria{Since: sinceT}, nil).Wait()
		if err != nil {
			return err
		}
		uids = data.AllUIDs()
		return nil
	})
	if err != nil {
		return fmt.Errorf("account %s folder %s: %w", acct.ID, folder, err)
	}
	policy := acct.Matcher
	var sum matcher.Summary
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	for len(uids) > 0 {
		chunk := uids[:min(500, len(uids))]
		uids = uids[len(chunk):]
		var bufs []*imapclient.FetchMessageBuffer
		err := conn.Do(ctx, "fetch headers", func(c *imapclient.Client) error {
			var err error
			bufs, err = c.Fetch(imap.UIDSetNum(chunk...), &imap.FetchOptions{
				UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{section},
			}).Collect()
			return err
		})
		if err != nil {
			return fmt.Errorf("account %s folder %s: %w", acct.ID, folder, err)
		}
		ins := make([]matcher.Input, 0, len(bufs))
		for _, b := range bufs {
			msg, _ := matcher.ParseHeader(b.FindBodySection(section))
			var kws []string
			for _, fl := range b.Flags {
				if !strings.HasPrefix(string(fl), `\`) {
					kws = append(kws, string(fl))
				}
			}
			ins = append(ins, matcher.Input{Msg: msg, Account: acct.ID, Policy: &policy, Folder: folder, Keywords: kws})
		}
		ds, err := mt.MatchBatch(ctx, ins)
		if err != nil {
			return err
		}
		for _, d := range ds {
			sum.Add(d)
		}
	}
	if asJSON {
		return json.NewEncoder(m.Stdout).Encode(sum)
	}
	fmt.Fprintf(m.Stdout, "dry run of %s/%s (nothing delivered)\n\n", acct.ID, folder)
	return sum.WriteText(m.Stdout)
}
