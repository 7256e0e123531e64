package main

import (
	"fmt"

	"github.com/mailsync/mailsync/sync/control"

	"github.com/spf13/cobra"
)

func (m *Main) pauseCommand() *cobra.Command {
	var (
		flags   daemonFlags
		account string
	)
	cmd := &cobra.Command{
		Use:   "pause --account ID",
		Short: "Stop syncing an account until it is resumed",
		Long: `Pause closes the account's IMAP connections and stops its workers; nothing is
fetched or delivered for it until "mailsync resume". The pause lasts until
resume or a daemon restart.`,
		Example: "  mailsync pause --account sales",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return flags.withClient(func(c *control.Client) error {
				if err := c.Pause(cmd.Context(), account); err != nil {
					return requestError("pause", account, err)
				}
				fmt.Fprintf(m.Stdout, "paused %s; resume with: mailsync resume --account %s\n", account, account)
				return nil
			})
		},
	}
	flags.add(cmd)
	cmd.Flags().StringVarP(&account, "account", "a", "", "account id (required)")
	cmd.MarkFlagRequired("account")
	return cmd
}

func (m *Main) resumeCommand() *cobra.Command {
	var (
		flags   daemonFlags
		account string
	)
	cmd := &cobra.Command{
		Use:   "resume --account ID",
		Short: "Resume a paused account",
		Long: `Resume restarts a paused account's workers: they reconnect and catch up from
where the cursor stopped, so nothing that arrived during the pause is missed.
Resuming an account that is not paused does nothing.`,
		Example: "  mailsync resume --account sales\n  mailsync resume -a sales --socket /run/mailsync/mailsync.sock",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return flags.withClient(func(c *control.Client) error {
				if err := c.Resume(cmd.Context(), account); err != nil {
					return requestError("resume", account, err)
				}
				fmt.Fprintf(m.Stdout, "resumed %s\n", account)
				return nil
			})
		},
	}
	flags.add(cmd)
	cmd.Flags().StringVarP(&account, "account", "a", "", "account id (required)")
	cmd.MarkFlagRequired("account")
	return cmd
}
