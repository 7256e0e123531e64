package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
	"github.com/mailsync/mailsync/sync/demo"
	"github.com/mailsync/mailsync/sync/worker"
)

func (m *Main) demoCommand() *cobra.Command {
	var (
		every   time.Duration
		dir     string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the real pipeline against a built-in demo IMAP server",
		Long: `Demo starts an in-memory IMAP server on 127.0.0.1 with two mailboxes of sample
mail, runs the real sync pipeline into a JSONL sink in a temporary directory,
prints one line per message as it is matched and delivered, then appends new
mail every few seconds so you can watch IDLE deliver it live. Ctrl-C exits.
--dir keeps the state file and the JSONL output (it is created if needed); a
later run with the same --dir adds to them.`,
		Example: "  mailsync demo\n  mailsync demo --dir ./demo --every 2s -v",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return m.runDemo(cmd.Context(), every, dir, verbose)
		},
	}
	cmd.Flags().DurationVar(&every, "every", 4*time.Second, "how often a new message arrives")
	cmd.Flags().StringVar(&dir, "dir", "", "where to keep the state file and the JSONL output (default: a new temp dir)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the daemon's own log lines too")
	return cmd
}

func (m *Main) runDemo(ctx context.Context, every time.Duration, dir string, verbose bool) error {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "mailsync-demo-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	gen, err := nextDemoGeneration(dir)
	if err != nil {
		return err
	}
	level := "error"
	if verbose {
		level = "info"
	}
	log := newLogger(config.Log{Level: level, Format: "text"}, os.Stderr)
	// A reused --dir keeps the state and the JSONL file: this run's server
	// is a new one, with new mail and a new UIDVALIDITY.
	srv, err := demo.Start(ctx, demo.Options{Logger: log, Seed: int64(gen) + 1, Generation: gen})
	if err != nil {
		return fmt.Errorf("demo server: %w", err)
	}
	defer srv.Close()

	dirFile := filepath.Join(dir, "crm-directory.csv")
	if err := os.WriteFile(dirFile, srv.Directory(), 0o600); err != nil {
		return err
	}
	cfg, err := demoConfig(srv, dir, dirFile)
	if err != nil {
		return err
	}
	p := &demoPrinter{w: m.Stdout, start: time.Now()}
	d, err := openDaemon(cfg, log, daemonOptions{observer: p.event})
	if err != nil {
		return err
	}
	defer d.close()

	fmt.Fprintf(m.Stdout, "mailsync demo\n  IMAP server  %s (users: %s)\n  CRM sink     %s\n  state file   %s\n  directory    %s\n\n",
		srv.Addr(), strings.Join(srv.Users(), ", "), cfg.SinkSettings()["path"], cfg.State, dirFile)
	fmt.Fprintf(m.Stdout, "%-8s %-22s %-5s %-10s %-9s %s\n", "TIME", "MAILBOX", "UID", "OUTCOME", "DIRECTION", "SUBJECT / LINKED RECORDS")

	liveCtx, stopLive := context.WithCancel(ctx)
	defer stopLive()
	d.runUntil(ctx, nil, func() {
		srv.AppendLive(liveCtx, every, func(user, subject string) {
			p.printf("%s  new mail arrives for %s: %q\n", p.ts(), user, subject)
		})
	})
	stopLive()
	fmt.Fprintf(m.Stdout, "\n%d delivered, %d excluded or skipped. The JSONL file and state are kept in %s\n",
		p.delivered, p.other, dir)
	return d.close()
}

// nextDemoGeneration counts the demo runs in dir: 0 for a new one.
func nextDemoGeneration(dir string) (int, error) {
	path := filepath.Join(dir, "demo-runs")
	gen := 0
	if b, err := os.ReadFile(path); err == nil {
		gen, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(gen+1)+"\n"), 0o600); err != nil {
		return 0, err
	}
	return gen, nil
}

func demoConfig(srv *demo.Server, dir, dirFile string) (*config.Config, error) {
	host, port, _ := strings.Cut(srv.Addr(), ":")
	var b strings.Builder
	fmt.Fprintf(&b, "state: %q\nsink: {type: jsonl, jsonl: {path: %q}}\n", filepath.Join(dir, "state.db"), filepath.Join(dir, "messages.jsonl"))
	fmt.Fprintf(&b, "sync: {retry_min: 200ms, retry_max: 5s, shutdown_grace: 5s}\n")
	fmt.Fprintf(&b, "matcher:\n  directory_file: %q\n  own_domains: [acme.example]\n", dirFile)
	b.WriteString("  tags: [{name: deal tag, pattern: '\\[#DEAL-(\\d+)\\]', kind: deal, id: 'DEAL-$1', in: [subject]}]\n")
	b.WriteString("accounts:\n")
	for i, user := range srv.Users() {
		env := fmt.Sprintf("MAILSYNC_DEMO_PASSWORD_%d", i)
		// The demo server's passwords are random per run and live only in
		// this process's environment.
		os.Setenv(env, srv.Password(user))
		id, _, _ := strings.Cut(user, "@")
		fmt.Fprintf(&b, "  - {id: %s, host: %s, port: %s, tls: none, username: %q, password_env: %s, folders: [INBOX, Sent], start: all, max_connections: 2}\n",
			id, host, port, user, env)
	}
	return config.Parse(strings.NewReader(b.String()))
}

// demoPrinter prints one aligned line per message outcome.
type demoPrinter struct {
	mu               stdsync.Mutex
	w                io.Writer
	start            time.Time
	delivered, other int
}

func (p *demoPrinter) ts() string { return time.Now().Format("15:04:05") }

func (p *demoPrinter) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func (p *demoPrinter) event(ev worker.Event) {
	p.mu.Lock()
	if ev.Action == "deliver" {
		p.delivered++
	} else {
		p.other++
	}
	p.mu.Unlock()
	var what string
	switch {
	case ev.Action == "deliver" && ev.Match != nil && len(ev.Match.Records) > 0:
		var recs []string
		for _, r := range ev.Match.Records {
			name := r.Name
			if name == "" {
				name = r.ID
			}
			recs = append(recs, string(r.Kind)+" "+name)
		}
		what = fmt.Sprintf("%q → %s (rule %s)", ev.Subject, strings.Join(recs, ", "), ev.Match.Rule)
	case ev.Action == "deliver":
		what = fmt.Sprintf("%q → no CRM record", ev.Subject)
	case ev.Action == "duplicate":
		what = "same message already delivered from another mailbox: provenance added, no second activity"
	default:
		what = ev.Reason
	}
	p.printf("%s %-22s %-5d %-10s %-9s %s\n", p.ts(), ev.Account+"/"+ev.Folder, ev.UID, ev.Action, ev.Direction, what)
}
