package main

import (
	"fmt"

	"github.com/mailsync/mailsync/sync/control"

	"github.com/spf13/cobra"
)

func (m *Main) resyncCommand() *cobra.Command {
	var (
		flags           daemonFlags
		account, folder string
	)
	cmd := &cobra.Command{
		Use:   "resync --account ID --folder NAME",
		Short: "Re-scan a folder from its first message",
		Long: `Resync forgets the folder's cursor and scans it again from the start. The
delivery ledger is kept, so messages the CRM already has are not sent twice;
use it after restoring a mailbox or changing the matcher rules.`,
		Example: "  mailsync resync --account sales --folder INBOX",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return flags.withClient(func(c *control.Client) error {
				if err := c.Resync(cmd.Context(), account, folder); err != nil {
					return requestError("resync", account+"/"+folder, err)
				}
				fmt.Fprintf(m.Stdout, "resync of %s/%s started; follow it with: mailsync status\n", account, folder)
				return nil
			})
		},
	}
	flags.add(cmd)
	cmd.Flags().StringVarP(&account, "account", "a", "", "account id (required)")
	cmd.Flags().StringVarP(&folder, "folder", "f", "", "folder name or role, as in the folders list (required)")
	cmd.MarkFlagRequired("account")
	cmd.MarkFlagRequired("folder")
	return cmd
}
