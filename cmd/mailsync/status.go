package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/store"
	"github.com/mailsync/mailsync/sync/control"
)

// defaultConfigPath is where run and every client command look for the
// config file unless --config says otherwise.
const defaultConfigPath = "/etc/mailsync/config.yaml"

// daemonFlags are the flags of every command that talks to the daemon:
// the config (to find the socket and the state file) or the socket itself.
type daemonFlags struct {
	cfgPath string
	socket  string
}

func (f *daemonFlags) add(cmd *cobra.Command) {
	configFlag(cmd, &f.cfgPath, "configuration file (names the control socket)")
	cmd.Flags().StringVar(&f.socket, "socket", "", "control socket path (default: from the config)")
}

// config loads the config file; a bad file is a usage error (exit 2).
func (f *daemonFlags) config() (*config.Config, error) {
	cfg, err := config.Load(f.cfgPath)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}

// socketPath is --socket, else the config's socket.
func (f *daemonFlags) socketPath() (string, error) {
	if f.socket != "" {
		return f.socket, nil
	}
	cfg, err := f.config()
	if err != nil {
		return "", err
	}
	return control.SocketPath(cfg), nil
}

// dial connects to the running daemon. With no daemon the error says how
// to start one; it still matches control.ErrNoDaemon.
func (f *daemonFlags) dial() (*control.Client, error) {
	path, err := f.socketPath()
	if err != nil {
		return nil, err
	}
	c, err := control.Dial(path)
	if errors.Is(err, control.ErrNoDaemon) {
		return nil, fmt.Errorf("%w; start it with `mailsync run` or `systemctl start mailsync`", err)
	}
	return c, err
}

// requestError words the daemon's answer to verb on object ("pause",
// "sales"). A refusal naming what the daemon does not have already names
// the object, so it gets the verb only: "pause: unknown account: nosuch".
func requestError(verb, object string, err error) error {
	for _, k := range []error{control.ErrUnknownAccount, control.ErrUnknownFolder, control.ErrUnknownJob, control.ErrUnknownMessage} {
		if errors.Is(err, k) {
			return fmt.Errorf("%s: %w", verb, err)
		}
	}
	return fmt.Errorf("%s %s: %w", verb, object, err)
}

// withClient runs fn with a client of the running daemon and closes it.
func (f *daemonFlags) withClient(fn func(c *control.Client) error) error {
	c, err := f.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

func (m *Main) statusCommand() *cobra.Command {
	var (
		flags  daemonFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every account and folder: state, progress, errors",
		Long: `Status asks the running daemon over its control socket. If no daemon answers,
it reads the state file directly (read-only) and says so; live fields such as
the worker state and connection count are then unknown.`,
		Example: "  mailsync status\n  mailsync status --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := m.fetchStatus(cmd.Context(), &flags)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(m.Stdout, st)
			}
			renderStatus(m.Stdout, st, time.Now())
			return nil
		},
	}
	flags.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// fetchStatus asks the daemon, or reads the state file when none answers.
func (m *Main) fetchStatus(ctx context.Context, flags *daemonFlags) (*control.Status, error) {
	path, err := flags.socketPath()
	if err != nil {
		return nil, err
	}
	c, err := control.Dial(path)
	if err == nil {
		defer c.Close()
		return c.Status(ctx)
	}
	if !errors.Is(err, control.ErrNoDaemon) {
		return nil, err
	}
	cfg, cerr := flags.config()
	if cerr != nil {
		return nil, cerr
	}
	return offlineStatus(cfg, path)
}

// offlineStatus reads what the state file knows. A daemon holding the file
// while not answering on the socket is reported as such: reading around it
// would hide a real problem.
func offlineStatus(cfg *config.Config, socket string) (*control.Status, error) {
	if _, err := os.Stat(cfg.State); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no daemon answers on %s and the state file %s does not exist yet: mailsync has not run with this config", socket, cfg.State)
	}
	st, err := store.Open(cfg.State, store.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if err != nil {
		var inUse *store.InUseError
		if errors.As(err, &inUse) {
			return nil, fmt.Errorf("%w; but no daemon answers on %s: is admin.socket (or RUNTIME_DIRECTORY) the same for the daemon and this command?", err, socket)
		}
		return nil, err
	}
	defer st.Close()
	out := &control.Status{Version: Version, StartedAt: time.Time{}, StateFile: cfg.State, Sink: cfg.Sink.Type, Offline: true}
	configured := map[string]bool{}
	for _, a := range cfg.Accounts {
		configured[a.ID] = true
	}
	err = st.View(func(tx *store.Tx) error {
		ids, err := tx.Accounts()
		if err != nil {
			return err
		}
		for id := range configured {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			a := control.AccountStatus{Account: id}
			if !configured[id] {
				a.State = "not in config"
			}
			folders, err := tx.Folders(id)
			if err != nil {
				return err
			}
			for _, f := range folders {
				fst, err := offlineFolder(tx, id, f)
				if err != nil {
					return err
				}
				a.Folders = append(a.Folders, fst)
			}
			out.Accounts = append(out.Accounts, a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	return out, nil
}

func offlineFolder(tx *store.Tx, account, folder string) (control.FolderStatus, error) {
	fst := control.FolderStatus{Folder: folder}
	cur, err := tx.Folder(account, folder)
	if err != nil {
		return fst, err
	}
	c, err := tx.Counters(account, folder)
	if err != nil {
		return fst, err
	}
	if fst.Outbox, err = tx.OutboxCount(account, folder); err != nil {
		return fst, err
	}
	if fst.DeadLetters, err = tx.DeadLetterCount(account, folder); err != nil {
		return fst, err
	}
	fst.UIDValidity, fst.LastUID, fst.UIDNext, fst.LastSync = cur.UIDValidity, cur.LastUID, cur.UIDNext, cur.LastSyncAt
	fst.Delivered, fst.Excluded, fst.Skipped = c.Delivered, c.Excluded, c.Skipped
	fst.Reasons, err = tx.Reasons(account, folder)
	return fst, err
}

// renderStatus prints the status as a header and one table: a line per
// account (state, connections, error) followed by a line per folder.
func renderStatus(w io.Writer, st *control.Status, now time.Time) {
	if st.Offline {
		fmt.Fprintln(w, "(daemon not running: read from state file)")
	} else {
		fmt.Fprintf(w, "mailsync %s, pid %d, up %s\n", st.Version, st.Pid, since(st.StartedAt, now))
		if st.Config != "" {
			fmt.Fprintf(w, "config  %s\n", st.Config)
		}
	}
	if st.StateFile != "" {
		fmt.Fprintf(w, "state   %s\n", st.StateFile)
	}
	if st.Sink != "" {
		fmt.Fprintf(w, "sink    %s\n", st.Sink)
	}
	if st.SinkHealth != "" {
		fmt.Fprintf(w, "        %s\n", st.SinkHealth)
	}
	fmt.Fprintln(w)
	if len(st.Accounts) == 0 {
		fmt.Fprintln(w, "no accounts")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tFOLDER\tSTATE\tLAST UID\tDELIVERED\tSKIPPED\tEXCLUDED\tOUTBOX\tDEAD\tLAST SYNC\tCONNS\tLAST ERROR")
	var why []string
	for _, a := range st.Accounts {
		conns := fmt.Sprint(a.Connections)
		if st.Offline {
			conns = "-"
		}
		fmt.Fprintf(tw, "%s\t\t%s\t\t\t\t\t\t\t\t%s\t%s\n", a.Account, orDash(a.State), conns, plainError(a.LastError))
		for _, f := range a.Folders {
			errText := plainError(f.LastError)
			if errText != "" && !f.LastErrorAt.IsZero() {
				errText += " (" + ago(f.LastErrorAt, now) + ")"
			}
			state := orDash(f.State)
			if f.CatchUpHelper {
				state += " (+1 connection)"
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\t%s\n", f.Folder, state,
				f.LastUID, f.Delivered, f.Skipped, f.Excluded, f.Outbox, f.DeadLetters, ago(f.LastSync, now), errText)
			if r := describeReasons(f.Reasons); r != "" {
				why = append(why, fmt.Sprintf("  %s/%s: %s", a.Account, f.Folder, r))
			}
		}
	}
	tw.Flush()
	if len(why) > 0 {
		fmt.Fprintln(w, "\nnot delivered, by reason (mailsync match --explain FILE.eml says why for one message):")
		for _, l := range why {
			fmt.Fprintln(w, l)
		}
	}
}

// describeReasons lists reason counts, most frequent first:
// "skipped no_match 6, excluded internal 2".
func describeReasons(r map[string]int64) string {
	keys := slices.Collect(maps.Keys(r))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(r[b], r[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, r[k])
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ago says how long before now t was, coarsely: "just now", "42s ago",
// "3m ago", "5h ago", "2d ago"; "never" for the zero time.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// since is an uptime: "3h12m", "2d4h".
func since(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := now.Sub(t).Round(time.Minute)
	if d < time.Minute {
		return "under a minute"
	}
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	return strings.TrimSuffix(d.String(), "0s")
}

// plainErrors rewrites the errors operators meet most into what to check;
// order matters (first match wins).
var plainErrors = []struct{ substr, plain string }{
	{"AUTHORIZATIONFAILED", "login refused: this user may not open the mailbox"},
	{"AUTHENTICATIONFAILED", "login refused: wrong username or password"},
	{"connection refused", "server refused the connection (server down or wrong port?)"},
	{"no such host", "host name not found"},
	{"i/o timeout", "server did not answer in time"},
	{"no response in", "server did not answer in time"},
	{"connection reset", "connection dropped by the server"},
	{"broken pipe", "connection dropped by the server"},
}

// plainError turns a worker's error text into plain words, at most one
// line of ~100 characters. TLS errors are already written for operators
// (imapconn.TLSError), so only their prefix is dropped.
func plainError(s string) string {
	if s == "" {
		return ""
	}
	for _, p := range plainErrors {
		if strings.Contains(s, p.substr) {
			return p.plain
		}
	}
	if i := strings.LastIndex(s, "tls: "); i >= 0 {
		s = "TLS: " + s[i+len("tls: "):]
	} else if strings.HasPrefix(s, "imap ") {
		// "imap host:port: fetch: ..." — the host is in the config.
		if _, rest, ok := strings.Cut(strings.TrimPrefix(s, "imap "), ": "); ok {
			s = rest
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 100 {
		s = string(r[:99]) + "…"
	}
	return s
}

// writeJSON prints v indented, for --json flags.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
