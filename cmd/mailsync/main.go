// Command mailsync keeps company mailboxes and a CRM in sync.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/config"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// exitError carries a specific exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main holds the process-wide streams so tests can run commands in-process.
type Main struct {
	Stdout, Stderr io.Writer
}

// NewMain returns a Main bound to the process's streams.
func NewMain() *Main { return &Main{Stdout: os.Stdout, Stderr: os.Stderr} }

func main() {
	// The first SIGINT/SIGTERM cancels ctx (graceful stop); run installs
	// its own handler for the second one.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(NewMain().Run(ctx, os.Args[1:]))
}

// Exit codes, the one rule every command follows (see exitCodesHelp).
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and something failed
	exitUsage   = 2 // the command line or the config file is wrong
)

const exitCodesHelp = `Exit status: 0 when the command did what it was asked; 1 when it ran and
something failed (a server, the sink, the disk, a check); 2 when the command
line or the config file is wrong (an unknown flag, a missing required flag,
a bad value, a config key or a file it names), so retrying cannot help.`

// Run executes the command line and turns errors into exit codes, in one
// place: an error before a command's own code ran is a usage error, a
// config error is a usage error, anything else is a failure unless the
// command chose its code (exitError).
func (m *Main) Run(ctx context.Context, args []string) int {
	root := m.rootCommand()
	root.SetArgs(args)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	ran := false
	markRun(root, &ran)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(m.Stderr, "mailsync: %v\n", err)
	return exitCode(err, ran)
}

func exitCode(err error, ran bool) int {
	var (
		ee *exitError
		ce *config.Error
	)
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ce), !ran:
		return exitUsage
	}
	return exitFailure
}

// markRun wraps every command's RunE to record that flag parsing and
// argument validation passed: errors cobra returns before that are usage
// errors.
func markRun(cmd *cobra.Command, ran *bool) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			*ran = true
			return run(c, args)
		}
	}
	for _, sub := range cmd.Commands() {
		markRun(sub, ran)
	}
}

// plural says "1 account", "2 accounts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// configFlag adds --config/-c, defaulting to $MAILSYNC_CONFIG, else
// defaultConfigPath.
func configFlag(cmd *cobra.Command, p *string, usage string) {
	def := defaultConfigPath
	if env := os.Getenv("MAILSYNC_CONFIG"); env != "" {
		def = env
	}
	cmd.Flags().StringVarP(p, "config", "c", def, usage+" ($MAILSYNC_CONFIG)")
}

func (m *Main) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "mailsync",
		Short: "Keep company mailboxes and a CRM in sync, both ways",
		Long: `mailsync reads company mailboxes over IMAP, decides which CRM records each
message belongs to, and hands it to the CRM exactly once.

First steps:
  mailsync demo                      see it work against a built-in demo server
  mailsync check -c config.yaml      validate a config and test every server
  mailsync run -c config.yaml        run the daemon

Every command reads its config from --config, else $MAILSYNC_CONFIG, else
` + defaultConfigPath + `.

` + exitCodesHelp,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(m.runCommand(), m.demoCommand(), m.versionCommand(), m.matchCommand())
	root.AddCommand(m.statusCommand(), m.checkCommand(), m.pauseCommand(), m.resumeCommand(), m.resyncCommand(), m.reloadCommand(), m.deadLetterCommand(), m.backfillCommand())
	root.AddCommand(m.authCommand())
	root.AddCommand(m.sendCommand())
	root.SetVersionTemplate("mailsync {{.Version}}\n")
	// Flag errors are usage errors whichever command they belong to.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	return root
}

func (m *Main) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Long: `Version prints the version of this binary (also: mailsync --version). The
running daemon's version is in the first line of "mailsync status".`,
		Example: "  mailsync version\n  mailsync --version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "mailsync %s\n", Version)
			return nil
		},
	}
}
