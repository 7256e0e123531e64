package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	stdsync "sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mailsync/mailsync/sync/control"
)

// reloadTimeout bounds one reload triggered by SIGHUP.
const reloadTimeout = 2 * time.Minute

func (m *Main) reloadCommand() *cobra.Command {
	var flags daemonFlags
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon re-read its config file",
		Long: `Reload asks the running daemon to re-read its config file (as SIGHUP and
"systemctl reload mailsync" do) and prints what changed. A file that does not
parse or validate is refused with the reason, and the daemon keeps running
with the config it has.`,
		Example: "  mailsync reload\n  systemctl reload mailsync   # the same, through SIGHUP",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return flags.withClient(func(c *control.Client) error {
				res, err := c.Reload(cmd.Context())
				if err != nil {
					if errors.Is(err, control.ErrInvalidRequest) {
						return err // the daemon's own words: refused, and why
					}
					return fmt.Errorf("reload failed: %w", err)
				}
				printReload(m.Stdout, res)
				return nil
			})
		},
	}
	flags.add(cmd)
	return cmd
}

// printReload says what changed. At 1,000 accounts a reload that adds one
// must not print 999 unchanged ids: each list shows at most a few ids,
// then how many more; unchanged accounts only as a count when many.
func printReload(w io.Writer, res *control.ReloadResult) {
	fmt.Fprintf(w, "reloaded\n  added      %s\n  removed    %s\n  restarted  %s\n  unchanged  %s\n",
		summarizeIDs(res.Added, 20), summarizeIDs(res.Removed, 20), summarizeIDs(res.Restarted, 20), summarizeIDs(res.Unchanged, 10))
}

// summarizeIDs lists up to n ids, then "and N more"; "-" for none.
func summarizeIDs(ids []string, n int) string {
	switch {
	case len(ids) == 0:
		return "-"
	case len(ids) <= n:
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more (%d accounts)", strings.Join(ids[:n], ", "), len(ids)-n, len(ids))
}

// reloadFunc is the daemon's Reload.
type reloadFunc func(ctx context.Context) (*control.ReloadResult, error)

// reloadOnSIGHUP reloads the config on every SIGHUP until stop is called,
// telling systemd RELOADING=1 and then READY=1 around each reload. A refused
// reload is logged and the daemon keeps running with its config. Signals
// that arrive during a reload are coalesced into one more reload.
func reloadOnSIGHUP(ctx context.Context, reload reloadFunc, sd *notifier, log *slog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	var wg stdsync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
				doReload(ctx, reload, sd, log)
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		cancel()
		wg.Wait()
	}
}

func doReload(ctx context.Context, reload reloadFunc, sd *notifier, log *slog.Logger) {
	if reload == nil {
		log.Warn("SIGHUP: reload is not available yet in this build; restart to apply config changes")
		return
	}
	log.Info("SIGHUP: reloading config")
	sd.reloading()
	// READY=1 must follow RELOADING=1 whatever happens, or systemd waits
	// for the reload to finish until its timeout.
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	res, err := reload(ctx)
	if err != nil {
		log.Error("reload refused; the running config stays", "error", err)
		sd.ready("reload refused: " + err.Error())
		return
	}
	log.Info("config reloaded", "added", len(res.Added), "removed", len(res.Removed), "restarted", len(res.Restarted),
		"unchanged", len(res.Unchanged))
	sd.ready(fmt.Sprintf("reloaded: %d added, %d removed, %d restarted", len(res.Added), len(res.Removed), len(res.Restarted)))
}
