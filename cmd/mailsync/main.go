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

// Run executes the command line and turns errors into exit codes, in one
// place: 0 ok, 1 failure, 2 usage.
func (m *Main) Run(ctx context.Context, args []string) int {
	root := m.rootCommand()
	root.SetArgs(args)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(m.Stderr, "mailsync: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func (m *Main) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "mailsync",
		Short:         "Keep company mailboxes and a CRM in sync, both ways",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(m.runCommand(), m.demoCommand(), m.versionCommand(), m.matchCommand())
	root.AddCommand(m.statusCommand(), m.checkCommand(), m.pauseCommand(), m.resumeCommand(), m.resyncCommand(), m.reloadCommand(), m.deadLetterCommand(), m.backfillCommand())
	root.AddCommand(m.authCommand())
	root.AddCommand(m.sendCommand())
	return root
}

func (m *Main) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "mailsync %s\n", Version)
			return nil
		},
	}
}
