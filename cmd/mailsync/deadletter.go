package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/sync/control"
)

func (m *Main) deadLetterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deadletter",
		Aliases: []string{"deadletters", "dl"},
		Short:   "List, retry or drop messages the CRM refused",
		Long: `Dead letters are messages the sink refused permanently (or that could not be
processed). They are parked with the reason; fix the cause, then retry them,
or drop them to record that they will not be delivered.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(m.deadLetterListCommand(),
		m.deadLetterActionCommand("retry", "Send a dead letter to the CRM again",
			func(ctx context.Context, c *control.Client, a, f string, uid uint32) error {
				return c.RetryDeadLetter(ctx, a, f, uid)
			}, "queued %s/%s uid %d for delivery again\n"),
		m.deadLetterActionCommand("drop", "Forget a dead letter (recorded as dropped)",
			func(ctx context.Context, c *control.Client, a, f string, uid uint32) error {
				return c.DropDeadLetter(ctx, a, f, uid)
			}, "dropped %s/%s uid %d\n"))
	return cmd
}

func (m *Main) deadLetterListCommand() *cobra.Command {
	var (
		flags   daemonFlags
		account string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "list [--account ID]",
		Short: "List dead letters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return flags.withClient(func(c *control.Client) error {
				dls, err := c.DeadLetters(cmd.Context(), account)
				if err != nil {
					return fmt.Errorf("dead letters: %w", err)
				}
				if asJSON {
					return writeJSON(m.Stdout, dls)
				}
				renderDeadLetters(m.Stdout, dls, time.Now())
				return nil
			})
		},
	}
	flags.add(cmd)
	cmd.Flags().StringVarP(&account, "account", "a", "", "only this account")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func renderDeadLetters(w io.Writer, dls []control.DeadLetter, now time.Time) {
	if len(dls) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tFOLDER\tUID\tWHEN\tATTEMPTS\tREASON\tSUBJECT")
	for _, d := range dls {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", d.Account, d.Folder, d.UID, ago(d.At, now), d.Attempts,
			clip(oneLine(d.Reason), 60), clip(oneLine(d.Subject), 50))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s; retry with: mailsync deadletter retry --account A --folder F --uid N\n", plural(len(dls), "dead letter"))
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (m *Main) deadLetterActionCommand(name, short string,
	act func(ctx context.Context, c *control.Client, account, folder string, uid uint32) error, done string) *cobra.Command {
	var (
		flags           daemonFlags
		account, folder string
		uid             uint32
	)
	cmd := &cobra.Command{
		Use:   name + " --account ID --folder NAME --uid N",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if uid == 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--uid must be a positive number")}
			}
			return flags.withClient(func(c *control.Client) error {
				if err := act(cmd.Context(), c, account, folder, uid); err != nil {
					return requestError(name, fmt.Sprintf("%s/%s uid %d", account, folder, uid), err)
				}
				fmt.Fprintf(m.Stdout, done, account, folder, uid)
				return nil
			})
		},
	}
	flags.add(cmd)
	cmd.Flags().StringVarP(&account, "account", "a", "", "account id (required)")
	cmd.Flags().StringVarP(&folder, "folder", "f", "", "folder name (required)")
	cmd.Flags().Uint32Var(&uid, "uid", 0, "message UID (required)")
	for _, f := range []string{"account", "folder", "uid"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}
